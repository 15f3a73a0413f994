/*
 * The cluster on Redis (see cluster.h). Two asynchronous hiredis connections
 * per node on the server's libev loop: one for commands, one for pub/sub.
 * Every multi-step change is one Lua script, so Redis applies it atomically:
 * a claim (check, maybe tell the old owner, take), a publish (INCR the
 * channel's seq and PUBLISH with it, so every node receives a channel's
 * messages in seq order), the node's heartbeat (renew and reap dead nodes).
 * Never logs the Redis password; never blocks the loop on Redis.
 *
 * Redis data (keys in the configured db, pub/sub channels prefixed with it):
 *   wsgate:node:N          this node is alive (PX claim_ttl_ms, renewed every ttl/3)
 *   wsgate:nodes           set of node names, for presence and reaping
 *   wsgate:claim:U/D       "N/SESSION": who holds (user U, device D); valid while N is alive
 *   wsgate:claims:N        set of the claim keys N took (reaped when N dies)
 *   wsgate:sessions:N      hash SESSION -> JSON presence of N's sessions
 *   wsgate:seq:C           the last seq of channel C
 *   wsgate:DB:ch:C         pub/sub: "SEQ\nDELIVERY" for channel C
 *   wsgate:DB:to:N         pub/sub: control for node N ("replace\nN/SESSION\nU\nD")
 *   wsgate:DB:all          pub/sub: "send\nORIGIN\nUSER\nDELIVERY", "disconnect\nORIGIN\nU\nD|*\nCODE\nREASON"
 */
#define _GNU_SOURCE /* asprintf */
#include "cluster.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libev.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "hash.h"
#include "log.h"
#include "message.h"
#include "server.h"
#include "util.h"

#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 2000
#define CLUSTER_KEY_MAX	       512

/* KEYS: claim key, own claims set, own sessions hash. ARGV: node, "node/sid", policy, json, sid, "user\ndevice", ctl
 * prefix */
static const char claim_script[] =
	"local cur = redis.call('GET', KEYS[1])\n"
	"if cur and cur ~= ARGV[2] then\n"
	"  local node = string.match(cur, '^([^/]*)/')\n"
	"  if node and node ~= ARGV[1] and redis.call('EXISTS', 'wsgate:node:' .. node) == 1 then\n"
	"    if ARGV[3] ~= 'replace' then return {0, cur} end\n"
	"    redis.call('PUBLISH', ARGV[7] .. node, 'replace\\n' .. cur .. '\\n' .. ARGV[6])\n"
	"  end\n"
	"end\n"
	"redis.call('SET', KEYS[1], ARGV[2])\n"
	"redis.call('SADD', KEYS[2], KEYS[1])\n"
	"redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])\n"
	"return {1, cur or ''}\n";

/* KEYS: claim key, own claims set, own sessions hash. ARGV: "node/sid", sid */
static const char release_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
				     "  redis.call('DEL', KEYS[1])\n"
				     "  redis.call('SREM', KEYS[2], KEYS[1])\n"
				     "end\n"
				     "redis.call('HDEL', KEYS[3], ARGV[2])\n"
				     "return 0\n";

/* Forgets node n: its claims (those still its own), its claim set and its presence. */
#define FORGET_NODE                                                                                                    \
	"local function forget(n)\n"                                                                                   \
	"  local prefix = n .. '/'\n"                                                                                  \
	"  for _, k in ipairs(redis.call('SMEMBERS', 'wsgate:claims:' .. n)) do\n"                                     \
	"    local v = redis.call('GET', k)\n"                                                                         \
	"    if v and string.sub(v, 1, #prefix) == prefix then redis.call('DEL', k) end\n"                             \
	"  end\n"                                                                                                      \
	"  redis.call('DEL', 'wsgate:claims:' .. n, 'wsgate:sessions:' .. n)\n"                                        \
	"end\n"

/*
 * ARGV: node, ttl_ms, instance. Renews this node; reaps nodes whose key expired. One call per node per
 * ttl/3. Returns 0; 1 when this node's key had lapsed (its claims may have been reaped: claim them
 * again); 2 when another process holds the node's name (nothing renewed).
 */
static const char heartbeat_script[] = FORGET_NODE "local key = 'wsgate:node:' .. ARGV[1]\n"
						   "local cur = redis.call('GET', key)\n"
						   "if cur and cur ~= ARGV[3] then return 2 end\n"
						   "redis.call('SET', key, ARGV[3], 'PX', ARGV[2])\n"
						   "redis.call('SADD', 'wsgate:nodes', ARGV[1])\n"
						   "for _, n in ipairs(redis.call('SMEMBERS', 'wsgate:nodes')) do\n"
						   "  if redis.call('EXISTS', 'wsgate:node:' .. n) == 0 then\n"
						   "    forget(n)\n"
						   "    redis.call('SREM', 'wsgate:nodes', n)\n"
						   "  end\n"
						   "end\n"
						   "if not cur then return 1 end\n"
						   "return 0\n";

/* ARGV: node, ttl_ms, instance. A (re)connected node starts clean (a previous process of it left claims), then
 * re-claims. */
static const char reset_script[] = FORGET_NODE "forget(ARGV[1])\n"
					       "redis.call('SET', 'wsgate:node:' .. ARGV[1], ARGV[3], 'PX', ARGV[2])\n"
					       "redis.call('SADD', 'wsgate:nodes', ARGV[1])\n"
					       "return 0\n";

/* ARGV: node. A clean exit: the claims go at once, not after claim_ttl_ms. */
static const char leave_script[] = FORGET_NODE "forget(ARGV[1])\n"
					       "redis.call('DEL', 'wsgate:node:' .. ARGV[1])\n"
					       "redis.call('SREM', 'wsgate:nodes', ARGV[1])\n"
					       "return 0\n";

/* KEYS: seq key. ARGV: pub/sub channel, delivery before the seq, after it. */
static const char publish_script[] = "local seq = redis.call('INCR', KEYS[1])\n"
				     "redis.call('PUBLISH', ARGV[1], seq .. '\\n' .. ARGV[2] .. seq .. ARGV[3])\n"
				     "return seq\n";

