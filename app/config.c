/*
 * Configuration loader: libconfig syntax, every key checked against a known
 * set, with type and range, and every error reported as FILE:LINE naming the
 * key, the way nginx -t does. Nothing here keeps a token in clear text.
 */
#define _GNU_SOURCE /* asprintf */
#include "config.h"

#include <libconfig.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "channel.h"
#include "tls.h"

struct loader {
	const char *file;
	char *err;
	size_t errlen;
};

static int fail_at(struct loader *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail_at(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->file, line > 0 ? line : 1);

	if (n < 0 || (size_t)n >= ld->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	/* one line, whatever a quoted value holds (libconfig strings may span lines) */
	for (char *p = ld->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

static int line_of(const config_setting_t *s)
{
	return (int)config_setting_source_line(s);
}

static bool is_one_of(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(name, *names))
			return true;
	return false;
}

/* Unknown keys are errors: a misspelt key silently ignored is a bug in production. */
static int check_known_keys(struct loader *ld, const config_setting_t *group, const char *prefix,
			    const char *const *known)
{
	int count = config_setting_length(group);

	for (int i = 0; i < count; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);

		if (!is_one_of(name, known))
			return prefix ? fail_at(ld, line_of(s), "unknown key '%s.%s'", prefix, name)
				      : fail_at(ld, line_of(s), "unknown key '%s'", name);
	}
	return 0;
}

/* The group at root.name, NULL when absent (all defaults), or an error when not a group. */
static int get_group(struct loader *ld, const config_setting_t *root, const char *name, config_setting_t **out)
{
	config_setting_t *s = config_setting_get_member(root, name);

	*out = NULL;
	if (!s)
		return 0;
	if (!config_setting_is_group(s))
		return fail_at(ld, line_of(s), "key '%s' must be a group { ... }", name);
	*out = s;
	return 0;
}

static int get_int(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		   long long min, long long max, long long *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	long long v;

	if (!s)
		return 0;
	int type = config_setting_type(s);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
		return fail_at(ld, line_of(s), "key '%s.%s' must be an integer between %lld and %lld", prefix, name,
			       min, max);
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return fail_at(ld, line_of(s), "key '%s.%s' must be an integer between %lld and %lld, not %lld", prefix,
			       name, min, max, v);
	*value = v;
	return 0;
}

static int get_uint(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		    long long min, long long max, unsigned *value)
{
	long long v = *value;

	if (get_int(ld, group, prefix, name, min, max, &v))
		return -1;
	*value = (unsigned)v;
	return 0;
}

static int get_string(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      char **value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_at(ld, line_of(s), "key '%s.%s' must be a string", prefix, name);
	char *copy = strdup(config_setting_get_string(s));
	if (!copy)
		return fail_at(ld, line_of(s), "out of memory");
	free(*value);
	*value = copy;
	return 0;
}

static int get_bool(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name, bool *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_at(ld, line_of(s), "key '%s.%s' must be true or false", prefix, name);
	*value = config_setting_get_bool(s);
	return 0;
}

/* A string key that must be one of choices; *value becomes its index. */
static int get_choice(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      const char *const *choices, const char *expected, int *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
	for (int i = 0; v && choices[i]; i++) {
		if (!strcmp(v, choices[i])) {
			*value = i;
			return 0;
		}
	}
	return fail_at(ld, line_of(s), "key '%s.%s' must be %s", prefix, name, expected);
}

/*
 * An array or list key: checks its shape and allocates room for its items
 * (one spare, zeroed). Returns the item count, or -1 after reporting.
 */
static int begin_list(struct loader *ld, const config_setting_t *list, const char *key, const char *shape,
		      size_t item_size, void **items)
{
	if (!config_setting_is_array(list) && !config_setting_is_list(list)) {
		fail_at(ld, line_of(list), "key '%s' must be %s", key, shape);
		return -1; /* not fail_at's value: clang-tidy's analyzer cannot see into a variadic function */
	}
	int count = config_setting_length(list);
	*items = calloc((size_t)count + 1, item_size);
	if (!*items)
		return fail_at(ld, line_of(list), "out of memory");
	return count;
}

/* Item i of a list as a string; NULL when it is not one. */
static const char *list_string(const config_setting_t *list, int i)
{
	const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);

	return config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
}

