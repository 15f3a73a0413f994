/*
 * Channels across the cluster. A publish is one Lua script: INCR the
 * channel's seq, keep the delivery in the channel's stream (its history,
 * trimmed to size, expiring ttl_ms after the last publish) and PUBLISH it
 * with its seq and epoch, so every node receives a channel's messages in seq
 * order and any node can replay them. Each node holds one Redis subscription
 * per channel with local subscribers.
 *
 * A subscribe asks Redis where the channel stands (and, with "since", for
 * what the client missed) only once this node's subscription to the channel
 * is live, so every message after that position reaches the node; deliveries
 * that arrive before the answer are held on the subscription and queued after
 * the ack and the replay, those the replay already holds skipped by seq.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "cluster_internal.h"
#include "hash.h"
#include "log.h"
#include "message.h"
#include "server.h"
#include "util.h"

/* A new incarnation's epoch: 16 hex digits, unique per channel and Redis microsecond. */
#define NEW_EPOCH                                                                                                      \
	"local function new_epoch()\n"                                                                                 \
	"  local t = redis.call('TIME')\n"                                                                             \
	"  return string.sub(redis.sha1hex(KEYS[1] .. '/' .. t[1] .. '.' .. t[2]), 1, 16)\n"                           \
	"end\n"                                                                                                        \
	"local function now_ms()\n"                                                                                    \
	"  local t = redis.call('TIME')\n"                                                                             \
	"  return t[1] * 1000 + math.floor(t[2] / 1000)\n"                                                             \
	"end\n"

/*
 * KEYS: seq, epoch, history. ARGV: pub/sub channel, the delivery before its seq and after it, history size,
 * ttl_ms. Returns the seq. A channel without an epoch starts a new incarnation (its old stream goes).
 */
const char cluster_publish_script[] =
	NEW_EPOCH "local seq = redis.call('INCR', KEYS[1])\n"
		  "local epoch = redis.call('GET', KEYS[2])\n"
		  "if not epoch then\n"
		  "  epoch = new_epoch()\n"
		  "  redis.call('SET', KEYS[2], epoch)\n"
		  "  redis.call('DEL', KEYS[3])\n"
		  "elseif seq == 1 then\n"
		  "  redis.call('DEL', KEYS[3])\n"
		  "end\n"
		  "local text = ARGV[2] .. string.format('%d', seq) .. ARGV[3]\n"
		  "if tonumber(ARGV[4]) > 0 then\n"
		  "  local id = string.format('%d-0', seq)\n"
		  "  local r = redis.pcall('XADD', KEYS[3], 'MAXLEN', ARGV[4], id, 't', now_ms(), 'd', text)\n"
		  "  if type(r) == 'table' and r.err then\n"
		  "    redis.call('DEL', KEYS[3])\n"
		  "    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], id, 't', now_ms(), 'd', text)\n"
		  "  end\n"
		  "  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end\n"
		  "else\n"
		  "  redis.call('PERSIST', KEYS[1])\n"
		  "  redis.call('PERSIST', KEYS[2])\n"
		  "end\n"
		  "redis.call('PUBLISH', ARGV[1], string.format('%d', seq) .. '\\n' .. epoch .. '\\n' .. text)\n"
		  "return seq\n";

/*
 * KEYS: seq, epoch, history. ARGV: the client's epoch ('' without since), its seq, ttl_ms. Returns {seq, epoch}
 * without since, else {seq, epoch, recovered, the missed deliveries oldest first}. An epoch made for a channel
 * nothing was published to lasts ttl_ms after its last subscribe.
 */