/* KEYS: seq key. ARGV: the last seq this node delivered. A Redis that restarted empty goes on from there. */
static const char raise_seq_script[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
				       "if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
				       "return 0\n";

/* The presence of every live node's sessions: a list of JSON texts. */
static const char list_script[] = "local out = {}\n"
				  "for _, n in ipairs(redis.call('SMEMBERS', 'wsgate:nodes')) do\n"
				  "  if redis.call('EXISTS', 'wsgate:node:' .. n) == 1 then\n"
				  "    for _, v in ipairs(redis.call('HVALS', 'wsgate:sessions:' .. n)) do\n"
				  "      out[#out + 1] = v\n"
				  "    end\n"
				  "  end\n"
				  "end\n"
				  "return out\n";

enum claim_policy { CLAIM_REJECT, CLAIM_REPLACE, CLAIM_RECLAIM };

/* A session waiting for its claim's answer; outlives the session (then s is NULL) to release what it took. */
struct claim {
	struct registry_entry entry; /* in cluster.claiming while s waits */
	struct cluster *cl;
	struct session *s;
	bool is_replaced; /* a newer session elsewhere took it before the answer came */
	char *user, *device;
	char owner[WSG_USER_MAX + WSG_SESSION_ID_LEN + 2]; /* "node/sid" */
	char sid[WSG_SESSION_ID_LEN + 1];
};

/* One Redis subscription per channel per node; the states keep hiredis 0.14's callback table right. */
enum remote_state { REMOTE_SUBSCRIBED, REMOTE_UNSUBSCRIBING };

struct remote_channel {
	struct ht_node node;
	char *name;
	enum remote_state state;
	bool is_wanted; /* while unsubscribing: subscribe again once Redis confirms */
};

struct cluster {
	struct wsg_server *server;
	struct wsg_cluster_config conf; /* a copy: a reload never changes it */
	char where[300];		/* host:port/db for logs, no password */
	redisAsyncContext *cmd, *sub;
	bool is_cmd_ready, is_sub_ready, is_up, is_tearing_down, was_up;
	unsigned backoff_ms;
	ev_timer retry, renew;
	uint64_t renew_sent_ms;
	bool is_renew_outstanding;
	struct registry claiming; /* sessions waiting for a claim, by (user, device) */
	struct hashtable remote;  /* remote_channel by name */
	uint64_t key[2];
	char prefix[32]; /* "wsgate:DB:" for pub/sub channel names */
	char ctl_channel[160], all_channel[64], ctl_prefix[64];
	char instance[17]; /* this process, in its node key: two processes with one node name are told */
	/* the hot scripts go as EVALSHA: loaded on every (re)connect, before any use on that connection */
	char claim_sha[2 * SHA_DIGEST_LENGTH + 1], release_sha[2 * SHA_DIGEST_LENGTH + 1],
		publish_sha[2 * SHA_DIGEST_LENGTH + 1];
	uint64_t reconnects, refused, local_admits, claims_taken, claims_refused, replaced_remote, messages_in;
};

static struct cluster *cluster_of(const struct wsg_server *server)
{
	return server->cluster;
}

bool cluster_is_enabled(const struct wsg_server *server)
{
	return server->cluster != NULL;
}

static void claim_key(char *out, size_t len, const char *user, const char *device)
{
	snprintf(out, len, "wsgate:claim:%s/%s", user, device);
}

/* ---- presence ---- */

static char *session_json(const struct session *s, const char *node)
{
	json_t *channels = json_array();
	uint64_t now_ms = util_now_ms(), now_wall_ms = util_wall_ms();

	for (struct subscription *sub = s->subscriptions.first; channels && sub; sub = sub->owner_next)
		json_array_append_new(channels, json_string(sub->channel->name));
	json_t *obj =
		json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s}", "session", s->id, "user", s->user, "device", s->device,
			  "peer", session_peer(s), "since", (json_int_t)session_opened_wall_ms(s, now_ms, now_wall_ms),
			  "channels", channels, "node", node);
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(obj);
	return text;
}

static void update_presence(struct cluster *cl, struct session *s)
{
	char key[CLUSTER_KEY_MAX];
	char *text;

	if (!cl->is_up || !s->is_admitted || !s->entry.is_registered || !(text = session_json(s, cl->conf.node)))
		return;
	snprintf(key, sizeof(key), "wsgate:sessions:%s", cl->conf.node);
	redisAsyncCommand(cl->cmd, NULL, NULL, "HSET %s %s %s", key, s->id, text);
	free(text);
}

/* ---- channels: one Redis subscription per channel with local subscribers ---- */

static void on_sub_message(redisAsyncContext *ac, void *reply, void *privdata);

