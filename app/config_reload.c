/*
 * Reload: the keys a running server cannot change (its listeners are bound,
 * its cluster connections made) keep their running values, each difference
 * named so that the reload can log it as "needs restart".
 */
#include "config.h"

#include <string.h>

static bool differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* loaded takes running's string itself: lws keeps pointers to the ones its listeners were made with. */
static void take_string(char **loaded, char **running)
{
	char *kept = *running;

	*running = *loaded;
	*loaded = kept;
}

static bool cluster_differs(const struct wsg_cluster_config *a, const struct wsg_cluster_config *b)
{
	return a->is_enabled != b->is_enabled || strcmp(a->node, b->node) || a->on_redis_down != b->on_redis_down ||
	       a->claim_ttl_ms != b->claim_ttl_ms || strcmp(a->url.host, b->url.host) || a->url.port != b->url.port ||
	       a->url.db != b->url.db || strcmp(a->url.user, b->url.user) || strcmp(a->url.password, b->url.password) ||
	       a->url.has_password != b->url.has_password;
}

size_t config_keep_restart_keys(struct wsg_config *loaded, struct wsg_config *running, const char **keys, size_t max)
{
	size_t n = 0;
#define NOTE(key) (n < max ? (void)(keys[n++] = (key)) : (void)n++)

	if (differs(loaded->listen_address, running->listen_address))
		NOTE("listen.address");
	take_string(&loaded->listen_address, &running->listen_address);
	if (loaded->listen_port != running->listen_port) {
		NOTE("listen.port");
		loaded->listen_port = running->listen_port;
	}
	if (loaded->listen_reuse_port != running->listen_reuse_port) {
		NOTE("listen.reuse_port");
		loaded->listen_reuse_port = running->listen_reuse_port;
	}
	if (loaded->has_tls != running->has_tls) {
		NOTE("listen_tls");
		loaded->has_tls = running->has_tls;
	}
	if (running->has_tls && differs(loaded->tls_address, running->tls_address))
		NOTE("listen_tls.address");
	take_string(&loaded->tls_address, &running->tls_address);
	if (running->has_tls && loaded->tls_port != running->tls_port)
		NOTE("listen_tls.port");
	loaded->tls_port = running->tls_port;
	if (running->has_tls && differs(loaded->tls_cert, running->tls_cert))
		NOTE("listen_tls.cert");
	take_string(&loaded->tls_cert, &running->tls_cert);
	if (running->has_tls && differs(loaded->tls_key, running->tls_key))
		NOTE("listen_tls.key");
	take_string(&loaded->tls_key, &running->tls_key);
	if (differs(loaded->ws_path, running->ws_path))
		NOTE("websocket.path");
	take_string(&loaded->ws_path, &running->ws_path);
	/* the static-file mount is made with the listeners */
	if (differs(loaded->http_root, running->http_root))
		NOTE("http.root");
	take_string(&loaded->http_root, &running->http_root);
	/* the cluster's Redis connections and node name are made at start */
	if (cluster_differs(&loaded->cluster, &running->cluster))
		NOTE("cluster");
	loaded->cluster = running->cluster;
#undef NOTE
	return n;
}