const char cluster_position_script[] = NEW_EPOCH
	"local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"local epoch = redis.call('GET', KEYS[2])\n"
	"if not epoch then\n"
	"  epoch = new_epoch()\n"
	"  redis.call('DEL', KEYS[3])\n"
	"  if seq == 0 then redis.call('SET', KEYS[2], epoch, 'PX', ARGV[3])\n"
	"  else redis.call('SET', KEYS[2], epoch) end\n"
	"elseif seq == 0 then\n"
	"  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
	"end\n"
	"if ARGV[1] == '' then return {seq, epoch} end\n"
	"local since = tonumber(ARGV[2])\n"
	"if ARGV[1] ~= epoch or since > seq then return {seq, epoch, 0} end\n"
	"if since == seq then return {seq, epoch, 1} end\n"
	"local from = string.format('%d-0', since + 1)\n"
	"local kept = redis.call('XRANGE', KEYS[3], from, '+')\n"
	"if #kept == 0 or kept[1][1] ~= from or tonumber(kept[1][2][2]) + tonumber(ARGV[3]) <= now_ms() then\n"
	"  return {seq, epoch, 0}\n"
	"end\n"
	"local out = {seq, epoch, 1}\n"
	"for _, e in ipairs(kept) do out[#out + 1] = e[2][4] end\n"
	"return out\n";

/*
 * KEYS: seq, epoch, history. ARGV: since, limit, ttl_ms. Returns {} for no such channel, else {seq, epoch,
 * complete, up to limit kept deliveries after since, oldest first}. Expired entries (the oldest) are skipped.
 */
static const char history_script[] =
	NEW_EPOCH "local epoch = redis.call('GET', KEYS[2])\n"
		  "if not epoch then return {} end\n"
		  "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
		  "local since, limit = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
		  "local oldest = now_ms() - tonumber(ARGV[3])\n"
		  "local out, first, from = {seq, epoch, 0}, nil, since + 1\n"
		  "while #out - 3 < limit do\n"
		  "  local kept = redis.call('XRANGE', KEYS[3], string.format('%d-0', from), '+', 'COUNT',\n"
		  "                           limit - (#out - 3))\n"
		  "  if #kept == 0 then break end\n"
		  "  for _, e in ipairs(kept) do\n"
		  "    if tonumber(e[2][2]) > oldest then\n"
		  "      first = first or tonumber(string.match(e[1], '^%d+'))\n"
		  "      out[#out + 1] = e[2][4]\n"
		  "    end\n"
		  "  end\n"
		  "  from = tonumber(string.match(kept[#kept][1], '^%d+')) + 1\n"
		  "end\n"
		  "if since >= seq or first == since + 1 then out[3] = 1 end\n"
		  "return out\n";

/*
 * KEYS: seq, epoch. ARGV: the last seq this node delivered, its epoch. A Redis that restarted empty goes on
 * from there (its history is gone: only a client that missed nothing recovers).
 */
