/*
 * Publishing across the cluster: a channel publish is one Lua script (INCR
 * the channel's seq, keep the delivery in its stream, PUBLISH it with its seq
 * and epoch); direct sends and API disconnects go to every node on the
 * all-nodes channel; GET /api/history reads the channel's stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "channel.h"
#include "cluster_internal.h"
#include "log.h"
#include "server.h"
#include "util.h"

/*
 * KEYS: seq, epoch, history. ARGV: pub/sub channel, the delivery before its seq and after it, history size,
 * ttl_ms. Returns the seq. A channel without an epoch starts a new incarnation (its old stream goes). With a
 * history the keys live ttl_ms after the last publish, or longer while nodes with subscribers keep them
 * (cluster_channels_keep_alive): a publish never shortens that.
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
		  "  local keep = math.max(tonumber(ARGV[5]), redis.call('PTTL', KEYS[2]))\n"
		  "  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], keep) end\n"
		  "else\n"
		  "  redis.call('PERSIST', KEYS[1])\n"
		  "  redis.call('PERSIST', KEYS[2])\n"
		  "end\n"
		  "redis.call('PUBLISH', ARGV[1], string.format('%d', seq) .. '\\n' .. epoch .. '\\n' .. text)\n"
		  "return seq\n";

/*
 * KEYS: seq, epoch, history. ARGV: since, limit, ttl_ms. Returns {} for no such channel, else {seq, epoch,
 * complete, up to limit kept deliveries after since, oldest first}. Expired entries (the oldest) are skipped;
 * complete: none is missing from since to the last returned.
 */
static const char history_script[] =
	NEW_EPOCH "local epoch = redis.call('GET', KEYS[2])\n"
		  "if not epoch then return {} end\n"
		  "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
		  "local since, limit = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
		  "local oldest = now_ms() - tonumber(ARGV[3])\n"
		  "local out, expect, from, gap = {seq, epoch, 0}, since + 1, since + 1, false\n"
		  "while #out - 3 < limit do\n"
		  "  local kept = redis.call('XRANGE', KEYS[3], string.format('%d-0', from), '+', 'COUNT',\n"
		  "                           limit - (#out - 3))\n"
		  "  if #kept == 0 then break end\n"
		  "  for _, e in ipairs(kept) do\n"
		  "    if tonumber(e[2][2]) > oldest then\n"
		  "      local n = tonumber(string.match(e[1], '^%d+'))\n"
		  "      gap = gap or n ~= expect\n"
		  "      expect = n + 1\n"
		  "      out[#out + 1] = e[2][4]\n"
		  "    end\n"
		  "  end\n"
		  "  from = tonumber(string.match(kept[#kept][1], '^%d+')) + 1\n"
		  "end\n"
		  "if since >= seq or (#out > 3 and not gap) then out[3] = 1 end\n"
		  "return out\n";

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
	struct wsg_history_limits limits = cluster_history_limits(cl, channel);
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
	cluster_channel_keys(&k, channel);
	snprintf(pubsub, sizeof(pubsub), "%sch:%s", cl->prefix, channel);
	snprintf(size, sizeof(size), "%u", limits.size);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	int rc = redisAsyncCommand(cl->cmd, fn, privdata, "EVALSHA %s 3 %s %s %s %s %s %s %s %s", cl->publish_sha,
				   k.seq, k.epoch, k.history, pubsub, before, suffix, size, ttl);
	free(before);
	return rc == REDIS_OK ? 0 : -1;
}

/* A publish Redis refused is logged; NOSCRIPT (someone ran SCRIPT FLUSH) loads the scripts again. */
static bool publish_failed(struct cluster *cl, const redisReply *reply)
{
	if (!reply || reply->type != REDIS_REPLY_ERROR)
		return false;
	log_event(LOG_ERROR, "cluster", "msg=\"publish failed: %s\"", reply->str);
	if (!strncmp(reply->str, "NOSCRIPT", 8) && cl->is_up)
		cluster_load_scripts(cl);
	return true;
}

static void on_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	(void)ac;
	publish_failed(privdata, r);
}

long long cluster_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data)
{
	struct cluster *cl = cluster_of(server);

	if (!cl->is_up)
		return WSG_DELIVERED_UNAVAILABLE;
	return send_publish(cl, channel, from, data, on_publish_reply, cl) ? -1 : WSG_DELIVERED_ACCEPTED;
}

static void on_api_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct api_wait *wait = privdata;
	redisReply *reply = r;

	if (ac->data)
		publish_failed(ac->data, reply);
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
	struct wsg_history_limits limits = cluster_history_limits(cl, channel);
	struct history_request *req;
	struct channel_keys k;
	char since_text[24], limit_text[24], ttl[16];

	if (!wait)
		return;
	if (!(req = calloc(1, sizeof(*req))))
		return cluster_cancel_wait(resp);
	req->wait = wait;
	util_strlcpy(req->channel, channel, sizeof(req->channel));
	cluster_channel_keys(&k, channel);
	snprintf(since_text, sizeof(since_text), "%llu", (unsigned long long)since);
	snprintf(limit_text, sizeof(limit_text), "%zu", limit);
	snprintf(ttl, sizeof(ttl), "%u", limits.ttl_ms ? limits.ttl_ms : 1);
	if (redisAsyncCommand(cl->cmd, on_history_reply, req, "EVAL %s 3 %s %s %s %s %s %s", history_script, k.seq,
			      k.epoch, k.history, since_text, limit_text, ttl) != REDIS_OK) {
		free(req);
		cluster_cancel_wait(resp);
	}
}
