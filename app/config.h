/*
 * Loads and validates the whole configuration into one struct before any of it
 * is used, so a broken file never half-applies and a reload can swap the struct
 * whole. Token secrets are kept only as SHA-256 digests.
 */
#ifndef WSGATE_CONFIG_H
#define WSGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

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
};

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
	unsigned max_subscriptions; /* per session */

	/* http: static files (www/) served by lws's own file mount on every listener */
	char *http_root; /* a directory, resolved like listen_tls.cert, at most WSG_HTTP_ROOT_MAX bytes; NULL: none */
};

/*
 * Parses and validates path. On failure returns -1 with err holding
 * "FILE:LINE: message" naming the offending key.
 */
int config_load(const char *path, struct wsg_config **out, char *err, size_t errlen);
void config_free(struct wsg_config *config);

#endif