static const char raise_seq_script[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
				       "if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
				       "if cur == 0 then redis.call('SET', KEYS[2], ARGV[2], 'NX') end\n"
				       "return 0\n";

/* A subscribe waiting for Redis to say where its channel stands; outlives its subscription (hold.sub NULL). */
struct position_request {
	struct cluster *cl;
	struct subscription_hold hold;
	struct session *s; /* valid while hold.sub is */
	json_t *id;
	bool has_since;
	char since_epoch[ROUTER_EPOCH_LEN + 2]; /* one more: a longer epoch never equals a real one */
	uint64_t since_seq;
	cluster_answer_fn answer;
	struct position_request *next; /* waiting for its remote channel's subscription */
};

struct channel_keys {
	char seq[CLUSTER_KEY_MAX], epoch[CLUSTER_KEY_MAX], history[CLUSTER_KEY_MAX];
};

/* Fills *k (cppcheck takes the snprintf into a member of an uninitialised struct for a read). */
static void channel_keys(struct channel_keys *k, const char *name)
{
	// cppcheck-suppress ctuuninitvar
	snprintf(k->seq, sizeof(k->seq), "wsgate:seq:%s", name);
	snprintf(k->epoch, sizeof(k->epoch), "wsgate:epoch:%s", name);
	snprintf(k->history, sizeof(k->history), "wsgate:history:%s", name);
}

/* The history bounds of a channel, as this node's configuration gives them (every node should agree). */
static struct wsg_history_limits history_limits(const struct cluster *cl, const char *name)
{
	return config_history_limits(cl->server->config, name);
}

/* ---- positions: where a channel stands for a subscribe ---- */

static void free_request(struct position_request *req)
{
	if (req->hold.sub)
		req->hold.sub->hold = NULL;
	subscription_hold_clear(&req->hold);
	json_decref(req->id);
	free(req);
}

/* Queues the deliveries held while waiting, those after seq (the replay or the position covers the rest). */
static void release_held(struct position_request *req, uint64_t after)
{
	struct subscription_hold *hold = &req->hold;

	hold->sub->hold = NULL; /* live from here */
	hold->sub->answered_through = after;
	for (size_t i = 0; i < hold->count; i++)
		if (hold->seqs[i] > after && session_queue(req->s, hold->msgs[i]))
			break; /* closing (or just closed as a slow consumer) */
	hold->sub = NULL;
	free_request(req);
}

/* Redis down or failing: the position this node knows, and nothing replayed. */
static void answer_locally(struct position_request *req)
{
	struct channel *c = req->hold.sub->channel;
	/* the held deliveries follow this position */
	uint64_t seq = req->hold.count ? req->hold.seqs[0] - 1 : c->seq;
	struct channel_position pos = { c->epoch, seq, -1 };

	if (req->has_since)
		pos.recovered = !strcmp(req->since_epoch, c->epoch) && req->since_seq == seq;
	req->cl->positions_local++;
	req->answer(req->s, req->id, &pos);
	release_held(req, seq);
}

static void on_position_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct position_request *req = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!req->hold.sub) /* unsubscribed, or the session went, meanwhile */
		return free_request(req);
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_STRING ||
	    (reply->elements > 2 && reply->element[2]->type != REDIS_REPLY_INTEGER)) {
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			log_event(LOG_ERROR, "cluster", "msg=\"position failed: %s\"", reply->str);
			if (!strncmp(reply->str, "NOSCRIPT", 8) && req->cl->is_up)
				cluster_load_scripts(req->cl);
		}
		return answer_locally(req);
	}
	struct channel *c = req->hold.sub->channel;
	struct channel_position pos = { reply->element[1]->str, (uint64_t)reply->element[0]->integer,
					reply->elements > 2 ? (int)reply->element[2]->integer : -1 };
	/* this node now knows the incarnation its deliveries belong to */
	if (reply->element[1]->len == ROUTER_EPOCH_LEN)
		memcpy(c->epoch, reply->element[1]->str, ROUTER_EPOCH_LEN + 1);
	if (c->seq < pos.seq)
		c->seq = pos.seq;
	req->answer(req->s, req->id, &pos);
	for (size_t i = 3; pos.recovered == 1 && i < reply->elements; i++) {
		redisReply *e = reply->element[i];
		struct outmsg *msg = e->type == REDIS_REPLY_STRING ? outmsg_new(e->str, e->len) : NULL;
		int rc = msg ? session_queue(req->s, msg) : -1;
		outmsg_unref(msg);
		if (rc)
			break;
	}
	release_held(req, pos.seq);
}

static void send_position(struct position_request *req)
{
	struct cluster *cl = req->cl;
	struct channel *c = req->hold.sub->channel;
	struct wsg_history_limits limits = history_limits(cl, c->name);
	struct channel_keys k;
	char since[24], ttl[16];

	channel_keys(&k, c->name);
	snprintf(since, sizeof(since), "%llu", (unsigned long long)req->since_seq);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	if (!cl->is_up || redisAsyncCommand(cl->cmd, on_position_reply, req, "EVALSHA %s 3 %s %s %s %s %s %s",
					    cl->position_sha, k.seq, k.epoch, k.history,
					    req->has_since ? req->since_epoch : "", since, ttl) != REDIS_OK)
		answer_locally(req);
}