static struct remote_channel *find_remote(struct cluster *cl, const char *name, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&cl->remote, hash); n; n = n->next) {
		struct remote_channel *r = lws_container_of(n, struct remote_channel, node);
		if (n->hash == hash && !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

static void send_subscribe(struct cluster *cl, const char *verb, const char *name)
{
	if (cl->is_sub_ready)
		redisAsyncCommand(cl->sub, on_sub_message, cl, "%s %sch:%s", verb, cl->prefix, name);
}

static void remote_want(struct cluster *cl, const char *name, bool wanted)
{
	uint64_t hash = siphash_string(cl->key, name);
	struct remote_channel *r = find_remote(cl, name, hash);

	if (wanted) {
		if (r) {
			r->is_wanted = true; /* subscribed, or subscribed again once the unsubscribe is confirmed */
			return;
		}
		r = calloc(1, sizeof(*r));
		if (!r || !(r->name = strdup(name))) {
			free(r);
			log_event(LOG_ERROR, "cluster", "msg=\"out of memory subscribing a channel\"");
			return;
		}
		r->state = REMOTE_SUBSCRIBED;
		r->is_wanted = true;
		ht_insert(&cl->remote, &r->node, hash);
		send_subscribe(cl, "SUBSCRIBE", name);
		return;
	}
	if (!r)
		return;
	r->is_wanted = false;
	if (r->state == REMOTE_SUBSCRIBED && cl->is_sub_ready) {
		r->state = REMOTE_UNSUBSCRIBING;
		send_subscribe(cl, "UNSUBSCRIBE", name);
	} else if (r->state == REMOTE_SUBSCRIBED) {
		ht_remove(&cl->remote, &r->node); /* Redis is down: nothing to undo there */
		free(r->name);
		free(r);
	}
}

/* Redis confirmed an unsubscribe: forget the channel, or subscribe again if a local subscriber came meanwhile. */
static void remote_unsubscribed(struct cluster *cl, const char *name)
{
	uint64_t hash = siphash_string(cl->key, name);
	struct remote_channel *r = find_remote(cl, name, hash);

	if (!r || r->state != REMOTE_UNSUBSCRIBING)
		return;
	if (r->is_wanted) {
		r->state = REMOTE_SUBSCRIBED;
		send_subscribe(cl, "SUBSCRIBE", name);
		return;
	}
	ht_remove(&cl->remote, &r->node);
	free(r->name);
	free(r);
}

static void on_router_event(void *ctx, enum router_event event, const struct channel *c, void *owner)
{
	struct cluster *cl = ctx;

	switch (event) {
	case ROUTER_CHANNEL_OPENED:
		remote_want(cl, c->name, true);
		break;
	case ROUTER_CHANNEL_CLOSED:
		remote_want(cl, c->name, false);
		break;
	case ROUTER_SUBSCRIBED:
	case ROUTER_UNSUBSCRIBED:
		update_presence(cl, owner);
		break;
	}
}

/* A channel message from Redis, "SEQ\nDELIVERY": framed once, queued for every local subscriber. */
static void deliver_channel(struct cluster *cl, const char *name, const char *payload, size_t len)
{
	struct router *router = &cl->server->router;
	struct channel *c = router_find(router, name);
	const char *nl = memchr(payload, '\n', len);
	uint64_t seq = 0, now_ms = util_now_ms();
	bool is_oom;

	/* no local subscriber any more (it may stay for its history): an unsubscribe is on its way */
	if (!c || !c->count || !nl)
		return;
	for (const char *p = payload; p < nl; p++)
		seq = seq * 10 + (uint64_t)(*p - '0');
	if (!seq)
		return;
	/* this node's history of the channel (app/history.h), kept as a publish here would keep it */
	if (!c->history && !c->is_history_off) {
		struct wsg_history_limits conf = config_history_limits(cl->server->config, name);
		struct history_limits limits = { conf.size, conf.ttl_ms };
		router_open(router, name, &limits, &is_oom);
	}
	struct outmsg *msg = outmsg_new(nl + 1, len - (size_t)(nl + 1 - payload));
	if (!msg)
		return;
	/* Redis publishes in seq order and never twice on one subscription: recorded as that seq */
	c->seq = seq - 1;
	router_record(router, c, msg, now_ms);
	for (struct subscription *sub = c->first; sub; sub = sub->channel_next)
		session_queue(sub->owner, msg);
	outmsg_unref(msg);
}

/* ---- control messages between nodes (through Redis pub/sub only) ---- */

/* Splits text at '\n' into at most max fields (the last takes the rest); returns the count. */
static size_t split_lines(char *text, char **fields, size_t max)
{
	size_t n = 0;

	while (n < max) {
		fields[n++] = text;
		if (n == max)
			break;
		char *nl = strchr(text, '\n');
		if (!nl)
			break;
		*nl = '\0';
		text = nl + 1;
	}
	return n;
}

static struct claim *find_claim(struct cluster *cl, const char *user, const char *device)
{
	struct registry_entry *e = registry_find(&cl->claiming, user, device);

	return e ? lws_container_of(e, struct claim, entry) : NULL;
}

/* "replace\nN/SID\nUSER\nDEVICE": a newer session on another node took the key from our session SID. */
static void on_replace(struct cluster *cl, char **f, size_t n)
{
	const char *slash = n == 4 ? strchr(f[1], '/') : NULL;
	struct registry_entry *e;

	if (!slash)
		return;
	const char *sid = slash + 1;
	e = registry_find(&cl->server->registry, f[2], f[3]);
	if (e && !strcmp(session_of_entry(e)->id, sid)) {
		cl->replaced_remote++;
		session_close(session_of_entry(e), WSG_CLOSE_REPLACED, NULL);
		return;
	}
	struct claim *c = find_claim(cl, f[2], f[3]);
	if (c && !strcmp(c->sid, sid))
		c->is_replaced = true; /* its claim's answer has not come yet */
}

static void on_broadcast(struct cluster *cl, char *payload, size_t len)
{
	struct wsg_server *server = cl->server;
	char *f[6] = { NULL };
	size_t n;

	(void)len;
	if (!strncmp(payload, "send\n", 5)) {
		n = split_lines(payload, f, 4);
		if (n != 4 || !strcmp(f[1], cl->conf.node))
			return; /* ours was delivered here already */
		struct outmsg *msg = outmsg_new(f[3], strlen(f[3]));
		if (!msg)
			return;
		for (struct registry_entry *e = registry_first_of_user(&server->registry, f[2]), *next; e; e = next) {
			next = e->user_next; /* a slow consumer's close takes e out */
			session_queue(session_of_entry(e), msg);
		}
		outmsg_unref(msg);
	} else if (!strncmp(payload, "disconnect\n", 11)) {
		n = split_lines(payload, f, 6);
		if (n != 6 || !strcmp(f[1], cl->conf.node))
			return;
		/* as server_disconnect does for the API call on its own node */
		for (struct registry_entry *e = registry_first_of_user(&server->registry, f[2]), *next; e; e = next) {
			struct session *s = session_of_entry(e);
			next = e->user_next; /* the close takes e out of the registry */
			if (strcmp(f[3], "*") && strcmp(f[3], s->device))
				continue;
			session_close(s, (int)strtol(f[4], NULL, 10), f[5]);
		}
	}
}

static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
	struct cluster *cl = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	const char *kind = reply->element[0]->str, *channel = reply->element[1]->str;
	size_t plen = strlen(cl->prefix);
	if (!strcmp(kind, "subscribe")) {
		if (!strcmp(channel, cl->ctl_channel) && !cl->is_sub_ready) {
			cl->is_sub_ready = true;
			/* every channel with local subscribers again (a reconnect) */
			for (size_t b = 0; b < cl->remote.bucket_count; b++)
				for (struct ht_node *nd = cl->remote.buckets[b]; nd; nd = nd->next) {
					struct remote_channel *rc = lws_container_of(nd, struct remote_channel, node);
					rc->state = REMOTE_SUBSCRIBED;
					if (rc->is_wanted)
						send_subscribe(cl, "SUBSCRIBE", rc->name);
				}
		}
		return;
	}
	if (!strcmp(kind, "unsubscribe")) {
		if (!strncmp(channel, cl->prefix, plen) && !strncmp(channel + plen, "ch:", 3))
			remote_unsubscribed(cl, channel + plen + 3);
		return;
	}
	if (strcmp(kind, "message") || reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	cl->messages_in++;
	char *payload = reply->element[2]->str;
	size_t len = reply->element[2]->len;
	if (!strncmp(channel, cl->prefix, plen) && !strncmp(channel + plen, "ch:", 3)) {
		deliver_channel(cl, channel + plen + 3, payload, len);
	} else if (!strcmp(channel, cl->all_channel)) {
		on_broadcast(cl, payload, len);
	} else if (!strcmp(channel, cl->ctl_channel) && !strncmp(payload, "replace\n", 8)) {
		char *f[4] = { NULL };
		size_t n = split_lines(payload, f, 4);
		on_replace(cl, f, n);
	}
}

/* ---- claims ---- */

static void load_scripts(struct cluster *cl);

static void forget_claim(struct claim *c)
{
	registry_remove(&c->cl->claiming, &c->entry);
	free(c->user);
	free(c->device);
	free(c);
}

static void send_release(struct cluster *cl, const char *user, const char *device, const char *owner, const char *sid)
{
	char key[CLUSTER_KEY_MAX], set[CLUSTER_KEY_MAX], hash[CLUSTER_KEY_MAX];

	if (!cl->is_up)
		return; /* reset_script at the reconnect forgets it */
	claim_key(key, sizeof(key), user, device);
	snprintf(set, sizeof(set), "wsgate:claims:%s", cl->conf.node);
	snprintf(hash, sizeof(hash), "wsgate:sessions:%s", cl->conf.node);
	redisAsyncCommand(cl->cmd, NULL, NULL, "EVALSHA %s 3 %s %s %s %s %s", cl->release_sha, key, set, hash, owner,
			  sid);
}

/* The session reads again and goes on: admitted, or closed by the caller. */
static void unhold(struct session *s)
{
	lws_rx_flow_control(s->wsi, 1);
}

/* Redis down (or gone while the claim waited): on_redis_down decides. */
static void admit_without_redis(struct cluster *cl, struct session *s)
{
	if (cl->conf.on_redis_down == WSG_REDIS_DOWN_REFUSE) {
		cl->refused++;
		session_close(s, WSG_CLOSE_AT_CAPACITY, "try again later");
		return;
	}
	cl->local_admits++;
	log_event(LOG_WARN, "cluster_admit_local",
		  "user=%s device=%s msg=\"Redis is down: admitted on this node's knowledge only\"", s->user,
		  *s->device ? s->device : "-");
	session_admit(s);
}

static void on_claim_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct claim *c = privdata;
	struct cluster *cl = c->cl;
	struct session *s = c->s;
	redisReply *reply = r;
	bool is_taken = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
			reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1;

	(void)ac;
	if (!s) { /* the client left while we asked */
		if (is_taken)
			send_release(cl, c->user, c->device, c->owner, c->sid);
		forget_claim(c);
		return;
	}
	registry_remove(&cl->claiming, &c->entry);
	unhold(s);
	if (!reply || reply->type == REDIS_REPLY_ERROR) {
		if (reply)
			log_event(LOG_ERROR, "cluster", "msg=\"claim failed: %s\"", reply->str);
		if (reply && !strncmp(reply->str, "NOSCRIPT", 8) && cl->is_up)
			load_scripts(cl); /* someone ran SCRIPT FLUSH: the next claims find them again */
		forget_claim(c);
		return admit_without_redis(cl, s);
	}
	if (!is_taken) {
		cl->claims_refused++;
		forget_claim(c);
		s->server->metrics.handshakes[HANDSHAKE_REPEAT_CONNECT]++;
		return session_close(s, WSG_CLOSE_REPEAT_CONNECT, NULL);
	}
	cl->claims_taken++;
	if (session_has_close(s) || c->is_replaced || s->server->is_stopping ||
	    registry_find(&s->server->registry, s->user, s->device)) {
		/* closed meanwhile, or replaced on another node before we even opened */
		send_release(cl, c->user, c->device, c->owner, c->sid);
		int code = s->server->is_stopping ? WSG_CLOSE_SHUTDOWN
			   : c->is_replaced	  ? WSG_CLOSE_REPLACED
						  : WSG_CLOSE_REPEAT_CONNECT;
		forget_claim(c);
		session_close(s, code, NULL);
		return;
	}
	forget_claim(c);
	session_admit(s);
}

static int send_claim(struct cluster *cl, struct session *s, enum claim_policy policy, redisCallbackFn *fn,
		      void *privdata)
{
	static const char *const policies[] = { "reject", "replace", "reclaim" };
	char key[CLUSTER_KEY_MAX], set[CLUSTER_KEY_MAX], hash[CLUSTER_KEY_MAX], owner[CLUSTER_KEY_MAX];
	char who[WSG_USER_MAX + WSG_DEVICE_MAX + 2];
	char *json = session_json(s, cl->conf.node);

	if (!json)
		return -1;
	claim_key(key, sizeof(key), s->user, s->device);
	snprintf(set, sizeof(set), "wsgate:claims:%s", cl->conf.node);
	snprintf(hash, sizeof(hash), "wsgate:sessions:%s", cl->conf.node);
	snprintf(owner, sizeof(owner), "%s/%s", cl->conf.node, s->id);
	snprintf(who, sizeof(who), "%s\n%s", s->user, s->device);
	int rc = redisAsyncCommand(cl->cmd, fn, privdata, "EVALSHA %s 3 %s %s %s %s %s %s %s %s %s %s", cl->claim_sha,
				   key, set, hash, cl->conf.node, owner, policies[policy], json, s->id, who,
				   cl->ctl_prefix);
	free(json);
	return rc == REDIS_OK ? 0 : -1;
}

bool cluster_claim(struct session *s)
{
	struct cluster *cl = cluster_of(s->server);
	struct claim *c;

	if (!cl)
		return false;
	/* the same key waiting for its own claim on this node: the local policy, as with the registry */
	c = find_claim(cl, s->user, s->device);
	if (c) {
		if (s->server->config->on_repeat == WSG_REPEAT_REJECT_NEW) {
			s->server->metrics.handshakes[HANDSHAKE_REPEAT_CONNECT]++;
			session_close(s, WSG_CLOSE_REPEAT_CONNECT, NULL);
			return true;
		}
		/* the older one waiting goes now: its answer, when it comes, only releases what it took */
		struct session *old = c->s;
		c->s = NULL;
		registry_remove(&cl->claiming, &c->entry);
		unhold(old);
		session_close(old, WSG_CLOSE_REPLACED, NULL);
	}
	if (!cl->is_up) {
		admit_without_redis(cl, s);
		return true;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->user = strdup(s->user)) || !(c->device = strdup(s->device))) {
		if (c)
			free(c->user);
		free(c);
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
		return true;
	}
	c->cl = cl;
	c->s = s;
	c->entry.user = c->user;
	c->entry.device = c->device;
	util_strlcpy(c->sid, s->id, sizeof(c->sid));
	snprintf(c->owner, sizeof(c->owner), "%s/%s", cl->conf.node, s->id);
	enum claim_policy policy =
		s->server->config->on_repeat == WSG_REPEAT_REPLACE_OLD ? CLAIM_REPLACE : CLAIM_REJECT;
	if (registry_add(&cl->claiming, &c->entry) || send_claim(cl, s, policy, on_claim_reply, c)) {
		forget_claim(c);
		admit_without_redis(cl, s);
		return true;
	}
	/* held: nothing it sends is read, and it is sent nothing, until Redis answers */
	lws_rx_flow_control(s->wsi, 0);
	return true;
}