static int check_address(struct loader *ld, const config_setting_t *g, const char *prefix, const char *address)
{
	struct netaddr addr;

	if (!netaddr_parse(address, &addr))
		return 0;
	return fail_at(ld, line_of(config_setting_get_member(g, "address")),
		       "key '%s.address' must be an IPv4 or IPv6 address, not \"%s\"", prefix, address);
}

static int load_listen(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "address", "port", "reuse_port", NULL };
	config_setting_t *g;
	long long port = c->listen_port;

	if (get_group(ld, root, "listen", &g) || (g && check_known_keys(ld, g, "listen", known)))
		return -1;
	if (get_string(ld, g, "listen", "address", &c->listen_address) ||
	    get_int(ld, g, "listen", "port", 1, 65535, &port) ||
	    get_bool(ld, g, "listen", "reuse_port", &c->listen_reuse_port))
		return -1;
	c->listen_port = (int)port;
	return check_address(ld, g, "listen", c->listen_address);
}

static int get_required_string(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
			       char **value)
{
	if (!config_setting_get_member(group, name))
		return fail_at(ld, line_of(group), "key '%s.%s' is required", prefix, name);
	return get_string(ld, group, prefix, name, value);
}

/* A relative path in the config is relative to the config file's directory, whatever the cwd. */
static int resolve_path(struct loader *ld, const config_setting_t *s, char **path)
{
	const char *slash = strrchr(ld->file, '/');
	char *joined;

	if (!*path || (*path)[0] == '/' || !slash)
		return 0;
	int dirlen = (int)(slash - ld->file);
	if (asprintf(&joined, "%.*s/%s", dirlen, ld->file, *path) < 0)
		return fail_at(ld, line_of(s), "out of memory");
	free(*path);
	*path = joined;
	return 0;
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

	if (get_group(ld, root, "listen_tls", &g))
		return -1;
	if (!g)
		return 0;
	c->has_tls = true;
	if (check_known_keys(ld, g, "listen_tls", known) ||
	    get_string(ld, g, "listen_tls", "address", &c->tls_address) ||
	    get_int(ld, g, "listen_tls", "port", 1, 65535, &port) ||
	    get_required_string(ld, g, "listen_tls", "cert", &c->tls_cert) ||
	    get_required_string(ld, g, "listen_tls", "key", &c->tls_key) ||
	    check_address(ld, g, "listen_tls", c->tls_address) ||
	    resolve_path(ld, config_setting_get_member(g, "cert"), &c->tls_cert) ||
	    resolve_path(ld, config_setting_get_member(g, "key"), &c->tls_key))
		return -1;
	c->tls_port = (int)port;
	if (c->tls_port == c->listen_port && (!strcmp(c->tls_address, c->listen_address) ||
					      is_wildcard(c->tls_address) || is_wildcard(c->listen_address)))
		return fail_at(ld,
			       line_of(config_setting_get_member(g, "port") ? config_setting_get_member(g, "port") : g),
			       "key 'listen_tls.port' must differ from 'listen.port' on the same address");
	switch (tls_check_files(c->tls_cert, c->tls_key, why, sizeof(why))) {
	case TLS_FILES_OK:
		return 0;
	case TLS_BAD_CERT:
		return fail_at(ld, line_of(config_setting_get_member(g, "cert")), "key 'listen_tls.cert': %s", why);
	case TLS_BAD_KEY:
		break;
	}
	return fail_at(ld, line_of(config_setting_get_member(g, "key")), "key 'listen_tls.key': %s", why);
}

