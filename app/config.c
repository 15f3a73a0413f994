/*
 * Configuration loader: libconfig syntax, every key checked against a known
 * set, with type and range, and every error reported as FILE:LINE naming the
 * key, the way nginx -t does. Nothing here keeps a token in clear text.
 * This file holds config_load and the server's groups; the key readers are in
 * config_loader.c, tokens in config_tokens.c, history in config_history.c and
 * the reload comparison in config_reload.c.
 */
#define _GNU_SOURCE /* explicit_bzero */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "config_loader.h"
#include "tls.h"

static int check_address(struct loader *ld, const config_setting_t *g, const char *prefix, const char *address)
{
	struct netaddr addr;

	if (!netaddr_parse(address, &addr))
		return 0;
	return loader_fail_at(ld, line_of(config_setting_get_member(g, "address")),
			      "key '%s.address' must be an IPv4 or IPv6 address, not \"%s\"", prefix, address);
}

static int load_listen(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "address", "port", "reuse_port", NULL };
	config_setting_t *g;
	long long port = c->listen_port;

	if (loader_get_group(ld, root, "listen", &g) || (g && loader_check_known_keys(ld, g, "listen", known)))
		return -1;
	if (loader_get_string(ld, g, "listen", "address", &c->listen_address) ||
	    loader_get_int(ld, g, "listen", "port", 1, 65535, &port) ||
	    loader_get_bool(ld, g, "listen", "reuse_port", &c->listen_reuse_port))
		return -1;
	c->listen_port = (int)port;
	return check_address(ld, g, "listen", c->listen_address);
}

static int get_required_string(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
			       char **value)
{
	if (!config_setting_get_member(group, name))
		return loader_fail_at(ld, line_of(group), "key '%s.%s' is required", prefix, name);
	return loader_get_string(ld, group, prefix, name, value);
}

/* "0.0.0.0" and "::" bind every address, so they clash with any other on the same port. */
static bool is_wildcard(const char *address)
{
	return !strcmp(address, "0.0.0.0") || !strcmp(address, "::");
}

static int load_listen_tls(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "address", "port", "cert", "key", NULL };
	config_setting_t *g;
	long long port = c->tls_port;
	char why[512];

	if (loader_get_group(ld, root, "listen_tls", &g))
		return -1;
	if (!g)
		return 0;
	c->has_tls = true;
	if (loader_check_known_keys(ld, g, "listen_tls", known) ||
	    loader_get_string(ld, g, "listen_tls", "address", &c->tls_address) ||
	    loader_get_int(ld, g, "listen_tls", "port", 1, 65535, &port) ||
	    get_required_string(ld, g, "listen_tls", "cert", &c->tls_cert) ||
	    get_required_string(ld, g, "listen_tls", "key", &c->tls_key) ||
	    check_address(ld, g, "listen_tls", c->tls_address) ||
	    loader_resolve_path(ld, config_setting_get_member(g, "cert"), &c->tls_cert) ||
	    loader_resolve_path(ld, config_setting_get_member(g, "key"), &c->tls_key))
		return -1;
	c->tls_port = (int)port;
	if (c->tls_port == c->listen_port && (!strcmp(c->tls_address, c->listen_address) ||
					      is_wildcard(c->tls_address) || is_wildcard(c->listen_address)))
		return loader_fail_at(
			ld, line_of(config_setting_get_member(g, "port") ? config_setting_get_member(g, "port") : g),
			"key 'listen_tls.port' must differ from 'listen.port' on the same address");
	switch (tls_check_files(c->tls_cert, c->tls_key, why, sizeof(why))) {
	case TLS_FILES_OK:
		return 0;
	case TLS_BAD_CERT:
		return loader_fail_at(ld, line_of(config_setting_get_member(g, "cert")), "key 'listen_tls.cert': %s",
				      why);
	case TLS_BAD_KEY:
		break;
	}
	return loader_fail_at(ld, line_of(config_setting_get_member(g, "key")), "key 'listen_tls.key': %s", why);
}