void cluster_session_end(struct session *s)
{
	struct cluster *cl = cluster_of(s->server);

	if (!cl)
		return;
	struct claim *c = find_claim(cl, s->user, s->device);
	if (c && c->s == s) {
		c->s = NULL; /* its answer releases what it took */
		registry_remove(&cl->claiming, &c->entry);
	}
	if (s->is_admitted) {
		char owner[CLUSTER_KEY_MAX];
		snprintf(owner, sizeof(owner), "%s/%s", cl->conf.node, s->id);
		send_release(cl, s->user, s->device, owner, s->id);
	}
}

/* ---- publish, send, disconnect ---- */

long long cluster_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data)
{
	struct cluster *cl = cluster_of(server);
	char seqkey[CLUSTER_KEY_MAX], pubsub[CLUSTER_KEY_MAX], suffix[48];

	if (!cl->is_up)
		return WSG_DELIVERED_UNAVAILABLE;
	/* the delivery as message_channel_delivery writes it, cut where Redis puts the seq */
	json_t *obj =
		json_pack("{s:s, s:s, s:s?, s:O}", "type", "message", "channel", channel, "from", from, "data", data);
	char *head = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(obj);
	if (!head)
		return -1;
	size_t hl = strlen(head);
	char *before = malloc(hl + 8);
	if (!before) {
		free(head);
		return -1;
	}
	memcpy(before, head, hl - 1); /* without the closing brace */
	memcpy(before + hl - 1, ",\"seq\":", 8);
	free(head);
	snprintf(suffix, sizeof(suffix), ",\"ts\":%llu}", (unsigned long long)util_wall_ms());
	snprintf(seqkey, sizeof(seqkey), "wsgate:seq:%s", channel);
	snprintf(pubsub, sizeof(pubsub), "%sch:%s", cl->prefix, channel);
	int rc = redisAsyncCommand(cl->cmd, NULL, NULL, "EVALSHA %s 1 %s %s %s %s", cl->publish_sha, seqkey, pubsub,
				   before, suffix);
	free(before);
	return rc == REDIS_OK ? WSG_DELIVERED_ACCEPTED : -1;
}

