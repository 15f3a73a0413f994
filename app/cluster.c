/*
 * The cluster on Redis (see cluster.h): this node's two asynchronous hiredis
 * connections on the server's libev loop (one for commands, one for pub/sub),
 * its liveness in Redis, reconnects with backoff, health and metrics. Every
 * multi-step change is one Lua script, so Redis applies it atomically: a
 * claim (cluster_claims.c), a publish with its history (cluster_channels.c),
 * the node's heartbeat here (renew and reap dead nodes). Never logs the Redis
 * password; never blocks the loop on Redis.
 *
 * Redis data (keys in the configured db, pub/sub channels prefixed with it):
 *   wsgate:node:N          this node is alive (PX claim_ttl_ms, renewed every ttl/3)
 *   wsgate:nodes           set of node names, for presence and reaping
 *   wsgate:claim:U/D       "N/SESSION": who holds (user U, device D); valid while N is alive
 *   wsgate:claims:N        set of the claim keys N took (reaped when N dies)
 *   wsgate:sessions:N      hash SESSION -> JSON presence of N's sessions
 *   wsgate:seq:C           the last seq of channel C
 *   wsgate:epoch:C         the incarnation of channel C (a new one when its seq starts again at 1)
 *   wsgate:history:C       stream of C's kept deliveries: ID SEQ-0, fields t (ms) and d (the delivery);
 *                          trimmed to the history size; the three keys of C expire ttl_ms after its
 *                          last publish when it has a history
 *   wsgate:DB:ch:C         pub/sub: "SEQ\nEPOCH\nDELIVERY" for channel C
 *   wsgate:DB:to:N         pub/sub: control for node N ("replace\nN/SESSION\nU\nD")
 *   wsgate:DB:all          pub/sub: "send\nORIGIN\nUSER\nDELIVERY", "disconnect\nORIGIN\nU\nD|*\nCODE\nREASON"
 */
#define _GNU_SOURCE /* asprintf */
#include <hiredis/adapters/libev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cluster_internal.h"
#include "hash.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 2000

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

struct cluster *cluster_of(const struct wsg_server *server)
{
	return server->cluster;
}

bool cluster_is_enabled(const struct wsg_server *server)
{
	return server->cluster != NULL;
}

void cluster_finish_wait(struct api_wait *wait, unsigned status, json_t *body)
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

static void respond_now(struct api_response *resp, unsigned status, const char *body)
{
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = strdup(body);
	resp->len = resp->body ? strlen(resp->body) : 0;
}

struct api_wait *cluster_begin_wait(struct cluster *cl, struct api_response *resp)
{
	struct api_wait *wait;

	if (!cl->is_up) {
		respond_now(resp, 503, "{\"error\":\"cluster: Redis is down; try again later\"}");
		return NULL;
	}
	if (!(wait = calloc(1, sizeof(*wait)))) {
		respond_now(resp, 500, "{\"error\":\"out of memory\"}");
		return NULL;
	}
	resp->status = 0;
	resp->wait = wait;
	return wait;
}

void cluster_cancel_wait(struct api_response *resp)
{
	free(resp->wait);
	resp->wait = NULL;
	respond_now(resp, 500, "{\"error\":\"out of memory\"}");
}

/* ---- control messages between nodes (through Redis pub/sub only) ---- */

size_t cluster_split_lines(char *text, char **fields, size_t max)
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

void cluster_on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
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
			cluster_channels_resubscribe(cl); /* a reconnect */
		} else if (!strncmp(channel, cl->prefix, plen) && !strncmp(channel + plen, "ch:", 3)) {
			cluster_on_channel_subscribed(cl, channel + plen + 3);
		}
		return;
	}
	if (!strcmp(kind, "unsubscribe")) {
		if (!strncmp(channel, cl->prefix, plen) && !strncmp(channel + plen, "ch:", 3))
			cluster_on_channel_unsubscribed(cl, channel + plen + 3);
		return;
	}
	if (strcmp(kind, "message") || reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	cl->messages_in++;
	char *payload = reply->element[2]->str;
	size_t len = reply->element[2]->len;
	if (!strncmp(channel, cl->prefix, plen) && !strncmp(channel + plen, "ch:", 3)) {
		cluster_on_channel_message(cl, channel + plen + 3, payload, len);
	} else if (!strcmp(channel, cl->all_channel)) {
		cluster_on_broadcast(cl, payload, len);
	} else if (!strcmp(channel, cl->ctl_channel) && !strncmp(payload, "replace\n", 8)) {
		char *f[4] = { NULL };
		size_t n = cluster_split_lines(payload, f, 4);
		cluster_on_replace(cl, f, n);
	}
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
		"# TYPE wsgate_cluster_messages_received_total counter\nwsgate_cluster_messages_received_total %llu\n"
		"# HELP wsgate_cluster_positions_total Subscribes answered with the channel's position, by where it "
		"came from: Redis, or this node (Redis down, or an unsubscribe before the answer).\n"
		"# TYPE wsgate_cluster_positions_total counter\nwsgate_cluster_positions_total{from=\"redis\"} %llu\n"
		"wsgate_cluster_positions_total{from=\"node\"} %llu\n",
		cl->is_up ? 1 : 0, (unsigned long long)cl->reconnects, (unsigned long long)cl->claims_taken,
		(unsigned long long)cl->claims_refused, (unsigned long long)cl->refused,
		(unsigned long long)cl->local_admits, (unsigned long long)cl->replaced_remote,
		(unsigned long long)cl->messages_in, (unsigned long long)cl->positions_from_redis,
		(unsigned long long)cl->positions_from_node);
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
	cluster_channels_lost(cl); /* channels are subscribed again on the new connection */
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

static void on_reset_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct cluster *cl = privdata;
	redisReply *reply = r;
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
	size_t count = cluster_reclaim_all(cl);
	cluster_channels_raise_seqs(cl);
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
void cluster_load_scripts(struct cluster *cl)
{
	const char *const scripts[] = { cluster_claim_script, cluster_release_script, cluster_publish_script,
					cluster_position_script };

	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		redisAsyncCommand(cl->cmd, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", scripts[i]);
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
	cluster_load_scripts(cl);
	snprintf(ttl, sizeof(ttl), "%u", cl->conf.claim_ttl_ms);
	redisAsyncCommand(cl->cmd, on_reset_reply, cl, "EVAL %s 0 %s %s %s", reset_script, cl->conf.node, ttl,
			  cl->instance);
	redisAsyncCommand(cl->sub, cluster_on_sub_message, cl, "SUBSCRIBE %s %s", cl->ctl_channel, cl->all_channel);
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
	cluster_channels_keep_alive(cl);
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
	script_sha(cluster_claim_script, cl->claim_sha);
	script_sha(cluster_release_script, cl->release_sha);
	script_sha(cluster_publish_script, cl->publish_sha);
	script_sha(cluster_position_script, cl->position_sha);
	server->cluster = cl;
	server->router.observer = cluster_on_router_event;
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
	cluster_channels_free(cl);
	server->router.observer = NULL;
	explicit_bzero(&cl->conf, sizeof(cl->conf)); /* the Redis password */
	free(cl);
	server->cluster = NULL;
}