static int load_proxy(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "trusted", NULL };
	config_setting_t *g, *list;

	if (loader_get_group(ld, root, "proxy", &g))
		return -1;
	if (!g)
		return 0;
	if (loader_check_known_keys(ld, g, "proxy", known))
		return -1;
	list = config_setting_get_member(g, "trusted");
	if (!list)
		return 0;
	int count = loader_begin_list(ld, list, "proxy.trusted", "an array of addresses or networks",
				      sizeof(*c->trusted_proxies), (void **)&c->trusted_proxies);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *text = loader_list_string(list, i);
		if (!text || netaddr_parse_net(text, &c->trusted_proxies[i]))
			return loader_fail_at(
				ld, line_of(list),
				"key 'proxy.trusted' entry %d must be an address or network like \"127.0.0.1\" "
				"or \"10.0.0.0/8\"",
				i + 1);
		c->trusted_proxy_count++;
	}
	return 0;
}

static int load_api(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "keys", "max_body_bytes", NULL };
	config_setting_t *g, *keys;
	long long max = (long long)c->api_max_body_bytes;

	if (loader_get_group(ld, root, "api", &g))
		return -1;
	if (!g)
		return 0;
	if (loader_check_known_keys(ld, g, "api", known) ||
	    loader_get_int(ld, g, "api", "max_body_bytes", 64, 16 * 1024 * 1024, &max))
		return -1;
	c->api_max_body_bytes = (size_t)max;
	keys = config_setting_get_member(g, "keys");
	if (!keys)
		return 0;
	int count = loader_begin_list(ld, keys, "api.keys", "an array of strings", sizeof(*c->api_keys),
				      (void **)&c->api_keys);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *key = loader_list_string(keys, i);
		if (!key || strlen(key) < 16)
			return loader_fail_at(ld, line_of(keys),
					      "key 'api.keys' entry %d must be a string of at least 16 characters",
					      i + 1);
		auth_token_digest(key, strlen(key), c->api_keys[i]);
		c->api_key_count++;
	}
	return 0;
}

static int load_limits(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = {
		"max_queued_bytes", "messages_per_second", "burst", "max_subscriptions", "handshake_timeout_ms",
		"max_per_ip",	    "send_buffer_bytes",   NULL
	};
	config_setting_t *g;
	long long queued = (long long)c->max_queued_bytes;

	if (loader_get_group(ld, root, "limits", &g) || (g && loader_check_known_keys(ld, g, "limits", known)))
		return -1;
	if (loader_get_int(ld, g, "limits", "max_queued_bytes", 4096, 1024LL * 1024 * 1024, &queued) ||
	    loader_get_uint(ld, g, "limits", "messages_per_second", 1, 1000000, &c->messages_per_second) ||
	    loader_get_uint(ld, g, "limits", "burst", 1, 1000000, &c->burst) ||
	    loader_get_uint(ld, g, "limits", "max_subscriptions", 1, 100000, &c->max_subscriptions) ||
	    loader_get_uint(ld, g, "limits", "handshake_timeout_ms", 1000, 600000, &c->handshake_timeout_ms) ||
	    loader_get_uint(ld, g, "limits", "max_per_ip", 0, 1000000, &c->max_per_ip) ||
	    loader_get_uint(ld, g, "limits", "send_buffer_bytes", 4096, 16 * 1024 * 1024, &c->send_buffer_bytes))
		return -1;
	c->max_queued_bytes = (size_t)queued;
	return 0;
}

static int load_websocket(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "path", "max_message_bytes", NULL };
	config_setting_t *g;
	long long max = (long long)c->max_message_bytes;

	if (loader_get_group(ld, root, "websocket", &g) || (g && loader_check_known_keys(ld, g, "websocket", known)))
		return -1;
	if (loader_get_string(ld, g, "websocket", "path", &c->ws_path) ||
	    loader_get_int(ld, g, "websocket", "max_message_bytes", 16, 16 * 1024 * 1024, &max))
		return -1;
	if (c->ws_path[0] != '/' || strpbrk(c->ws_path, "?# \t")) {
		const config_setting_t *s = config_setting_get_member(g, "path");
		return loader_fail_at(ld, line_of(s),
				      "key 'websocket.path' must start with '/' and hold no '?', '#' or spaces");
	}
	c->max_message_bytes = (size_t)max;
	return 0;
}