static struct remote_channel *find_remote(struct cluster *cl, const char *name, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&cl->remote, hash); n; n = n->next) {
		struct remote_channel *r = lws_container_of(n, struct remote_channel, node);
		if (n->hash == hash && !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

bool cluster_subscribe(struct session *s, struct subscription *sub, json_t *id, const char *since_epoch,
		       uint64_t since_seq, cluster_answer_fn answer)
{
	struct cluster *cl = cluster_of(s->server);
	struct remote_channel *r;
	struct position_request *req;

	/* a second subscribe while the first waits: answered here, its deliveries still held for the first */
	if (!cl || !cl->is_up || sub->hold)
		return false;
	r = find_remote(cl, sub->channel->name, siphash_string(cl->key, sub->channel->name));
	if (!r || !(req = calloc(1, sizeof(*req))))
		return false;
	req->cl = cl;
	req->s = s;
	req->id = json_incref(id);
	req->answer = answer;
	if (since_epoch) {
		req->has_since = true;
		util_strlcpy(req->since_epoch, since_epoch, sizeof(req->since_epoch));
		req->since_seq = since_seq;
	}
	req->hold.sub = sub;
	sub->hold = &req->hold;
	cl->positions_asked++;
	if (r->is_confirmed) {
		send_position(req);
	} else {
		req->next = r->waiting;
		r->waiting = req;
	}
	return true;
}

/* Answers (or, their subscriptions gone, frees) every subscribe waiting on r; with Redis up they ask it now. */
static void flush_waiting(struct remote_channel *r)
{
	struct position_request *req = r->waiting;

	r->waiting = NULL;
	while (req) {
		struct position_request *next = req->next;
		if (!req->hold.sub)
			free_request(req);
		else if (r->is_confirmed)
			send_position(req);
		else
			answer_locally(req);
		req = next;
	}
}

/* ---- this node's Redis subscriptions: one per channel with local subscribers ---- */

static void send_subscribe(struct cluster *cl, const char *verb, const char *name)
{
	if (cl->is_sub_ready)
		redisAsyncCommand(cl->sub, cluster_on_sub_message, cl, "%s %sch:%s", verb, cl->prefix, name);
}

static void free_remote(struct cluster *cl, struct remote_channel *r)
{
	ht_remove(&cl->remote, &r->node);
	r->is_confirmed = false;
	flush_waiting(r);
	free(r->name);
	free(r);
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
		r->is_confirmed = false;
		send_subscribe(cl, "UNSUBSCRIBE", name);
	} else if (r->state == REMOTE_SUBSCRIBED) {
		free_remote(cl, r); /* Redis is down: nothing to undo there */
	}
}

void cluster_on_channel_subscribed(struct cluster *cl, const char *name)
{
	struct remote_channel *r = find_remote(cl, name, siphash_string(cl->key, name));

	if (!r || r->state != REMOTE_SUBSCRIBED)
		return;
	r->is_confirmed = true;
	flush_waiting(r);
}

/* Redis confirmed an unsubscribe: forget the channel, or subscribe again if a local subscriber came meanwhile. */
void cluster_on_channel_unsubscribed(struct cluster *cl, const char *name)
{
	struct remote_channel *r = find_remote(cl, name, siphash_string(cl->key, name));

	if (!r || r->state != REMOTE_UNSUBSCRIBING)
		return;
	if (r->is_wanted) {
		r->state = REMOTE_SUBSCRIBED;
		send_subscribe(cl, "SUBSCRIBE", name);
		return;
	}
	free_remote(cl, r);
}

void cluster_on_router_event(void *ctx, enum router_event event, const struct channel *c, void *owner)
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
		cluster_update_presence(cl, owner);
		break;
	}
}

static struct remote_channel *remote_of(struct ht_node *n)
{
	return lws_container_of(n, struct remote_channel, node);
}

void cluster_channels_resubscribe(struct cluster *cl)
{
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b]; nd; nd = nd->next) {
			struct remote_channel *r = remote_of(nd);
			r->state = REMOTE_SUBSCRIBED;
			r->is_confirmed = false;
			if (r->is_wanted)
				send_subscribe(cl, "SUBSCRIBE", r->name);
		}
}

void cluster_channels_lost(struct cluster *cl)
{
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b], *next; nd; nd = next) {
			struct remote_channel *r = remote_of(nd);
			next = nd->next;
			r->is_confirmed = false;
			flush_waiting(r);
			if (!r->is_wanted)
				free_remote(cl, r);
		}
}

