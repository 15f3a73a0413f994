/*
 * One WebSocket session: everything wsgate knows about a connection lives
 * here, in the per-session storage libwebsockets allocates for the protocol.
 * Kept small: an idle session costs this struct, lws's own connection state
 * and the kernel's socket, nothing sized for the worst case.
 */
#ifndef WSGATE_SESSION_H
#define WSGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "closecode.h"
#include "config.h"
#include "heartbeat.h"
#include "metrics.h"
#include "outq.h"
#include "ratelimit.h"
#include "registry.h"
#include "router.h"

struct lws;
struct wsg_server;

#define WSG_SESSION_ID_LEN 16
#define WSG_PEER_MAX	   64

/*
 * Where the close handshake stands. A server close is framed by wsgate into
 * the session's output after what was queued before it (RFC 6455 7.1.2).
 */
enum session_close_state {
	CLOSE_NONE,
	CLOSE_DECIDED,	 /* the server's close frame follows the queued output */
	CLOSE_SENT,	 /* it went out: waiting for the client's close, then TCP ends */
	CLOSE_BY_CLIENT, /* the client closed first */
};

enum session_closed_by { CLOSED_BY_NONE, CLOSED_BY_SERVER, CLOSED_BY_CLIENT };

struct api_exchange;
struct session_expiry;

/*
 * What the session has to send, corked: everything produced in one loop turn
 * goes out in one write from output_flush_all (app/output.c).
 */
struct session_output {
	struct outq queue;
	struct session *dirty_prev, *dirty_next; /* on the server's list of sessions to flush */
	size_t in_lws;				 /* bytes last handed to lws that it may still hold (a partial write) */
	bool is_dirty;				 /* on the dirty list */
	bool is_choked;				 /* lws holds unsent bytes: wait for its WRITEABLE callback */
	bool is_ping_due;
	bool is_rx_paused; /* our replies piled up: lws stopped reading this client */
	bool is_corked;	   /* TCP_CORK from the upgrade until the welcome: the 101 and it share a segment */
};

/* A message arriving in pieces (fragments, or lws's rx_buffer_size chunks), only while it does. */
struct rx_message {
	size_t len, cap;
	unsigned utf8_state; /* util_utf8_feed: where a text message's last piece left off */
	unsigned char data[];
};

struct session {
	/* the HTTP phase of the connection: a POST body being read, else NULL */
	struct api_exchange *http;

	struct lws *wsi;
	struct wsg_server *server;
	/* one allocation: "user\0device\0peer\0via\0" (session_peer, session_via); via is "" when direct */
	char *names;
	const char *user, *device;
	const struct wsg_token *token; /* permissions; NULL until admitted */
	uint64_t opened_ms;	       /* monotonic; session_opened_wall_ms for listings */

	struct registry_entry entry;
	struct hb_session hb;	       /* also holds the close-flush deadline once closing */
	struct session_expiry *expiry; /* its token's expires time, on app/ops.c's wheel; NULL if none */
	struct session_output out;
	struct subscription_list subscriptions;
	struct ratelimit rate;
	struct rx_message *rx;
	const char *close_reason; /* the close-code table's text, or the session's copy */

	/*
	 * A refusal decided at FILTER_PROTOCOL_CONNECTION (auth.reject = "close")
	 * waits in close_code and close_reason for ESTABLISHED, with close_state
	 * still CLOSE_NONE; refusal_outcome is then not HANDSHAKE_ADMITTED.
	 */
	uint8_t refusal_outcome;    /* enum handshake_outcome */
	bool is_established;	    /* past the 101: counted in live_sessions */
	bool is_admitted;	    /* counted, registered and heartbeating */
	bool is_counted_by_address; /* in server->per_address until it ends */

	/* the close decision: the first one wins */
	uint8_t close_state; /* enum session_close_state */
	uint8_t closed_by;   /* enum session_closed_by */
	uint16_t close_code;
	uint8_t close_reason_len;
	bool is_reason_owned; /* close_reason is the session's malloc'd copy */
	bool is_close_final;  /* a peer found dead or not reading: TCP ends with the close frame */

	char id[WSG_SESSION_ID_LEN + 1]; /* after the small fields: no padding between them */
};

/* When the session opened, in Unix milliseconds (derived: one clock less per session). */
static inline uint64_t session_opened_wall_ms(const struct session *s, uint64_t now_ms, uint64_t now_wall_ms)
{
	return now_wall_ms - (now_ms - s->opened_ms);
}

/* The client's address (behind a trusted proxy, the forwarded one), and the proxy's ("" when direct). */
static inline const char *session_peer(const struct session *s)
{
	return s->device + strlen(s->device) + 1;
}

static inline const char *session_via(const struct session *s)
{
	const char *peer = session_peer(s);

	return peer + strlen(peer) + 1;
}

#endif