static int load_proxy(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "trusted", NULL };
	config_setting_t *g, *list;

	if (get_group(ld, root, "proxy", &g))
		return -1;
	if (!g)
		return 0;
	if (check_known_keys(ld, g, "proxy", known))
		return -1;
	list = config_setting_get_member(g, "trusted");
	if (!list)
		return 0;
	int count = begin_list(ld, list, "proxy.trusted", "an array of addresses or networks",
			       sizeof(*c->trusted_proxies), (void **)&c->trusted_proxies);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *text = list_string(list, i);
		if (!text || netaddr_parse_net(text, &c->trusted_proxies[i]))
			return fail_at(ld, line_of(list),
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

	if (get_group(ld, root, "api", &g))
		return -1;
	if (!g)
		return 0;
	if (check_known_keys(ld, g, "api", known) ||
	    get_int(ld, g, "api", "max_body_bytes", 64, 16 * 1024 * 1024, &max))
		return -1;
	c->api_max_body_bytes = (size_t)max;
	keys = config_setting_get_member(g, "keys");
	if (!keys)
		return 0;
	int count =
		begin_list(ld, keys, "api.keys", "an array of strings", sizeof(*c->api_keys), (void **)&c->api_keys);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *key = list_string(keys, i);
		if (!key || strlen(key) < 16)
			return fail_at(ld, line_of(keys),
				       "key 'api.keys' entry %d must be a string of at least 16 characters", i + 1);
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

	if (get_group(ld, root, "limits", &g) || (g && check_known_keys(ld, g, "limits", known)))
		return -1;
	if (get_int(ld, g, "limits", "max_queued_bytes", 4096, 1024LL * 1024 * 1024, &queued) ||
	    get_uint(ld, g, "limits", "messages_per_second", 1, 1000000, &c->messages_per_second) ||
	    get_uint(ld, g, "limits", "burst", 1, 1000000, &c->burst) ||
	    get_uint(ld, g, "limits", "max_subscriptions", 1, 100000, &c->max_subscriptions) ||
	    get_uint(ld, g, "limits", "handshake_timeout_ms", 1000, 600000, &c->handshake_timeout_ms) ||
	    get_uint(ld, g, "limits", "max_per_ip", 0, 1000000, &c->max_per_ip) ||
	    get_uint(ld, g, "limits", "send_buffer_bytes", 4096, 16 * 1024 * 1024, &c->send_buffer_bytes))
		return -1;
	c->max_queued_bytes = (size_t)queued;
	return 0;
}

static int load_websocket(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "path", "max_message_bytes", NULL };
	config_setting_t *g;
	long long max = (long long)c->max_message_bytes;

	if (get_group(ld, root, "websocket", &g) || (g && check_known_keys(ld, g, "websocket", known)))
		return -1;
	if (get_string(ld, g, "websocket", "path", &c->ws_path) ||
	    get_int(ld, g, "websocket", "max_message_bytes", 16, 16 * 1024 * 1024, &max))
		return -1;
	if (c->ws_path[0] != '/' || strpbrk(c->ws_path, "?# \t")) {
		const config_setting_t *s = config_setting_get_member(g, "path");
		return fail_at(ld, line_of(s),
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

	if (get_group(ld, root, "auth", &g) || (g && check_known_keys(ld, g, "auth", known)))
		return -1;
	if (get_choice(ld, g, "auth", "reject", modes, "\"http\" or \"close\"", &reject))
		return -1;
	c->reject = (enum wsg_reject_mode)reject;

	origins = g ? config_setting_get_member(g, "origins") : NULL;
	if (!origins)
		return 0;
	int count = begin_list(ld, origins, "auth.origins", "an array of strings", sizeof(*c->origins),
			       (void **)&c->origins);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *origin = list_string(origins, i);
		if (!origin || !*origin)
			return fail_at(ld, line_of(origins),
				       "key 'auth.origins' must hold non-empty strings (entry %d)", i + 1);
		c->origins[i] = strdup(origin);
		if (!c->origins[i])
			return fail_at(ld, line_of(origins), "out of memory");
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

	if (get_group(ld, root, "sessions", &g) || (g && check_known_keys(ld, g, "sessions", known)))
		return -1;
	if (get_choice(ld, g, "sessions", "on_repeat", policies, "\"reject-new\" or \"replace-old\"", &on_repeat) ||
	    get_uint(ld, g, "sessions", "max", 1, 10000000, &c->max_sessions))
		return -1;
	c->on_repeat = (enum wsg_repeat_policy)on_repeat;
	return 0;
}

static int load_heartbeat(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "interval_ms", "timeout_ms", NULL };
	config_setting_t *g;

	if (get_group(ld, root, "heartbeat", &g) || (g && check_known_keys(ld, g, "heartbeat", known)))
		return -1;
	return get_uint(ld, g, "heartbeat", "interval_ms", 100, 3600000, &c->heartbeat_interval_ms) ||
			       get_uint(ld, g, "heartbeat", "timeout_ms", 100, 600000, &c->heartbeat_timeout_ms)
		       ? -1
		       : 0;
}