long long cluster_forward_send(struct wsg_server *server, const char *to, const struct outmsg *delivery)
{
	struct cluster *cl = cluster_of(server);

	if (!cl || !cl->is_up)
		return 0;
	const struct outmsg *m = delivery;
	const char *payload = (const char *)m->frame + (m->len - m->payload_len);
	if (redisAsyncCommand(cl->cmd, NULL, NULL, "PUBLISH %s send\n%s\n%s\n%b", cl->all_channel, cl->conf.node, to,
			      payload, m->payload_len) != REDIS_OK)
		return -1;
	return WSG_DELIVERED_ACCEPTED;
}

long long cluster_forward_disconnect(struct wsg_server *server, const char *user, const char *device, int code,
				     const char *reason)
{
	struct cluster *cl = cluster_of(server);

	if (!cl || !cl->is_up)
		return 0;
	if (redisAsyncCommand(cl->cmd, NULL, NULL, "PUBLISH %s disconnect\n%s\n%s\n%s\n%d\n%s", cl->all_channel,
			      cl->conf.node, user, device ? device : "*", code, reason ? reason : "") != REDIS_OK)
		return -1;
	return WSG_DELIVERED_ACCEPTED;
}

/* ---- cluster-wide listings: GET /api/sessions, /api/presence ---- */

struct list_request {
	struct cluster *cl;
	struct api_wait *wait;
	char *channel; /* NULL: every session */
};

static void finish_wait(struct api_wait *wait, unsigned status, json_t *body)
{
	wait->resp.status = status;
	wait->resp.content_type = "application/json";
	wait->resp.body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!wait->resp.body) {
		wait->resp.status = 500;
		wait->resp.body = strdup("{\"error\":\"out of memory\"}");
	}
	wait->resp.len = wait->resp.body ? strlen(wait->resp.body) : 0;
	wait->is_done = true;
	if (wait->is_abandoned) {
		free(wait->resp.body);
		free(wait);
		return;
	}
	if (wait->wsi)
		lws_callback_on_writable(wait->wsi);
}

static bool has_channel(json_t *session, const char *channel)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(session, "channels"), i,
			   v) if (!strcmp(json_string_value(v), channel)) return true;
	return false;
}