void cluster_channels_raise_seqs(struct cluster *cl)
{
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b]; nd; nd = nd->next) {
			struct channel *c = router_find(&cl->server->router, remote_of(nd)->name);
			struct channel_keys k;
			char seq[24];
			if (!c || !c->seq)
				continue;
			channel_keys(&k, c->name);
			snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
			redisAsyncCommand(cl->cmd, NULL, NULL, "EVAL %s 2 %s %s %s %s", raise_seq_script, k.seq,
					  k.epoch, seq, c->epoch);
		}
}

void cluster_channels_free(struct cluster *cl)
{
	while (cl->remote.count) {
		for (size_t b = 0; b < cl->remote.bucket_count; b++)
			if (cl->remote.buckets[b]) {
				free_remote(cl, remote_of(cl->remote.buckets[b]));
				break;
			}
	}
	ht_free(&cl->remote);
}

/* ---- deliveries ---- */

/* A channel message from Redis, "SEQ\nEPOCH\nDELIVERY": framed once, queued for every local subscriber. */
void cluster_on_channel_message(struct cluster *cl, const char *name, const char *payload, size_t len)
{
	struct channel *c = router_find(&cl->server->router, name);
	const char *end = payload + len, *nl = memchr(payload, '\n', len);
	const char *epoch = nl ? nl + 1 : NULL, *nl2 = epoch ? memchr(epoch, '\n', (size_t)(end - epoch)) : NULL;
	size_t max_held = cl->server->config->max_queued_bytes;
	uint64_t seq = 0;

	/* no local subscriber any more: an unsubscribe is on its way */
	if (!c || !c->count || !nl2)
		return;
	for (const char *p = payload; p < nl; p++)
		seq = seq * 10 + (uint64_t)(*p - '0');
	if (!seq)
		return;
	struct outmsg *msg = outmsg_new(nl2 + 1, (size_t)(end - (nl2 + 1)));
	if (!msg)
		return;
	/* Redis publishes in seq order and never twice on one subscription */
	c->seq = seq;
	bool is_new_epoch = nl2 - epoch == ROUTER_EPOCH_LEN && memcmp(c->epoch, epoch, ROUTER_EPOCH_LEN);
	if (is_new_epoch) {
		memcpy(c->epoch, epoch, ROUTER_EPOCH_LEN);
		c->epoch[ROUTER_EPOCH_LEN] = '\0';
	}
	for (struct subscription *sub = c->first; sub; sub = sub->channel_next) {
		if (sub->answered_through) {
			/* sent before the subscribe's answer was computed, but read after it */
			if (seq <= sub->answered_through && !is_new_epoch)
				continue;
			sub->answered_through = 0;
		}
		if (!sub->hold) {
			session_queue(sub->owner, msg);
		} else if (sub->hold->bytes + msg->len > max_held || subscription_hold_push(sub->hold, msg, seq)) {
			struct session *s = sub->owner;
			s->server->metrics.slow_consumers++;
			session_close(s, WSG_CLOSE_SLOW_CONSUMER, NULL);
		}
	}
	outmsg_unref(msg);
}