static int load_shutdown(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "grace_ms", "drain_ms", NULL };
	config_setting_t *g;

	if (get_group(ld, root, "shutdown", &g) || (g && check_known_keys(ld, g, "shutdown", known)))
		return -1;
	return get_uint(ld, g, "shutdown", "grace_ms", 0, 600000, &c->shutdown_grace_ms) ||
			       get_uint(ld, g, "shutdown", "drain_ms", 0, 3600000, &c->shutdown_drain_ms)
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

	if (get_group(ld, root, "http", &g) || (g && check_known_keys(ld, g, "http", known)) ||
	    get_string(ld, g, "http", "root", &c->http_root))
		return -1;
	s = g ? config_setting_get_member(g, "root") : NULL;
	if (c->http_root && !*c->http_root) {
		free(c->http_root);
		c->http_root = NULL;
	}
	if (!c->http_root)
		return 0;
	if (resolve_path(ld, s, &c->http_root))
		return -1;
	if (strlen(c->http_root) > WSG_HTTP_ROOT_MAX)
		return fail_at(ld, line_of(s), "key 'http.root' must be at most %d bytes long (after resolving)",
			       WSG_HTTP_ROOT_MAX);
	if (stat(c->http_root, &st) || !S_ISDIR(st.st_mode))
		return fail_at(ld, line_of(s), "key 'http.root' must name a directory: %s is not one", c->http_root);
	return 0;
}

static int load_globs(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      struct wsg_globs *globs)
{
	const config_setting_t *list = config_setting_get_member(group, name);
	char key[64];

	if (!list)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", prefix, name);
	int count = begin_list(ld, list, key, "an array of names or globs like \"chat.*\"", sizeof(*globs->items),
			       (void **)&globs->items);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *text = list_string(list, i);
		if (!text || !channel_glob_is_valid(text))
			return fail_at(ld, line_of(list),
				       "key '%s.%s' entry %d must be a name or glob: dot-separated segments of "
				       "A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest",
				       prefix, name, i + 1);
		globs->items[i] = strdup(text);
		if (!globs->items[i])
			return fail_at(ld, line_of(list), "out of memory");
		globs->count++;
	}
	return 0;
}

static void free_globs(struct wsg_globs *globs)
{
	for (size_t i = 0; i < globs->count; i++)
		free(globs->items[i]);
	free(globs->items);
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

	if (get_group(ld, root, "cluster", &g))
		return -1;
	if (!g)
		return 0;
	if (check_known_keys(ld, g, "cluster", known) ||
	    get_choice(ld, g, "cluster", "on_redis_down", modes, "\"refuse\" or \"local\"", &mode) ||
	    get_uint(ld, g, "cluster", "claim_ttl_ms", 300, 600000, &cl->claim_ttl_ms))
		return -1;
	cl->on_redis_down = (enum wsg_redis_down)mode;
	/* the cluster is on when it has a Redis: the shipped file has the group without one */
	s = config_setting_get_member(g, "redis");
	if (!s && !config_setting_get_member(g, "node"))
		return 0;
	cl->is_enabled = true;
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_at(ld, line_of(s ? s : g),
			       "key 'cluster.redis' must be a string like \"redis://127.0.0.1:6379/0\"");
	if (redis_url_parse(config_setting_get_string(s), &cl->url, why, sizeof(why)))
		return fail_at(ld, line_of(s), "key 'cluster.redis' %s", why);
	s = config_setting_get_member(g, "node");
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING ||
	    !auth_is_valid_id(config_setting_get_string(s), WSG_USER_MAX))
		return fail_at(
			ld, line_of(s ? s : g),
			"key 'cluster.node' must be 1 to %d characters of A-Z a-z 0-9 . _ : @ -, unique in the cluster",
			WSG_USER_MAX);
	snprintf(cl->node, sizeof(cl->node), "%s", config_setting_get_string(s));
	return 0;
}

/* ---- end cluster ---- */

/* ---- token expiry, tokens_file, lookup by digest (reload) ---- */

static bool is_leap_year(long year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static bool parse_digits(const char *p, int n, long *value)
{
	*value = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*value = *value * 10 + (p[i] - '0');
	}
	return true;
}