static int load_auth(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "reject", "origins", NULL };
	static const char *const modes[] = { "http", "close", NULL };
	config_setting_t *g, *origins;
	int reject = (int)c->reject;

	if (loader_get_group(ld, root, "auth", &g) || (g && loader_check_known_keys(ld, g, "auth", known)))
		return -1;
	if (loader_get_choice(ld, g, "auth", "reject", modes, "\"http\" or \"close\"", &reject))
		return -1;
	c->reject = (enum wsg_reject_mode)reject;

	origins = g ? config_setting_get_member(g, "origins") : NULL;
	if (!origins)
		return 0;
	int count = loader_begin_list(ld, origins, "auth.origins", "an array of strings", sizeof(*c->origins),
				      (void **)&c->origins);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *origin = loader_list_string(origins, i);
		if (!origin || !*origin)
			return loader_fail_at(ld, line_of(origins),
					      "key 'auth.origins' must hold non-empty strings (entry %d)", i + 1);
		c->origins[i] = strdup(origin);
		if (!c->origins[i])
			return loader_fail_at(ld, line_of(origins), "out of memory");
		c->origin_count++;
	}
	return 0;
}

static int load_sessions(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "on_repeat", "max", NULL };
	static const char *const policies[] = { "reject-new", "replace-old", NULL };
	config_setting_t *g;
	int on_repeat = (int)c->on_repeat;

	if (loader_get_group(ld, root, "sessions", &g) || (g && loader_check_known_keys(ld, g, "sessions", known)))
		return -1;
	if (loader_get_choice(ld, g, "sessions", "on_repeat", policies, "\"reject-new\" or \"replace-old\"",
			      &on_repeat) ||
	    loader_get_uint(ld, g, "sessions", "max", 1, 10000000, &c->max_sessions))
		return -1;
	c->on_repeat = (enum wsg_repeat_policy)on_repeat;
	return 0;
}

static int load_heartbeat(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "interval_ms", "timeout_ms", NULL };
	config_setting_t *g;

	if (loader_get_group(ld, root, "heartbeat", &g) || (g && loader_check_known_keys(ld, g, "heartbeat", known)))
		return -1;
	return loader_get_uint(ld, g, "heartbeat", "interval_ms", 100, 3600000, &c->heartbeat_interval_ms) ||
			       loader_get_uint(ld, g, "heartbeat", "timeout_ms", 100, 600000, &c->heartbeat_timeout_ms)
		       ? -1
		       : 0;
}

static int load_shutdown(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "grace_ms", "drain_ms", NULL };
	config_setting_t *g;

	if (loader_get_group(ld, root, "shutdown", &g) || (g && loader_check_known_keys(ld, g, "shutdown", known)))
		return -1;
	return loader_get_uint(ld, g, "shutdown", "grace_ms", 0, 600000, &c->shutdown_grace_ms) ||
			       loader_get_uint(ld, g, "shutdown", "drain_ms", 0, 3600000, &c->shutdown_drain_ms)
		       ? -1
		       : 0;
}

/* http.root: the directory lws's file mount serves at "/" (the browser client and demo page); "" is off. */

static int load_http(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "root", NULL };
	config_setting_t *g;
	const config_setting_t *s;
	struct stat st;

	if (loader_get_group(ld, root, "http", &g) || (g && loader_check_known_keys(ld, g, "http", known)) ||
	    loader_get_string(ld, g, "http", "root", &c->http_root))
		return -1;
	s = g ? config_setting_get_member(g, "root") : NULL;
	if (c->http_root && !*c->http_root) {
		free(c->http_root);
		c->http_root = NULL;
	}
	if (!c->http_root)
		return 0;
	if (loader_resolve_path(ld, s, &c->http_root))
		return -1;
	if (strlen(c->http_root) > WSG_HTTP_ROOT_MAX)
		return loader_fail_at(ld, line_of(s), "key 'http.root' must be at most %d bytes long (after resolving)",
				      WSG_HTTP_ROOT_MAX);
	if (stat(c->http_root, &st) || !S_ISDIR(st.st_mode))
		return loader_fail_at(ld, line_of(s), "key 'http.root' must name a directory: %s is not one",
				      c->http_root);
	return 0;
}

