/*
 * One WebSocket session: everything wsgate knows about a connection lives
 * here, in the per-session storage libwebsockets allocates for the protocol.
 */
#ifndef WSGATE_SESSION_H
#define WSGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

enum session_closed_by { CLOSED_BY_NONE, CLOSED_BY_SERVER, CLOSED_BY_CLIENT };

struct api_exchange;

struct session {
	/* the HTTP phase of the connection: a POST body being read, else NULL */
	struct api_exchange *http;

	struct lws *wsi;
	struct wsg_server *server;
	char id[WSG_SESSION_ID_LEN + 1];
	char user[WSG_USER_MAX + 1];
	char device[WSG_DEVICE_MAX + 1];
	char peer[WSG_PEER_MAX]; /* the client, behind a trusted proxy if any */
	char via[WSG_PEER_MAX];	 /* the trusted proxy, "" when direct */
	uint64_t opened_ms;
	uint64_t opened_wall_ms; /* for listings */

	/* the handshake verdict, from FILTER_PROTOCOL_CONNECTION to ESTABLISHED */
	int refusal_code;
	const char *refusal_reason;
	enum handshake_outcome refusal_outcome;

	const struct wsg_token *token; /* permissions; NULL until admitted */
	bool is_established;	       /* past the 101: counted in live_sessions */
	bool is_admitted;	       /* counted, registered and heartbeating */
	struct subscription_list subscriptions;
	struct ratelimit rate;
	struct registry_entry entry;
	struct hb_session hb; /* also holds the close-flush deadline once closing */
	bool is_ping_due;

	struct outq outq;

	/* a message being assembled from fragments */
	unsigned char *rx_buf;
	size_t rx_len, rx_cap;

	/* the close decision: the first one wins */
	enum session_closed_by closed_by;
	int close_code;
	char close_reason[WSG_CLOSE_REASON_MAX + 1];
	size_t close_reason_len;
};

#endif