static void on_list_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct list_request *req = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_ARRAY) {
		finish_wait(req->wait, 503,
			    json_pack("{s:s}", "error", "cluster: Redis did not answer; try again later"));
		free(req->channel);
		free(req);
		return;
	}
	json_t *list = json_array();
	for (size_t i = 0; list && i < reply->elements; i++) {
		redisReply *e = reply->element[i];
		json_t *obj = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
		if (!obj)
			continue;
		if (req->channel && !has_channel(obj, req->channel)) {
			json_decref(obj);
			continue;
		}
		if (req->channel) {
			json_t *slim = json_pack("{s:O, s:O, s:O, s:O}", "session", json_object_get(obj, "session"),
						 "user", json_object_get(obj, "user"), "device",
						 json_object_get(obj, "device"), "node", json_object_get(obj, "node"));
			json_decref(obj);
			obj = slim;
		}
		json_array_append_new(list, obj);
	}
	if (req->channel)
		finish_wait(req->wait, 200, json_pack("{s:s, s:o}", "channel", req->channel, "sessions", list));
	else
		finish_wait(req->wait, 200, json_pack("{s:o}", "sessions", list));
	free(req->channel);
	free(req);
}

void cluster_list(struct wsg_server *server, const char *channel, struct api_response *resp)
{
	struct cluster *cl = cluster_of(server);
	struct list_request *req = calloc(1, sizeof(*req));
	struct api_wait *wait = calloc(1, sizeof(*wait));

	resp->status = 503;
	resp->content_type = "application/json";
	if (!req || !wait || (channel && !(req->channel = strdup(channel))) || !cl->is_up ||
	    redisAsyncCommand(cl->cmd, on_list_reply, req, "EVAL %s 0", list_script) != REDIS_OK) {
		if (req)
			free(req->channel);
		free(req);
		free(wait);
		resp->body = strdup(cl->is_up ? "{\"error\":\"out of memory\"}"
					      : "{\"error\":\"cluster: Redis is down; try again later\"}");
		resp->len = resp->body ? strlen(resp->body) : 0;
		return;
	}
	req->cl = cl;
	req->wait = wait;
	resp->status = 0;
	resp->wait = wait;
}

/* ---- health and metrics ---- */

json_t *cluster_health(const struct wsg_server *server, bool *is_serving)
{
	const struct cluster *cl = cluster_of(server);

	if (!cl)
		return NULL;
	/* on_redis_down = refuse: a node without Redis takes no new sessions, so a balancer should skip it */
	if (!cl->is_up && cl->conf.on_redis_down == WSG_REDIS_DOWN_REFUSE)
		*is_serving = false;
	return json_pack("{s:s, s:s, s:s}", "node", cl->conf.node, "redis", cl->is_up ? "up" : "down", "on_redis_down",
			 cl->conf.on_redis_down == WSG_REDIS_DOWN_REFUSE ? "refuse" : "local");
}

int cluster_render_metrics(const struct wsg_server *server, char **body, size_t *len)
{
	const struct cluster *cl = cluster_of(server);
	char *more = NULL;

	if (!cl)
		return 0;
	int n = asprintf(
		&more,
		"# HELP wsgate_cluster_redis_up 1 when this node is connected to the cluster's Redis.\n"
		"# TYPE wsgate_cluster_redis_up gauge\nwsgate_cluster_redis_up %d\n"
		"# HELP wsgate_cluster_redis_reconnects_total Attempts to connect to Redis again after a failure.\n"
		"# TYPE wsgate_cluster_redis_reconnects_total counter\nwsgate_cluster_redis_reconnects_total %llu\n"
		"# HELP wsgate_cluster_claims_total Claims of (user, device) in Redis by result.\n"
		"# TYPE wsgate_cluster_claims_total counter\nwsgate_cluster_claims_total{result=\"taken\"} %llu\n"
		"wsgate_cluster_claims_total{result=\"refused\"} %llu\n"
		"# HELP wsgate_cluster_redis_down_admissions_total New sessions while Redis was down, by "
		"on_redis_down.\n"
		"# TYPE wsgate_cluster_redis_down_admissions_total counter\n"
		"wsgate_cluster_redis_down_admissions_total{action=\"refused\"} %llu\n"
		"wsgate_cluster_redis_down_admissions_total{action=\"local\"} %llu\n"
		"# HELP wsgate_cluster_replaced_total Sessions here closed with 4002 for a newer one on another node.\n"
		"# TYPE wsgate_cluster_replaced_total counter\nwsgate_cluster_replaced_total %llu\n"
		"# HELP wsgate_cluster_messages_received_total Pub/sub messages received from Redis.\n"
		"# TYPE wsgate_cluster_messages_received_total counter\nwsgate_cluster_messages_received_total %llu\n",
		cl->is_up ? 1 : 0, (unsigned long long)cl->reconnects, (unsigned long long)cl->claims_taken,
		(unsigned long long)cl->claims_refused, (unsigned long long)cl->refused,
		(unsigned long long)cl->local_admits, (unsigned long long)cl->replaced_remote,
		(unsigned long long)cl->messages_in);
	if (n < 0)
		return -1;
	char *joined = realloc(*body, *len + (size_t)n + 1);
	if (!joined) {
		free(more);
		return -1;
	}
	memcpy(joined + *len, more, (size_t)n + 1);
	free(more);
	*body = joined;
	*len += (size_t)n;
	return 0;
}

/* ---- connections: connect, ready, lose, reconnect with backoff ---- */

static void connect_redis(struct cluster *cl);

static void schedule_retry(struct cluster *cl)
{
	if (ev_is_active(&cl->retry) || cl->server->is_stopping)
		return;
	ev_timer_set(&cl->retry, cl->backoff_ms / 1000.0, 0.);
	ev_timer_start(cl->server->loop, &cl->retry);
	cl->backoff_ms = cl->backoff_ms * 2 > CLUSTER_BACKOFF_MAX_MS ? CLUSTER_BACKOFF_MAX_MS : cl->backoff_ms * 2;
}

