/*
 * The wsgate WebSocket protocol: one callback, one switch, each case handing
 * the event to a session operation in app/session.c or app/handshake.c. The
 * handshake is decided once, here in FILTER_PROTOCOL_CONNECTION; a refusal with auth.reject =
 * "http" is written as an HTTP status and JSON body right here too.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>

#include "protocols.h"
#include "output.h"
#include "server.h"

/*
 * libwebsockets fails a connection that breaks RFC 6455 framing by calling
 * its own exported lws_close_reason() and returning -1; it then waits for the
 * client's close, which its parser, left mid-frame, can no longer read, so
 * the TCP connection stayed open for 5 s. lws reaches lws_close_reason
 * through its PLT, so this definition is the one it calls: wsgate fails the
 * connection itself (RFC 6455 7.1.7), its close frame written at once and
 * TCP ended right after, and the session's log line gets the real code.
 * wsgate's own closes never call it (they are framed by app/output.c).
 */
void lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len)
{
	static void (*lws_own)(struct lws *, enum lws_close_status, unsigned char *, size_t);

	if (session_fail(wsi, (int)status, buf, len))
		return;
	if (!lws_own)
		*(void **)&lws_own = dlsym(RTLD_NEXT, "lws_close_reason");
	if (lws_own)
		lws_own(wsi, status, buf, len);
}

static struct wsg_server *server_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

int protocol_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		struct wsg_server *server = server_of(wsi);
		struct auth_verdict v;
		server_session_begin(server, s, wsi, &v);
		if (!v.close_code || server->config->reject != WSG_REJECT_HTTP)
			return 0; /* admitted, or refused with a close frame after the 101 */
		/* a non-zero return without a response would be a bare TCP close, no reason */
		return protocol_http_refuse(server, wsi, &v) ? -1 : 1;
	}

	case LWS_CALLBACK_ESTABLISHED:
		session_established(s);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		session_receive(s, in, len, lws_is_first_fragment(wsi), lws_is_final_fragment(wsi),
				lws_frame_is_binary(wsi));
		return 0;

	case LWS_CALLBACK_RECEIVE_PONG:
		session_pong(s);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		output_writeable(s);
		return 0;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* answered by wsgate, not echoed by lws; then lws ends TCP */
		return session_peer_closed(s, in, len);

	case LWS_CALLBACK_CLOSED:
		session_end(s);
		return 0;

	default:
		/* before the upgrade this wsi is an HTTP connection */
		return protocol_http_callback(wsi, reason, user, in, len);
	}
}