/* "send\nORIGIN\nUSER\nDELIVERY" and "disconnect\nORIGIN\nUSER\nDEVICE|*\nCODE\nREASON" from another node. */
void cluster_on_broadcast(struct cluster *cl, char *payload, size_t len)
{
	struct wsg_server *server = cl->server;
	char *f[6] = { NULL };
	size_t n;

	(void)len;
	if (!strncmp(payload, "send\n", 5)) {
		n = cluster_split_lines(payload, f, 4);
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
		n = cluster_split_lines(payload, f, 6);
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

/* ---- publish, send, disconnect ---- */

/* The publish script for a delivery as message_channel_delivery writes it, cut where Redis puts the seq. */
static int send_publish(struct cluster *cl, const char *channel, const char *from, json_t *data, redisCallbackFn *fn,
			void *privdata)
{
	struct wsg_history_limits limits = history_limits(cl, channel);
	char pubsub[CLUSTER_KEY_MAX], suffix[48], size[16], ttl[16];
	struct channel_keys k;

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
	channel_keys(&k, channel);
	snprintf(pubsub, sizeof(pubsub), "%sch:%s", cl->prefix, channel);
	snprintf(size, sizeof(size), "%u", limits.size);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	int rc = redisAsyncCommand(cl->cmd, fn, privdata, "EVALSHA %s 3 %s %s %s %s %s %s %s %s", cl->publish_sha,
				   k.seq, k.epoch, k.history, pubsub, before, suffix, size, ttl);
	free(before);
	return rc == REDIS_OK ? 0 : -1;
}

long long cluster_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data)
{
	struct cluster *cl = cluster_of(server);

	if (!cl->is_up)
		return WSG_DELIVERED_UNAVAILABLE;
	return send_publish(cl, channel, from, data, NULL, NULL) ? -1 : WSG_DELIVERED_ACCEPTED;
}

static void on_api_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct api_wait *wait = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_INTEGER)
		return cluster_finish_wait(wait, 503,
					   json_pack("{s:s}", "error", "cluster: Redis did not take the publish"));
	cluster_finish_wait(wait, 202, json_pack("{s:b, s:I}", "accepted", 1, "seq", (json_int_t)reply->integer));
}

void cluster_api_publish(struct wsg_server *server, const char *channel, json_t *data, struct api_response *resp)
{
	struct cluster *cl = cluster_of(server);
	struct api_wait *wait = cluster_begin_wait(cl, resp);

	if (wait && send_publish(cl, channel, NULL, data, on_api_publish_reply, wait))
		cluster_cancel_wait(resp);
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

/* ---- GET /api/history ---- */

struct history_request {
	struct api_wait *wait;
	char channel[WSG_CHANNEL_MAX + 1];
};

static void on_history_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct history_request *req = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_ARRAY) {
		cluster_finish_wait(req->wait, 503,
				    json_pack("{s:s}", "error", "cluster: Redis did not answer; try again later"));
	} else if (reply->elements < 3) {
		cluster_finish_wait(req->wait, 404,
				    json_pack("{s:s}", "error", "no such channel: no subscriber and no history"));
	} else {
		json_t *messages = json_array();
		for (size_t i = 3; messages && i < reply->elements; i++) {
			redisReply *e = reply->element[i];
			/* the delivery exactly as subscribers got it: our own JSON, read back */
			json_t *m = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
			if (m)
				json_array_append_new(messages, m);
		}
		cluster_finish_wait(req->wait, 200,
				    json_pack("{s:s, s:s, s:I, s:b, s:o}", "channel", req->channel, "epoch",
					      reply->element[1]->str ? reply->element[1]->str : "", "seq",
					      (json_int_t)reply->element[0]->integer, "complete",
					      reply->element[2]->integer == 1, "messages", messages));
	}
	free(req);
}

void cluster_api_history(struct wsg_server *server, const char *channel, uint64_t since, size_t limit,
			 struct api_response *resp)
{
	struct cluster *cl = cluster_of(server);
	struct api_wait *wait = cluster_begin_wait(cl, resp);
	struct wsg_history_limits limits = history_limits(cl, channel);
	struct history_request *req;
	struct channel_keys k;
	char since_text[24], limit_text[24], ttl[16];

	if (!wait)
		return;
	if (!(req = calloc(1, sizeof(*req))))
		return cluster_cancel_wait(resp);
	req->wait = wait;
	util_strlcpy(req->channel, channel, sizeof(req->channel));
	channel_keys(&k, channel);
	snprintf(since_text, sizeof(since_text), "%llu", (unsigned long long)since);
	snprintf(limit_text, sizeof(limit_text), "%zu", limit);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	if (redisAsyncCommand(cl->cmd, on_history_reply, req, "EVAL %s 3 %s %s %s %s %s %s", history_script, k.seq,
			      k.epoch, k.history, since_text, limit_text, ttl) != REDIS_OK) {
		free(req);
		cluster_cancel_wait(resp);
	}
}