int config_parse_utc(const char *text, uint64_t *ms)
{
	static const int days_in_month[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long year, month, day, hour, minute, second;
	struct tm tm;

	/* exactly YYYY-MM-DDTHH:MM:SSZ: a time zone other than UTC is a mistake waiting to happen */
	if (strlen(text) != 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
	    text[13] != ':' || text[16] != ':' || (text[19] != 'Z' && text[19] != 'z') ||
	    !parse_digits(text, 4, &year) || !parse_digits(text + 5, 2, &month) || !parse_digits(text + 8, 2, &day) ||
	    !parse_digits(text + 11, 2, &hour) || !parse_digits(text + 14, 2, &minute) ||
	    !parse_digits(text + 17, 2, &second))
		return -1;
	if (year < 1970 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
		return -1;
	if (day > days_in_month[month - 1] + (month == 2 && is_leap_year(year)))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(year - 1900);
	tm.tm_mon = (int)(month - 1);
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)minute;
	tm.tm_sec = (int)second;
	time_t t = timegm(&tm);
	if (t < 0)
		return -1;
	*ms = (uint64_t)t * 1000;
	return 0;
}

static int load_expiry(struct loader *ld, const config_setting_t *entry, const char *prefix, struct wsg_token *t)
{
	const config_setting_t *s = config_setting_get_member(entry, "expires");

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    config_parse_utc(config_setting_get_string(s), &t->expires_ms))
		return fail_at(ld, line_of(s),
			       "key '%s.expires' must be a UTC time like \"2027-01-31T00:00:00Z\" (RFC 3339)", prefix);
	/* 0 means "never": the first second of 1970 expires a millisecond later */
	if (!t->expires_ms)
		t->expires_ms = 1;
	return 0;
}

static int compare_digests(const void *a, const void *b, void *tokens)
{
	const struct wsg_token *t = tokens;

	return memcmp(t[*(const size_t *)a].digest, t[*(const size_t *)b].digest, WSG_TOKEN_DIGEST_LEN);
}

static int index_tokens(struct loader *ld, struct wsg_config *c)
{
	c->token_order = calloc(c->token_count + 1, sizeof(*c->token_order));
	if (!c->token_order)
		return fail_at(ld, 1, "out of memory");
	for (size_t i = 0; i < c->token_count; i++)
		c->token_order[i] = i;
	qsort_r(c->token_order, c->token_count, sizeof(*c->token_order), compare_digests, c->tokens);
	return 0;
}

const struct wsg_token *config_find_token(const struct wsg_config *c, const unsigned char digest[WSG_TOKEN_DIGEST_LEN])
{
	size_t lo = 0, hi = c->token_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct wsg_token *t = &c->tokens[c->token_order[mid]];
		int cmp = memcmp(digest, t->digest, WSG_TOKEN_DIGEST_LEN);
		if (!cmp)
			return t;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int load_tokens(struct loader *ld, const config_setting_t *root, struct wsg_config *c);

/*
 * tokens_file: the token list in a file of its own (`tokens = ( ... );` and
 * nothing else), so operators can manage tokens apart from the server
 * config. It holds secrets: refused when others than its owner may read it.
 * Errors in it name that file and its lines.
 */
static int load_tokens_file(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "tokens", NULL };
	const config_setting_t *s = config_setting_get_member(root, "tokens_file");
	struct loader tld = *ld;
	struct stat st;
	config_t cfg;
	int rc = -1;

	if (config_setting_get_member(root, "tokens"))
		return fail_at(ld, line_of(config_setting_get_member(root, "tokens")),
			       "keys 'tokens' and 'tokens_file' exclude each other: keep the tokens in one place");
	if (config_setting_type(s) != CONFIG_TYPE_STRING || !*config_setting_get_string(s))
		return fail_at(ld, line_of(s), "key 'tokens_file' must be a non-empty string");
	c->tokens_file = strdup(config_setting_get_string(s));
	if (!c->tokens_file)
		return fail_at(ld, line_of(s), "out of memory");
	if (resolve_path(ld, s, &c->tokens_file))
		return -1;
	if (stat(c->tokens_file, &st))
		return fail_at(ld, line_of(s), "key 'tokens_file': cannot read '%s': %s", c->tokens_file,
			       strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return fail_at(ld, line_of(s),
			       "key 'tokens_file': '%s' is readable by others than its owner (mode %04o); chmod 600 it",
			       c->tokens_file, (unsigned)(st.st_mode & 07777));
	config_init(&cfg);
	tld.file = c->tokens_file;
	if (!config_read_file(&cfg, c->tokens_file)) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			fail_at(ld, line_of(s), "key 'tokens_file': cannot read '%s': %s", c->tokens_file,
				strerror(errno));
		else
			fail_at(&tld, config_error_line(&cfg), "%s", config_error_text(&cfg));
		goto out;
	}
	const config_setting_t *troot = config_root_setting(&cfg);
	if (check_known_keys(&tld, troot, NULL, known) || load_tokens(&tld, troot, c))
		goto out;
	rc = 0;
out:
	config_destroy(&cfg);
	return rc;
}

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

