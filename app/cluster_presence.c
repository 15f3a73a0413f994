/*
 * Presence for the whole cluster: each node keeps its sessions' JSON in a
 * Redis hash of its own (removed with the node when it dies), and a listing
 * reads every live node's hash in one script.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cluster_internal.h"
#include "server.h"
#include "util.h"

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

char *cluster_session_json(const struct session *s, const char *node)
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

void cluster_update_presence(struct cluster *cl, struct session *s)
{
	char key[CLUSTER_KEY_MAX];
	char *text;

	if (!cl->is_up || !s->is_admitted || !s->entry.is_registered ||
	    !(text = cluster_session_json(s, cl->conf.node)))
		return;
	snprintf(key, sizeof(key), "wsgate:sessions:%s", cl->conf.node);
	redisAsyncCommand(cl->cmd, NULL, NULL, "HSET %s %s %s", key, s->id, text);
	free(text);
}

/* ---- cluster-wide listings: GET /api/sessions, /api/presence ---- */

struct list_request {
	struct cluster *cl;
	struct api_wait *wait;
	char *channel; /* NULL: every session */
};

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
		cluster_finish_wait(req->wait, 503,
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
		cluster_finish_wait(req->wait, 200, json_pack("{s:s, s:o}", "channel", req->channel, "sessions", list));
	else
		cluster_finish_wait(req->wait, 200, json_pack("{s:o}", "sessions", list));
	free(req->channel);
	free(req);
}

void cluster_list(struct wsg_server *server, const char *channel, struct api_response *resp)
{
	struct cluster *cl = cluster_of(server);
	struct api_wait *wait = cluster_begin_wait(cl, resp);
	struct list_request *req;

	if (!wait)
		return;
	req = calloc(1, sizeof(*req));
	if (!req || (channel && !(req->channel = strdup(channel))) ||
	    redisAsyncCommand(cl->cmd, on_list_reply, req, "EVAL %s 0", list_script) != REDIS_OK) {
		if (req)
			free(req->channel);
		free(req);
		return cluster_cancel_wait(resp);
	}
	req->cl = cl;
	req->wait = wait;
}