/* One connection failed: the other goes too, everything waits for the reconnect. */
static void connection_lost(struct cluster *cl, const char *why)
{
	if (cl->is_tearing_down)
		return;
	cl->is_tearing_down = true;
	if (cl->is_up || cl->was_up || !cl->reconnects)
		log_event(LOG_WARN, "cluster_redis_down", "redis=%s node=%s msg=\"%s\" on_redis_down=%s", cl->where,
			  cl->conf.node, why, cl->conf.on_redis_down == WSG_REDIS_DOWN_REFUSE ? "refuse" : "local");
	cl->was_up = false;
	cl->is_up = cl->is_cmd_ready = cl->is_sub_ready = false;
	cl->is_renew_outstanding = false;
	redisAsyncContext *cmd = cl->cmd, *sub = cl->sub;
	cl->cmd = cl->sub = NULL;
	/* their pending callbacks run now with no reply: claims follow on_redis_down, listings answer 503 */
	if (cmd && !(cmd->c.flags & (REDIS_FREEING | REDIS_DISCONNECTING)))
		redisAsyncFree(cmd);
	if (sub && !(sub->c.flags & (REDIS_FREEING | REDIS_DISCONNECTING)))
		redisAsyncFree(sub);
	/* channels are subscribed again on the new connection */
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b], *next; nd; nd = next) {
			struct remote_channel *rc = lws_container_of(nd, struct remote_channel, node);
			next = nd->next;
			if (!rc->is_wanted) {
				ht_remove(&cl->remote, nd);
				free(rc->name);
				free(rc);
			}
		}
	cl->is_tearing_down = false;
	schedule_retry(cl);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;

	(void)status;
	if (!cl)
		return;
	if (cl->cmd == ac)
		cl->cmd = NULL;
	if (cl->sub == ac)
		cl->sub = NULL;
	connection_lost(cl, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;

	if (status == REDIS_OK || !cl)
		return;
	/* hiredis frees a context whose connect failed */
	if (cl->cmd == ac)
		cl->cmd = NULL;
	if (cl->sub == ac)
		cl->sub = NULL;
	connection_lost(cl, ac->errstr[0] ? ac->errstr : "cannot connect");
}

/* Every admitted session claimed again (Redis restarted, or lost us): conflicts lose with 4002. */
static void on_reclaim_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct cluster *cl = ac->data;
	redisReply *reply = r;
	char *sid = privdata;

	if (cl && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 0) {
		/* someone else holds it now (admitted elsewhere while we could not see): ours gives way */
		for (struct registry_entry *e = registry_first(&cl->server->registry); e; e = e->next) {
			struct session *s = session_of_entry(e);
			if (!strcmp(s->id, sid)) {
				log_event(LOG_WARN, "cluster_conflict", "session=%s user=%s device=%s holder=%s", s->id,
					  s->user, *s->device ? s->device : "-", reply->element[1]->str);
				session_close(s, WSG_CLOSE_REPLACED, NULL);
				break;
			}
		}
	}
	free(sid);
}

static void on_reset_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct cluster *cl = privdata;
	redisReply *reply = r;
	size_t count = 0;

	(void)ac;
	if (!reply || reply->type == REDIS_REPLY_ERROR) {
		if (reply)
			log_event(LOG_ERROR, "cluster", "msg=\"node registration failed: %s\"", reply->str);
		if (cl->cmd)
			redisAsyncDisconnect(cl->cmd);
		return;
	}
	cl->is_cmd_ready = true;
	cl->is_up = true; /* pub/sub follows on its own connection; claims need only this one */
	cl->was_up = true;
	cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	for (struct registry_entry *e = registry_first(&cl->server->registry); e; e = e->next) {
		struct session *s = session_of_entry(e);
		char *sid = strdup(s->id);
		if (!sid || send_claim(cl, s, CLAIM_RECLAIM, on_reclaim_reply, sid))
			free(sid);
		count++;
	}
	/* every channel's seq goes on from what its subscribers here last got, never back */
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b]; nd; nd = nd->next) {
			struct remote_channel *rc = lws_container_of(nd, struct remote_channel, node);
			struct channel *c = router_find(&cl->server->router, rc->name);
			char key[CLUSTER_KEY_MAX], seq[24];
			if (!c || !c->seq)
				continue;
			snprintf(key, sizeof(key), "wsgate:seq:%s", rc->name);
			snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
			redisAsyncCommand(cl->cmd, NULL, NULL, "EVAL %s 1 %s %s", raise_seq_script, key, seq);
		}
	log_event(LOG_INFO, "cluster_redis_up", "redis=%s node=%s reclaimed=%zu channels=%zu", cl->where, cl->conf.node,
		  count, cl->remote.count);
}

static void script_sha(const char *script, char *hex)
{
	unsigned char digest[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)script, strlen(script), digest);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Before anything else on a new command connection (Redis may have restarted without them). */