/* ---- cluster: cluster = { redis = "redis://..."; node = "n1"; ... } (app/cluster.c) ---- */

static int load_cluster(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "redis", "node", "on_redis_down", "claim_ttl_ms", NULL };
	static const char *const modes[] = { "refuse", "local", NULL };
	struct wsg_cluster_config *cl = &c->cluster;
	config_setting_t *g;
	const config_setting_t *s;
	char why[300];
	int mode = WSG_REDIS_DOWN_REFUSE;

	if (loader_get_group(ld, root, "cluster", &g))
		return -1;
	if (!g)
		return 0;
	if (loader_check_known_keys(ld, g, "cluster", known) ||
	    loader_get_choice(ld, g, "cluster", "on_redis_down", modes, "\"refuse\" or \"local\"", &mode) ||
	    loader_get_uint(ld, g, "cluster", "claim_ttl_ms", 300, 600000, &cl->claim_ttl_ms))
		return -1;
	cl->on_redis_down = (enum wsg_redis_down)mode;
	/* the cluster is on when it has a Redis: the shipped file has the group without one */
	s = config_setting_get_member(g, "redis");
	if (!s && !config_setting_get_member(g, "node"))
		return 0;
	cl->is_enabled = true;
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING)
		return loader_fail_at(ld, line_of(s ? s : g),
				      "key 'cluster.redis' must be a string like \"redis://127.0.0.1:6379/0\"");
	if (redis_url_parse(config_setting_get_string(s), &cl->url, why, sizeof(why)))
		return loader_fail_at(ld, line_of(s), "key 'cluster.redis' %s", why);
	s = config_setting_get_member(g, "node");
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING ||
	    !auth_is_valid_id(config_setting_get_string(s), WSG_USER_MAX))
		return loader_fail_at(
			ld, line_of(s ? s : g),
			"key 'cluster.node' must be 1 to %d characters of A-Z a-z 0-9 . _ : @ -, unique in the cluster",
			WSG_USER_MAX);
	snprintf(cl->node, sizeof(cl->node), "%s", config_setting_get_string(s));
	return 0;
}

/* ---- end cluster ---- */

/*
 * A queue smaller than one allowed message would close every subscriber of
 * the first big publish as a slow consumer: refuse that at load, not in use.
 */
static int check_limits_fit(struct loader *ld, const config_setting_t *root, const struct wsg_config *c)
{
	if (c->max_queued_bytes >= c->max_message_bytes && c->max_queued_bytes >= c->api_max_body_bytes)
		return 0;
	const config_setting_t *g = config_setting_get_member(root, "limits");
	const config_setting_t *s = g ? config_setting_get_member(g, "max_queued_bytes") : NULL;
	return loader_fail_at(
		ld, s ? line_of(s) : 1,
		"key 'limits.max_queued_bytes' (%zu) must be at least websocket.max_message_bytes (%zu) and "
		"api.max_body_bytes (%zu): one message must fit in a session's queue",
		c->max_queued_bytes, c->max_message_bytes, c->api_max_body_bytes);
}

static struct wsg_config *config_defaults(const char *path)
{
	struct wsg_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->file = strdup(path);
	c->listen_address = strdup("127.0.0.1");
	c->listen_port = 8080;
	c->tls_address = strdup("127.0.0.1");
	c->tls_port = 8443;
	c->ws_path = strdup("/ws");
	c->max_message_bytes = 65536;
	c->reject = WSG_REJECT_HTTP;
	c->on_repeat = WSG_REPEAT_REJECT_NEW;
	c->max_sessions = 10000;
	c->heartbeat_interval_ms = 25000;
	c->heartbeat_timeout_ms = 10000;
	c->shutdown_grace_ms = 5000;
	c->api_max_body_bytes = 65536;
	c->max_queued_bytes = 1024 * 1024;
	c->messages_per_second = 50;
	c->burst = 100;
	c->max_subscriptions = 64;
	c->handshake_timeout_ms = 5000;
	c->max_per_ip = 0;
	c->send_buffer_bytes = 16384;
	c->shutdown_drain_ms = 10000;
	c->history.size = 100;
	c->history.ttl_ms = 300000;
	c->cluster.claim_ttl_ms = 15000;
	if (!c->file || !c->listen_address || !c->tls_address || !c->ws_path) {
		config_free(c);
		return NULL;
	}
	return c;
}