/* ---- end of token expiry, tokens_file, lookup ---- */

/* ---- history: `history = { size; ttl_ms; }`, `history_channels = ( { channel; size; ttl_ms; } )` ---- */

#define HISTORY_SIZE_MAX   100000
#define HISTORY_TTL_MS_MIN 100
#define HISTORY_TTL_MS_MAX (7LL * 24 * 3600 * 1000)

static int load_history_limits(struct loader *ld, const config_setting_t *g, const char *prefix,
			       struct wsg_history_limits *limits)
{
	return get_uint(ld, g, prefix, "size", 0, HISTORY_SIZE_MAX, &limits->size) ||
			       get_uint(ld, g, prefix, "ttl_ms", HISTORY_TTL_MS_MIN, HISTORY_TTL_MS_MAX,
					&limits->ttl_ms)
		       ? -1
		       : 0;
}

static int load_history(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "size", "ttl_ms", NULL };
	static const char *const rule_known[] = { "channel", "size", "ttl_ms", NULL };
	const config_setting_t *list = config_setting_get_member(root, "history_channels");
	config_setting_t *g;
	char prefix[48];

	if (get_group(ld, root, "history", &g) || (g && check_known_keys(ld, g, "history", known)) ||
	    load_history_limits(ld, g, "history", &c->history))
		return -1;
	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return fail_at(
			ld, line_of(list),
			"key 'history_channels' must be a list ( { channel = \"chat.**\"; size = 1000; }, ... )");
	int count = config_setting_length(list);
	c->history_rules = calloc((size_t)count + 1, sizeof(*c->history_rules));
	if (!c->history_rules)
		return fail_at(ld, line_of(list), "out of memory");
	for (int i = 0; i < count; i++) {
		const config_setting_t *entry = config_setting_get_elem(list, (unsigned)i), *channel;
		struct wsg_history_rule *rule = &c->history_rules[i];
		snprintf(prefix, sizeof(prefix), "history_channels.[%d]", i);
		if (!config_setting_is_group(entry))
			return fail_at(ld, line_of(entry), "key '%s' must be a group { channel = \"...\"; size = N; }",
				       prefix);
		if (check_known_keys(ld, entry, prefix, rule_known))
			return -1;
		channel = config_setting_get_member(entry, "channel");
		if (!channel || config_setting_type(channel) != CONFIG_TYPE_STRING ||
		    !channel_glob_is_valid(config_setting_get_string(channel)))
			return fail_at(ld, line_of(channel ? channel : entry),
				       "key '%s.channel' must be a channel name or glob: dot-separated segments of "
				       "A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest",
				       prefix);
		rule->limits = c->history; /* what the rule leaves out */
		if (load_history_limits(ld, entry, prefix, &rule->limits))
			return -1;
		if (!(rule->channel = strdup(config_setting_get_string(channel))))
			return fail_at(ld, line_of(channel), "out of memory");
		c->history_rule_count++;
	}
	return 0;
}

struct wsg_history_limits config_history_limits(const struct wsg_config *c, const char *name)
{
	for (size_t i = 0; i < c->history_rule_count; i++)
		if (channel_glob_match(c->history_rules[i].channel, name))
			return c->history_rules[i].limits;
	return c->history;
}

static void free_history(struct wsg_config *c)
{
	for (size_t i = 0; i < c->history_rule_count; i++)
		free(c->history_rules[i].channel);
	free(c->history_rules);
}

/* ---- end history ---- */

