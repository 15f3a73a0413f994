/*
 * Channels across the cluster, the subscribing side: each node holds one
 * Redis subscription per channel with local subscribers and queues each
 * delivery (published by cluster_publish.c with its seq and epoch, and kept
 * in the channel's stream) once for all of them.
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

/*
 * KEYS: seq, epoch, history. ARGV: the client's epoch ('' without since), its seq, ttl_ms. Returns {seq, epoch}
 * without since, else {seq, epoch, recovered, the missed deliveries oldest first}: recovered only when the
 * stream holds every seq after since, the oldest of them younger than ttl_ms. An epoch made for a channel
 * nothing was published to lasts ttl_ms after its last subscribe, or while subscribers keep it alive.
 */
const char cluster_position_script[] =
	NEW_EPOCH "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
		  "local epoch = redis.call('GET', KEYS[2])\n"
		  "if not epoch then\n"
		  "  epoch = new_epoch()\n"
		  "  redis.call('DEL', KEYS[3])\n"
		  "  if seq == 0 then redis.call('SET', KEYS[2], epoch, 'PX', ARGV[3])\n"
		  "  else redis.call('SET', KEYS[2], epoch) end\n"
		  "elseif seq == 0 then\n"
		  "  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[3]), redis.call('PTTL', KEYS[2])))\n"
		  "end\n"
		  "if ARGV[1] == '' then return {seq, epoch} end\n"
		  "local since = tonumber(ARGV[2])\n"
		  "if ARGV[1] ~= epoch or since > seq then return {seq, epoch, 0} end\n"
		  "if since == seq then return {seq, epoch, 1} end\n"
		  "local kept = redis.call('XRANGE', KEYS[3], string.format('%d-0', since + 1), '+')\n"
		  "if #kept ~= seq - since or tonumber(kept[1][2][2]) + tonumber(ARGV[3]) <= now_ms() then\n"
		  "  return {seq, epoch, 0}\n"
		  "end\n"
		  "local out = {seq, epoch, 1}\n"
		  "for _, e in ipairs(kept) do out[#out + 1] = e[2][4] end\n"
		  "return out\n";

/*
 * KEYS: seq, epoch. ARGV: the last seq this node delivered, its epoch, keep_ms. A Redis that restarted empty
 * goes on from there (its history is gone: only a client that missed nothing recovers); keys it makes expire
 * unless kept alive.
 */