/*
 * A config that holds secrets (tokens or api.keys) must not be open to
 * "others": group access is fine (the package installs it root:wsgate 640),
 * world access is refused at load and at reload, naming the file and the fix.
 * The mode is taken from the file as read, not from a later stat by name.
 */
static int check_secret_file_mode(FILE *f, const char *path, const config_setting_t *root, char *err, size_t errlen)
{
	const config_setting_t *api = config_setting_get_member(root, "api");
	const config_setting_t *keys =
		api && config_setting_is_group(api) ? config_setting_get_member(api, "keys") : NULL;
	struct stat st;

	if (!config_setting_get_member(root, "tokens") && !(keys && config_setting_length(keys) > 0))
		return 0;
	if (fstat(fileno(f), &st)) {
		snprintf(err, errlen, "%s: cannot stat the file: %s", path, strerror(errno));
		return -1;
	}
	if (!(st.st_mode & S_IRWXO))
		return 0;
	snprintf(err, errlen,
		 "%s: holds tokens or API keys and is accessible by others (mode %04o); "
		 "chmod o-rwx it (600, or 640 with the server's group)",
		 path, (unsigned)(st.st_mode & 07777));
	return -1;
}

int config_load(const char *path, struct wsg_config **out, char *err, size_t errlen)
{
	static const char *const known[] = { "listen",	 "listen_tls",	"proxy",    "websocket", "auth",
					     "sessions", "heartbeat",	"shutdown", "limits",	 "api",
					     "tokens",	 "tokens_file", "http",	    "history",	 "history_channels",
					     "cluster",	 NULL };
	struct loader ld = { path, err, errlen };
	struct wsg_config *c = NULL;
	config_t cfg;
	FILE *f = NULL;
	int rc = -1;

	*out = NULL;
	config_init(&cfg);
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read the file", path);
		goto out;
	}
	if (!config_read(&cfg, f)) {
		loader_fail_at(&ld, config_error_line(&cfg), "%s", config_error_text(&cfg));
		goto out;
	}
	if (check_secret_file_mode(f, path, config_root_setting(&cfg), err, errlen))
		goto out;
	c = config_defaults(path);
	if (!c) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	const config_setting_t *root = config_root_setting(&cfg);
	if (loader_check_known_keys(&ld, root, NULL, known) || load_listen(&ld, root, c) ||
	    load_listen_tls(&ld, root, c) || load_proxy(&ld, root, c) || load_websocket(&ld, root, c) ||
	    load_auth(&ld, root, c) || load_sessions(&ld, root, c) || load_heartbeat(&ld, root, c) ||
	    load_shutdown(&ld, root, c) || load_limits(&ld, root, c) || load_api(&ld, root, c) ||
	    (config_setting_get_member(root, "tokens_file") ? config_load_tokens_file(&ld, root, c)
							    : config_load_tokens(&ld, root, c)) ||
	    config_index_tokens(&ld, c) || check_limits_fit(&ld, root, c) || load_http(&ld, root, c) ||
	    config_load_history(&ld, root, c) || load_cluster(&ld, root, c))
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	config_free(c);
	config_destroy(&cfg);
	return rc;
}

void config_free(struct wsg_config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->listen_address);
	free(c->tls_address);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->trusted_proxies);
	free(c->ws_path);
	free(c->http_root);
	for (size_t i = 0; i < c->origin_count; i++)
		free(c->origins[i]);
	free(c->origins);
	config_free_tokens(c);
	free(c->api_keys);
	config_free_history(c);
	explicit_bzero(&c->cluster.url, sizeof(c->cluster.url)); /* the Redis password */
	free(c);
}