static void load_scripts(struct cluster *cl)
{
	redisAsyncCommand(cl->cmd, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", claim_script);
	redisAsyncCommand(cl->cmd, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", release_script);
	redisAsyncCommand(cl->cmd, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", publish_script);
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply *reply = r;
	const char *what = privdata;

	if (reply && reply->type == REDIS_REPLY_ERROR) {
		/* never the password: only what Redis said */
		log_event(LOG_ERROR, "cluster", "msg=\"%s refused by Redis: %s\"", what, reply->str);
		redisAsyncDisconnect(ac);
	}
}

static redisAsyncContext *open_connection(struct cluster *cl)
{
	redisAsyncContext *ac = redisAsyncConnect(cl->conf.url.host, cl->conf.url.port);

	if (!ac)
		return NULL;
	if (ac->err) {
		log_event(LOG_WARN, "cluster", "redis=%s msg=\"%s\"", cl->where, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = cl;
	redisLibevAttach(cl->server->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	const struct redis_url *u = &cl->conf.url;
	if (u->has_password && u->user[0])
		redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", u->user, u->password);
	else if (u->has_password)
		redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", u->password);
	return ac;
}

static void connect_redis(struct cluster *cl)
{
	char ttl[16];

	if (cl->cmd || cl->sub)
		return;
	cl->cmd = open_connection(cl);
	cl->sub = cl->cmd ? open_connection(cl) : NULL;
	if (!cl->cmd || !cl->sub) {
		connection_lost(cl, "cannot connect");
		return;
	}
	if (cl->conf.url.db)
		redisAsyncCommand(cl->cmd, on_setup_reply, "SELECT", "SELECT %d", cl->conf.url.db);
	load_scripts(cl);
	snprintf(ttl, sizeof(ttl), "%u", cl->conf.claim_ttl_ms);
	redisAsyncCommand(cl->cmd, on_reset_reply, cl, "EVAL %s 0 %s %s %s", reset_script, cl->conf.node, ttl,
			  cl->instance);
	redisAsyncCommand(cl->sub, on_sub_message, cl, "SUBSCRIBE %s %s", cl->ctl_channel, cl->all_channel);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cluster *cl = w->data;

	(void)loop;
	(void)revents;
	cl->reconnects++;
	connect_redis(cl);
}

static void on_renew_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct cluster *cl = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!reply)
		return;
	cl->is_renew_outstanding = false;
	if (reply->type == REDIS_REPLY_ERROR)
		log_event(LOG_ERROR, "cluster", "msg=\"renewal failed: %s\"", reply->str);
	else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 2)
		log_event(LOG_ERROR, "cluster_node_taken",
			  "node=%s msg=\"another process uses this cluster.node: each node needs its own name\"",
			  cl->conf.node);
	else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 && cl->cmd) {
		/* renewed too late: others may have reaped our claims, so take them again */
		char ttl[16];
		log_event(LOG_WARN, "cluster_claims_lapsed", "node=%s msg=\"claiming this node's sessions again\"",
			  cl->conf.node);
		snprintf(ttl, sizeof(ttl), "%u", cl->conf.claim_ttl_ms);
		redisAsyncCommand(cl->cmd, on_reset_reply, cl, "EVAL %s 0 %s %s %s", reset_script, cl->conf.node, ttl,
				  cl->instance);
	}
}

/* Every claim_ttl_ms / 3: one command renews every claim of this node (its node key) and reaps dead nodes. */
static void on_renew(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cluster *cl = w->data;
	char ttl[16];

	(void)loop;
	(void)revents;
	if (!cl->is_up)
		return;
	if (cl->is_renew_outstanding) {
		/* a Redis that does not answer within the ttl is as good as down: our claims lapse anyway */
		if (util_now_ms() - cl->renew_sent_ms >= cl->conf.claim_ttl_ms * 2 / 3)
			connection_lost(cl, "no answer to the renewal");
		return;
	}
	snprintf(ttl, sizeof(ttl), "%u", cl->conf.claim_ttl_ms);
	cl->renew_sent_ms = util_now_ms();
	cl->is_renew_outstanding = true;
	redisAsyncCommand(cl->cmd, on_renew_reply, cl, "EVAL %s 0 %s %s %s", heartbeat_script, cl->conf.node, ttl,
			  cl->instance);
}

int cluster_init(struct wsg_server *server)
{
	const struct wsg_cluster_config *conf = &server->config->cluster;
	struct cluster *cl;

	if (!conf->is_enabled)
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl || registry_init(&cl->claiming, 1024) || ht_init(&cl->remote, 64) || siphash_random_key(cl->key)) {
		free(cl);
		log_event(LOG_ERROR, "startup", "msg=\"out of memory\"");
		return -1;
	}
	cl->server = server;
	cl->conf = *conf;
	redis_url_describe(&conf->url, cl->where, sizeof(cl->where));
	snprintf(cl->prefix, sizeof(cl->prefix), "wsgate:%d:", conf->url.db);
	snprintf(cl->ctl_prefix, sizeof(cl->ctl_prefix), "%sto:", cl->prefix);
	snprintf(cl->ctl_channel, sizeof(cl->ctl_channel), "%s%s", cl->ctl_prefix, conf->node);
	snprintf(cl->all_channel, sizeof(cl->all_channel), "%sall", cl->prefix);
	cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	if (util_random_hex(cl->instance, sizeof(cl->instance) / 2)) {
		free(cl);
		return -1;
	}
	script_sha(claim_script, cl->claim_sha);
	script_sha(release_script, cl->release_sha);
	script_sha(publish_script, cl->publish_sha);
	server->cluster = cl;
	server->router.observer = on_router_event;
	server->router.observer_ctx = cl;
	ev_init(&cl->retry, on_retry);
	cl->retry.data = cl;
	double every = conf->claim_ttl_ms / 3000.0;
	ev_timer_init(&cl->renew, on_renew, every, every);
	cl->renew.data = cl;
	ev_timer_start(server->loop, &cl->renew);
	log_event(LOG_INFO, "cluster", "redis=%s node=%s claim_ttl_ms=%u on_redis_down=%s", cl->where, conf->node,
		  conf->claim_ttl_ms, conf->on_redis_down == WSG_REDIS_DOWN_REFUSE ? "refuse" : "local");
	connect_redis(cl);
	return 0;
}

/* A clean exit tells Redis at once, so this node's users can connect elsewhere without waiting for the ttl. */
static void leave_cluster(struct cluster *cl)
{
	struct timeval tv = { 0, 500 * 1000 };
	const struct redis_url *u = &cl->conf.url;
	redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
	redisReply *reply = NULL;

	if (!c || c->err)
		goto out;
	redisSetTimeout(c, tv);
	if (u->has_password) {
		reply = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
				   : redisCommand(c, "AUTH %s", u->password);
		if (!reply || reply->type == REDIS_REPLY_ERROR)
			goto out;
		freeReplyObject(reply);
	}
	if (u->db) {
		reply = redisCommand(c, "SELECT %d", u->db);
		if (!reply || reply->type == REDIS_REPLY_ERROR)
			goto out;
		freeReplyObject(reply);
	}
	reply = redisCommand(c, "EVAL %s 0 %s", leave_script, cl->conf.node);
	if (reply && reply->type != REDIS_REPLY_ERROR)
		log_event(LOG_INFO, "cluster_left", "node=%s", cl->conf.node);
out:
	if (reply)
		freeReplyObject(reply);
	if (c)
		redisFree(c);
}

static void free_remote(struct ht_node *n)
{
	struct remote_channel *r = lws_container_of(n, struct remote_channel, node);

	free(r->name);
	free(r);
}

void cluster_free(struct wsg_server *server)
{
	struct cluster *cl = cluster_of(server);

	if (!cl)
		return;
	ev_timer_stop(server->loop, &cl->retry);
	ev_timer_stop(server->loop, &cl->renew);
	cl->is_tearing_down = true; /* no reconnect from the disconnect callbacks */
	cl->is_up = false;
	if (cl->cmd)
		redisAsyncFree(cl->cmd);
	if (cl->sub)
		redisAsyncFree(cl->sub);
	cl->cmd = cl->sub = NULL;
	if (cl->was_up)
		leave_cluster(cl);
	/* every claim still waiting was answered (no reply) and freed by the frees above */
	registry_free(&cl->claiming);
	ht_free_all(&cl->remote, free_remote);
	server->router.observer = NULL;
	explicit_bzero(&cl->conf, sizeof(cl->conf)); /* the Redis password */
	free(cl);
	server->cluster = NULL;
}