static int load_token(struct loader *ld, const config_setting_t *entry, int index, struct wsg_token *t)
{
	static const char *const known[] = { "token", "user", "subscribe", "publish", "send", "expires", NULL };
	const config_setting_t *token, *user;
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "tokens.[%d]", index);
	if (!config_setting_is_group(entry))
		return fail_at(ld, line_of(entry), "key '%s' must be a group { token = \"...\"; user = \"...\"; }",
			       prefix);
	if (check_known_keys(ld, entry, prefix, known))
		return -1;
	token = config_setting_get_member(entry, "token");
	user = config_setting_get_member(entry, "user");
	if (!token || config_setting_type(token) != CONFIG_TYPE_STRING || !*config_setting_get_string(token))
		return fail_at(ld, line_of(token ? token : entry), "key '%s.token' must be a non-empty string", prefix);
	if (strlen(config_setting_get_string(token)) > 4096)
		return fail_at(ld, line_of(token), "key '%s.token' must be at most 4096 bytes", prefix);
	if (!user || config_setting_type(user) != CONFIG_TYPE_STRING ||
	    !auth_is_valid_id(config_setting_get_string(user), WSG_USER_MAX) || !*config_setting_get_string(user))
		return fail_at(ld, line_of(user ? user : entry),
			       "key '%s.user' must be 1 to %d characters of A-Z a-z 0-9 . _ : @ -", prefix,
			       WSG_USER_MAX);
	auth_token_digest(config_setting_get_string(token), strlen(config_setting_get_string(token)), t->digest);
	t->user = strdup(config_setting_get_string(user));
	if (!t->user)
		return fail_at(ld, line_of(user), "out of memory");
	return load_globs(ld, entry, prefix, "subscribe", &t->subscribe) ||
			       load_globs(ld, entry, prefix, "publish", &t->publish) ||
			       load_globs(ld, entry, prefix, "send", &t->send) || load_expiry(ld, entry, prefix, t)
		       ? -1
		       : 0;
}

static int load_tokens(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	const config_setting_t *list = config_setting_get_member(root, "tokens");

	if (!list)
		return fail_at(ld, 1, "missing required key 'tokens' (a list of { token = \"...\"; user = \"...\"; })");
	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return fail_at(ld, line_of(list),
			       "key 'tokens' must be a non-empty list ( { token = \"...\"; user = \"...\"; }, ... )");
	int count = config_setting_length(list);
	c->tokens = calloc((size_t)count, sizeof(*c->tokens));
	if (!c->tokens)
		return fail_at(ld, line_of(list), "out of memory");
	for (int i = 0; i < count; i++) {
		const config_setting_t *entry = config_setting_get_elem(list, (unsigned)i);
		c->token_count++; /* counted first so a half-loaded entry is freed too */
		if (load_token(ld, entry, i, &c->tokens[i]))
			return -1;
		for (int j = 0; j < i; j++)
			if (!memcmp(c->tokens[j].digest, c->tokens[i].digest, WSG_TOKEN_DIGEST_LEN))
				return fail_at(ld, line_of(config_setting_get_member(entry, "token")),
					       "key 'tokens.[%d].token' repeats the token of entry %d", i, j);
	}
	return 0;
}

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
	return fail_at(ld, s ? line_of(s) : 1,
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
		fail_at(&ld, config_error_line(&cfg), "%s", config_error_text(&cfg));
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
	if (check_known_keys(&ld, root, NULL, known) || load_listen(&ld, root, c) || load_listen_tls(&ld, root, c) ||
	    load_proxy(&ld, root, c) || load_websocket(&ld, root, c) || load_auth(&ld, root, c) ||
	    load_sessions(&ld, root, c) || load_heartbeat(&ld, root, c) || load_shutdown(&ld, root, c) ||
	    load_limits(&ld, root, c) || load_api(&ld, root, c) ||
	    (config_setting_get_member(root, "tokens_file") ? load_tokens_file(&ld, root, c)
							    : load_tokens(&ld, root, c)) ||
	    index_tokens(&ld, c) || check_limits_fit(&ld, root, c) || load_http(&ld, root, c) ||
	    load_history(&ld, root, c) || load_cluster(&ld, root, c))
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
	for (size_t i = 0; i < c->token_count; i++) {
		free(c->tokens[i].user);
		free_globs(&c->tokens[i].subscribe);
		free_globs(&c->tokens[i].publish);
		free_globs(&c->tokens[i].send);
	}
	free(c->api_keys);
	free(c->tokens);
	free(c->tokens_file);
	free(c->token_order);
	free_history(c);
	explicit_bzero(&c->cluster.url, sizeof(c->cluster.url)); /* the Redis password */
	free(c);
}
