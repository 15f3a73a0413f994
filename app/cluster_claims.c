/*
 * Claims: one session per (user, device) in the whole cluster. A claim is one
 * Lua script (check the holder, maybe tell its node to close it with 4002,
 * take the key), asked while the new session is held (reading nothing); the
 * answer admits it or closes it (4001, 4002, 1013 by on_redis_down).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "log.h"
#include "server.h"
#include "util.h"

/* KEYS: claim key, own claims set, own sessions hash. ARGV: node, "node/sid", policy, json, sid, "user\ndevice", ctl
 * prefix */
const char cluster_claim_script[] =
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
const char cluster_release_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
				      "  redis.call('DEL', KEYS[1])\n"
				      "  redis.call('SREM', KEYS[2], KEYS[1])\n"
				      "end\n"
				      "redis.call('HDEL', KEYS[3], ARGV[2])\n"
				      "return 0\n";

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

static void claim_key(char *out, size_t len, const char *user, const char *device)
{
	snprintf(out, len, "wsgate:claim:%s/%s", user, device);
}

static struct claim *find_claim(struct cluster *cl, const char *user, const char *device)
{
	struct registry_entry *e = registry_find(&cl->claiming, user, device);

	return e ? lws_container_of(e, struct claim, entry) : NULL;
}

/* "replace\nN/SID\nUSER\nDEVICE": a newer session on another node took the key from our session SID. */
void cluster_on_replace(struct cluster *cl, char **f, size_t n)
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
			cluster_load_scripts(cl); /* someone ran SCRIPT FLUSH: the next claims find them again */
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
	char *json = cluster_session_json(s, cl->conf.node);

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

size_t cluster_reclaim_all(struct cluster *cl)
{
	size_t count = 0;

	for (struct registry_entry *e = registry_first(&cl->server->registry); e; e = e->next) {
		struct session *s = session_of_entry(e);
		char *sid = strdup(s->id);
		if (!sid || send_claim(cl, s, CLAIM_RECLAIM, on_reclaim_reply, sid))
			free(sid);
		count++;
	}
	return count;
}