static const char raise_seq_script[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
				       "if cur == 0 then\n"
				       "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
				       "  redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3])\n"
				       "elseif cur < tonumber(ARGV[1]) then\n"
				       "  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')\n"
				       "end\n"
				       "return 0\n";

/*
 * KEYS: epoch, seq, history of each channel with subscribers on this node. ARGV: keep_ms. A channel with
 * subscribers lives on, with its epoch and seq, as on one node, however long nothing is published; keys
 * without an expiry (no history) are left alone.
 */
static const char keep_alive_script[] = "for i = 1, #KEYS, 3 do\n"
					"  local left = redis.call('PTTL', KEYS[i])\n"
					"  if left >= 0 and left < tonumber(ARGV[1]) then\n"
					"    for j = i, i + 2 do redis.call('PEXPIRE', KEYS[j], ARGV[1]) end\n"
					"  end\n"
					"end\n"
					"return 0\n";

/*
 * A subscribe waiting for Redis to say where its channel stands. At any time
 * it is owned by one of: its remote channel's waiting list (sent once this
 * node's subscription is live), Redis (a command in flight: the reply frees
 * it), or the subscribe before it on the same subscription (queued, started
 * when that one is answered). hold.sub NULL: answered, or nobody is left to
 * answer.
 */
struct position_request {
	struct cluster *cl;
	struct subscription_hold hold;
	struct session *s; /* valid while hold.sub is */
	json_t *id;
	bool has_since;
	char since_epoch[ROUTER_EPOCH_LEN + 2]; /* one more: a longer epoch never equals a real one */
	uint64_t since_seq;
	cluster_answer_fn answer;
	struct position_request *next;	 /* in its remote channel's waiting list */
	struct position_request *queued; /* the next subscribe of the same subscription */
};

void cluster_channel_keys(struct channel_keys *k, const char *name)
{
	/* cppcheck takes the snprintf into a member of an uninitialised struct for a read */
	// cppcheck-suppress ctuuninitvar
	snprintf(k->seq, sizeof(k->seq), "wsgate:seq:%s", name);
	snprintf(k->epoch, sizeof(k->epoch), "wsgate:epoch:%s", name);
	snprintf(k->history, sizeof(k->history), "wsgate:history:%s", name);
}

struct wsg_history_limits cluster_history_limits(const struct cluster *cl, const char *name)
{
	return config_history_limits(cl->server->config, name);
}

/* ---- positions: where a channel stands for a subscribe ---- */

static struct remote_channel *find_remote(struct cluster *cl, const char *name, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&cl->remote, hash); n; n = n->next) {
		struct remote_channel *r = lws_container_of(n, struct remote_channel, node);
		if (n->hash == hash && !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

static void free_request(struct position_request *req)
{
	while (req) {
		struct position_request *queued = req->queued; /* never started: nobody is left to answer */
		if (req->hold.sub)
			req->hold.sub->hold = NULL;
		subscription_hold_clear(&req->hold);
		json_decref(req->id);
		free(req);
		req = queued;
	}
}

static void start(struct position_request *req, struct subscription *sub, bool is_live);

/*
 * After the answer (and the replay): the deliveries held meanwhile that came
 * after it go out, the subscription is live again, and the next subscribe
 * queued on it starts. req stays with its owner.
 */
static void finish(struct position_request *req, uint64_t after)
{
	struct subscription_hold *hold = &req->hold;
	struct subscription *sub = hold->sub;
	struct position_request *next = req->queued;

	sub->hold = NULL;
	sub->answered_through = after;
	for (size_t i = 0; i < hold->count; i++)
		if (hold->seqs[i] > after && session_queue(req->s, hold->msgs[i]))
			break; /* closing (or just closed as a slow consumer) */
	subscription_hold_clear(hold);
	hold->sub = NULL;
	req->queued = NULL;
	if (next)
		start(next, sub, true);
}

/* Redis down or failing, or an unsubscribe that cannot wait: the position this node knows, nothing replayed. */
static void answer_locally(struct position_request *req)
{
	struct channel *c = req->hold.sub->channel;
	/* the held deliveries follow this position */
	uint64_t seq = req->hold.count ? req->hold.seqs[0] - 1 : c->seq;
	struct channel_position pos = { c->epoch, seq, -1 };

	if (req->has_since)
		pos.recovered = !strcmp(req->since_epoch, c->epoch) && req->since_seq == seq;
	req->cl->positions_from_node++;
	req->answer(req->s, req->id, &pos);
	finish(req, seq);
}

static void answer_from_redis(struct position_request *req, const redisReply *reply)
{
	struct channel *c = req->hold.sub->channel;
	struct channel_position pos = { reply->element[1]->str, (uint64_t)reply->element[0]->integer,
					reply->elements > 2 ? (int)reply->element[2]->integer : -1 };

	/* this node now knows the incarnation its deliveries belong to */
	if (reply->element[1]->len == ROUTER_EPOCH_LEN && strcmp(c->epoch, pos.epoch)) {
		memcpy(c->epoch, pos.epoch, ROUTER_EPOCH_LEN + 1);
		c->seq = pos.seq;
		/* what other subscriptions were answered through belongs to the incarnation before */
		for (struct subscription *other = c->first; other; other = other->channel_next)
			other->answered_through = 0;
	} else if (c->seq < pos.seq) {
		c->seq = pos.seq;
	}
	req->cl->positions_from_redis++;
	req->answer(req->s, req->id, &pos);
	for (size_t i = 3; pos.recovered == 1 && i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		struct outmsg *msg = e->type == REDIS_REPLY_STRING ? outmsg_new(e->str, e->len) : NULL;
		int rc = msg ? session_queue(req->s, msg) : -1;
		outmsg_unref(msg);
		if (rc)
			break;
	}
	finish(req, pos.seq);
}

static void on_position_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct position_request *req = privdata;
	redisReply *reply = r;

	(void)ac;
	if (!req->hold.sub) { /* answered already (an unsubscribe), or the session went */
	} else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
		   reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_STRING &&
		   (reply->elements == 2 || reply->element[2]->type == REDIS_REPLY_INTEGER)) {
		answer_from_redis(req, reply);
	} else {
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			log_event(LOG_ERROR, "cluster", "msg=\"position failed: %s\"", reply->str);
			if (!strncmp(reply->str, "NOSCRIPT", 8) && req->cl->is_up)
				cluster_load_scripts(req->cl);
		}
		answer_locally(req);
	}
	free_request(req);
}

/* True: in flight, the reply owns req. */
static bool ask_redis(struct position_request *req)
{
	struct cluster *cl = req->cl;
	struct channel *c = req->hold.sub->channel;
	struct wsg_history_limits limits = cluster_history_limits(cl, c->name);
	struct channel_keys k;
	char since[24], ttl[16];

	cluster_channel_keys(&k, c->name);
	snprintf(since, sizeof(since), "%llu", (unsigned long long)req->since_seq);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	return cl->is_up && redisAsyncCommand(cl->cmd, on_position_reply, req, "EVALSHA %s 3 %s %s %s %s %s %s",
					      cl->position_sha, k.seq, k.epoch, k.history,
					      req->has_since ? req->since_epoch : "", since, ttl) == REDIS_OK;
}

