/*
 * Loads and validates the whole configuration into one struct before any of it
 * is used, so a broken file never half-applies and a reload can swap the struct
 * whole. Token secrets are kept only as SHA-256 digests.
 */
#ifndef WSGATE_CONFIG_H
#define WSGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"
#include "redis_url.h"

#define WSG_TOKEN_DIGEST_LEN 32
#define WSG_USER_MAX	     64
#define WSG_DEVICE_MAX	     64
/* lws builds a served file's path in 256 bytes: the root leaves room for the file's name */
#define WSG_HTTP_ROOT_MAX 192

enum wsg_reject_mode { WSG_REJECT_HTTP, WSG_REJECT_CLOSE };
enum wsg_repeat_policy { WSG_REPEAT_REJECT_NEW, WSG_REPEAT_REPLACE_OLD };

/* A list of channel or user globs (see channel.h); empty: nothing allowed. */
struct wsg_globs {
	char **items;
	size_t count;
};

struct wsg_token {
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];
	char *user;
	struct wsg_globs subscribe; /* channels this token may subscribe to */
	struct wsg_globs publish;   /* channels it may publish to */
	struct wsg_globs send;	    /* users it may send direct messages to */
	uint64_t expires_ms;	    /* `expires`, Unix time in ms; 0: never */
};

/* ---- history (app/history.h): per-channel bounds ---- */
struct wsg_history_limits {
	unsigned size;	 /* messages kept per channel; 0: history off */
	unsigned ttl_ms; /* how long each is kept */
};

/* history_channels: the bounds for the channels one glob matches; the first match wins. */
struct wsg_history_rule {
	char *channel; /* a glob (channel.h) */
	struct wsg_history_limits limits;
};

/* ---- cluster: several wsgate processes on one Redis (app/cluster.c) ---- */
enum wsg_redis_down { WSG_REDIS_DOWN_REFUSE, WSG_REDIS_DOWN_LOCAL };

struct wsg_cluster_config {
	bool is_enabled;	     /* a `cluster` group: without it wsgate never touches Redis */
	struct redis_url url;	     /* cluster.redis, parsed; holds the password: never logged */
	char node[WSG_USER_MAX + 1]; /* cluster.node: unique per process in the cluster */
	enum wsg_redis_down on_redis_down;
	unsigned claim_ttl_ms; /* a dead node's claims are void after at most this long */
};
/* ---- end cluster ---- */

struct wsg_config {
	char *file;

	char *listen_address;
	int listen_port;

	bool has_tls; /* listen_tls present: a wss listener beside the ws one */
	char *tls_address;
	int tls_port;
	char *tls_cert;
	char *tls_key;

	struct netaddr_net *trusted_proxies; /* peers whose X-Forwarded-For is believed */
	size_t trusted_proxy_count;

	char *ws_path;
	size_t max_message_bytes;

	enum wsg_reject_mode reject;
	char **origins; /* NULL: any origin */
	size_t origin_count;

	enum wsg_repeat_policy on_repeat;
	unsigned max_sessions;

	unsigned heartbeat_interval_ms;
	unsigned heartbeat_timeout_ms;

	unsigned shutdown_grace_ms;

	struct wsg_token *tokens;
	size_t token_count;

	unsigned char (*api_keys)[WSG_TOKEN_DIGEST_LEN]; /* backend API keys, as digests */
	size_t api_key_count;
	size_t api_max_body_bytes;

	size_t max_queued_bytes;      /* per session; past it: 4109 slow consumer */
	unsigned messages_per_second; /* per session, token bucket */
	unsigned burst;
	unsigned max_subscriptions;    /* per session */
	unsigned handshake_timeout_ms; /* from accept to the 101 (lws counts whole seconds) */
	unsigned max_per_ip;	       /* sessions from one client address; 0: no limit */
	unsigned send_buffer_bytes;    /* unsent bytes the kernel may hold per session (TCP_NOTSENT_LOWAT) */

	/* http: static files (www/) served by lws's own file mount on every listener */
	char *http_root; /* a directory, resolved like listen_tls.cert, at most WSG_HTTP_ROOT_MAX bytes; NULL: none */

	/* ---- operations: reload, drain, rolling restart ---- */
	char *tokens_file;	    /* `tokens_file`, resolved; NULL: tokens are in `file` */
	bool listen_reuse_port;	    /* SO_REUSEPORT: several processes share the listeners */
	unsigned shutdown_drain_ms; /* a drain spreads its 4200 closes over this long */
	size_t *token_order;	    /* indices of tokens sorted by digest, for config_find_token */

	/* ---- history: `history` (every channel) and `history_channels` (overrides by glob) ---- */
	struct wsg_history_limits history;
	struct wsg_history_rule *history_rules;
	size_t history_rule_count;

	struct wsg_cluster_config cluster; /* needs a restart to change */
};

/*
 * Parses and validates path. On failure returns -1 with err holding
 * "FILE:LINE: message" naming the offending key.
 */
int config_load(const char *path, struct wsg_config **out, char *err, size_t errlen);
void config_free(struct wsg_config *config);

/* The token entry with this digest (a reload moves sessions by it), NULL when none. O(log tokens). */
const struct wsg_token *config_find_token(const struct wsg_config *config,
					  const unsigned char digest[WSG_TOKEN_DIGEST_LEN]);

/*
 * Keys a running server cannot change (its listeners are bound): loaded takes
 * running's values for all of them, its strings moved, not copied (lws keeps
 * pointers to them; running gets loaded's in exchange, to be freed with it).
 * keys[] gets the name ("listen.port") of each that differed, up to max;
 * returns how many differed. A reload logs each as "needs restart".
 */
size_t config_keep_restart_keys(struct wsg_config *loaded, struct wsg_config *running, const char **keys, size_t max);

/* The history bounds for channel name: its first matching history_channels rule, else `history`. */
struct wsg_history_limits config_history_limits(const struct wsg_config *config, const char *name);

/* Parses an RFC 3339 UTC time "2027-01-31T00:00:00Z" into Unix ms; -1 when it is not one. */
int config_parse_utc(const char *text, uint64_t *ms);

#endif
