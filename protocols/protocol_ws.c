/*
 * The wsgate WebSocket protocol: one callback, one switch, each case handing
 * the event to a session operation in app/server.c. lws_close_reason() is
 * only ever reached through session_apply_close().
 */
#include "protocols.h"
#include "server.h"

int protocol_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* never refuse here: a non-zero return is a bare TCP close, no reason */
		server_session_begin(lws_context_user(lws_get_context(wsi)), s, wsi);
		return 0;

	case LWS_CALLBACK_ESTABLISHED:
		session_established(s);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (session_receive(s, in, len, lws_is_first_fragment(wsi), lws_is_final_fragment(wsi),
				    lws_frame_is_binary(wsi))) {
			session_apply_close(s);
			return -1;
		}
		return 0;

	case LWS_CALLBACK_RECEIVE_PONG:
		session_pong(s);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return session_writeable(s);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		session_peer_closed(s, in, len);
		return 0; /* lws echoes the close frame */

	case LWS_CALLBACK_CLOSED:
		session_end(s);
		return 0;

	default:
		/* before the upgrade this wsi is an HTTP connection */
		return protocol_http_callback(wsi, reason, user, in, len);
	}
}