/*
 * req takes over sub's deliveries and asks where the channel stands: at once,
 * once sub is live at Redis, or here. A subscribe repeated on a subscription
 * that is live (is_live) without since is answered here: it has had every
 * message up to the channel's seq on this node.
 */
static void start(struct position_request *req, struct subscription *sub, bool is_live)
{
	struct cluster *cl = req->cl;
	struct remote_channel *r = find_remote(cl, sub->channel->name, siphash_string(cl->key, sub->channel->name));

	req->hold.sub = sub;
	sub->hold = &req->hold;
	if (is_live && !req->has_since) {
		answer_locally(req);
		free_request(req);
		return;
	}
	if (r && r->is_confirmed && ask_redis(req))
		return;
	if (r && !r->is_confirmed && cl->is_up) {
		req->next = r->waiting;
		r->waiting = req;
		return;
	}
	answer_locally(req);
	free_request(req);
}

bool cluster_subscribe(struct session *s, struct subscription *sub, json_t *id, const char *since_epoch,
		       uint64_t since_seq, cluster_answer_fn answer)
{
	struct cluster *cl = cluster_of(s->server);
	struct position_request *req;

	if (!cl || !cl->is_up || !(req = calloc(1, sizeof(*req))))
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
	if (sub->hold) { /* a subscribe of this subscription is waiting: this one is answered after it */
		struct position_request *last = lws_container_of(sub->hold, struct position_request, hold);
		while (last->queued)
			last = last->queued;
		last->queued = req;
		return true;
	}
	start(req, sub, false);
	return true;
}

void cluster_settle(struct subscription *sub)
{
	/* each answered from here in order; a request still at Redis or waiting is freed by its owner */
	while (sub->hold)
		answer_locally(lws_container_of(sub->hold, struct position_request, hold));
}

/* Starts (or, their subscriptions gone, frees) every subscribe waiting on r: with Redis up they ask it now. */
static void flush_waiting(struct remote_channel *r)
{
	struct position_request *req = r->waiting;

	r->waiting = NULL;
	while (req) {
		struct position_request *next = req->next;
		req->next = NULL;
		if (!req->hold.sub) {
			free_request(req);
		} else if (!r->is_confirmed || !ask_redis(req)) {
			answer_locally(req);
			free_request(req);
		}
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
			cluster_channel_keys(&k, c->name);
			snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
			redisAsyncCommand(cl->cmd, NULL, NULL, "EVAL %s 2 %s %s %s %s %u", raise_seq_script, k.seq,
					  k.epoch, seq, c->epoch, cl->conf.claim_ttl_ms);
		}
}

/* Channels per keep-alive command: 3 keys each. */
#define KEEP_ALIVE_BATCH 256

static void send_keep_alive(struct cluster *cl, struct channel_keys *keys, size_t count)
{
	const char *argv[3 + 3 * KEEP_ALIVE_BATCH + 1];
	char numkeys[16], keep[16];
	size_t argc = 0;

	snprintf(numkeys, sizeof(numkeys), "%zu", 3 * count);
	snprintf(keep, sizeof(keep), "%u", cl->conf.claim_ttl_ms);
	argv[argc++] = "EVAL";
	argv[argc++] = keep_alive_script;
	argv[argc++] = numkeys;
	for (size_t i = 0; i < count; i++) {
		argv[argc++] = keys[i].epoch;
		argv[argc++] = keys[i].seq;
		argv[argc++] = keys[i].history;
	}
	argv[argc++] = keep;
	redisAsyncCommandArgv(cl->cmd, NULL, NULL, (int)argc, argv, NULL);
}

void cluster_channels_keep_alive(struct cluster *cl)
{
	struct channel_keys *keys = malloc(KEEP_ALIVE_BATCH * sizeof(*keys));
	size_t count = 0;

	if (!keys)
		return;
	for (size_t b = 0; b < cl->remote.bucket_count; b++)
		for (struct ht_node *nd = cl->remote.buckets[b]; nd; nd = nd->next) {
			if (!remote_of(nd)->is_wanted)
				continue;
			cluster_channel_keys(&keys[count++], remote_of(nd)->name);
			if (count == KEEP_ALIVE_BATCH) {
				send_keep_alive(cl, keys, count);
				count = 0;
			}
		}
	if (count)
		send_keep_alive(cl, keys, count);
	free(keys);
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
