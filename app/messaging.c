/*
 * What client requests and backend API calls do: subscriptions, channel
 * publishes and direct sends, under each token's permissions and each
 * session's rate limit. A delivery is serialised once and its buffer shared
 * by every recipient's queue.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "channel.h"
#include "cluster.h"
#include "log.h"
#include "message.h"
#include "messaging.h"
#include "server.h"
#include "util.h"

/*
 * Queues a reply built by one of the message_* builders (text NULL: out of
 * memory). A reply that cannot be queued because the session is closing (or
 * was just closed as a slow consumer) is dropped, not an error.
 */
static int queue_reply(struct session *s, const char *text, size_t len)
{
	struct outmsg *msg = outmsg_new(text, len);

	if (!msg)
		return -1;
	session_queue(s, msg);
	outmsg_unref(msg);
	return 0;
}

static int reply(struct session *s, char *text, size_t len)
{
	int rc = text ? queue_reply(s, text, len) : -1;

	free(text);
	return rc;
}

static int reply_error(struct session *s, json_t *id, const char *code, const char *text)
{
	size_t len = 0;
	char *reply_text = message_error(id, code, text, &len);

	return reply(s, reply_text, len);
}

static int reply_ack(struct session *s, json_t *id, long long delivered)
{
	size_t len = 0;
	char *reply_text = message_ack(id, delivered, &len);

	return reply(s, reply_text, len);
}

static size_t deliver_to_user(struct wsg_server *server, const char *user, struct outmsg *msg)
{
	size_t delivered = 0;

	for (struct registry_entry *e = registry_first_of_user(&server->registry, user), *next; e; e = next) {
		next = e->user_next; /* a slow consumer's close takes e out of the registry */
		if (!session_queue(session_of_entry(e), msg))
			delivered++;
	}
	return delivered;
}

/*
 * The channel a publish goes to. Hot path: it exists and has its history, or
 * history is off for it; only its first publish looks the configured bounds
 * up (copied: a reload frees the configuration).
 */
static struct channel *channel_for_publish(struct wsg_server *server, const char *name, bool *is_oom)
{
	struct channel *c = router_find(&server->router, name);
	struct wsg_history_limits conf;

	*is_oom = false;
	if (c && (c->history || c->is_history_off))
		return c;
	conf = config_history_limits(server->config, name);
	struct history_limits limits = { conf.size, conf.ttl_ms };
	return router_open(&server->router, name, &limits, is_oom);
}

long long server_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data, uint64_t *seq)
{
	uint64_t now_ms = util_now_ms();
	struct outmsg *msg;
	size_t len = 0, delivered = 0;
	bool is_oom;
	char *text;

	*seq = 0;
	if (cluster_is_enabled(server))
		return cluster_publish(server, channel, from, data); /* seq from Redis; each node delivers its own */
	router_expire(&server->router, now_ms);
	struct channel *c = channel_for_publish(server, channel, &is_oom);
	if (!c)
		return is_oom ? -1 : 0; /* no subscriber and no history: nothing to number or send */
	text = message_channel_delivery(channel, from, data, c->seq + 1, util_wall_ms(), &len);
	msg = text ? outmsg_new(text, len) : NULL;
	free(text);
	if (!msg || router_record(&server->router, c, msg, now_ms)) {
		outmsg_unref(msg);
		return -1;
	}
	*seq = c->seq;
	/* the history holds the same framed buffer the queues share */
	for (struct subscription *sub = c->first; sub; sub = sub->channel_next)
		if (!session_queue(sub->owner, msg))
			delivered++;
	outmsg_unref(msg);
	return (long long)delivered;
}

long long server_send_to_user(struct wsg_server *server, const char *from, const char *to, json_t *data)
{
	struct outmsg *msg;
	size_t len = 0, delivered;
	char *text;

	if (!registry_first_of_user(&server->registry, to) && !cluster_is_enabled(server))
		return 0;
	text = message_direct_delivery(from, to, data, util_wall_ms(), &len);
	msg = text ? outmsg_new(text, len) : NULL;
	free(text);
	if (!msg)
		return -1;
	delivered = deliver_to_user(server, to, msg);
	long long forwarded = cluster_forward_send(server, to, msg); /* the other nodes' sessions of to */
	outmsg_unref(msg);
	return forwarded ? forwarded : (long long)delivered;
}

size_t server_disconnect(struct wsg_server *server, const char *user, const char *device, int code, const char *reason)
{
	size_t closed = 0;

	for (struct registry_entry *e = registry_first_of_user(&server->registry, user), *next; e; e = next) {
		struct session *s = session_of_entry(e);
		next = e->user_next; /* the close takes e out of the registry */
		if (device && strcmp(device, s->device))
			continue;
		session_close(s, code, reason);
		closed++;
	}
	return closed;
}

/* The ack of a publish or send; in a cluster without its count (each node delivers its own). */
static int delivered_reply(struct session *s, json_t *id, long long delivered)
{
	if (delivered == WSG_DELIVERED_ACCEPTED)
		return reply_ack(s, id, -1);
	if (delivered == WSG_DELIVERED_UNAVAILABLE)
		return reply_error(s, id, "unavailable", "the cluster's Redis is down: try again later");
	return delivered < 0 ? -1 : reply_ack(s, id, delivered);
}

/* Queues one message of a replay; stops when the session stops taking them (closing, or 4109). */
static int replay_one(struct outmsg *msg, uint64_t seq, void *ctx)
{
	(void)seq;
	return session_queue(ctx, msg) ? 1 : 0;
}

/* The ack of a subscribe: where the channel stands and, when asked, whether what was missed follows. */
static void answer_subscribe(struct session *s, json_t *id, const struct channel_position *pos)
{
	size_t len = 0;

	if (pos->recovered >= 0)
		s->server->metrics.recoveries[pos->recovered == 1]++;
	char *ack = message_subscribe_ack(id, pos->epoch, pos->seq, pos->recovered, &len);
	reply(s, ack, len);
}

/*
 * Subscribes, then acks with the channel's position; with "since", recovers:
 * the ack says whether the history covers it, and when it does every message
 * after since.seq follows it, oldest first. Here all of it is queued in this
 * loop turn, before any later publish; in a cluster the answer comes from
 * Redis and the live deliveries wait for it (cluster_subscribe). Either way
 * the live messages follow with no gap and no duplicate.
 */
static int do_subscribe(struct session *s, struct request *req)
{
	struct wsg_server *server = s->server;
	uint64_t now_ms = util_now_ms();

	if (!channel_globs_allow(s->token->subscribe.items, s->token->subscribe.count, req->channel))
		return reply_error(s, req->id, "forbidden", "not allowed to subscribe to this channel");
	/* subscribing again adds nothing, so it is never over the limit */
	if (s->subscriptions.count >= server->config->max_subscriptions &&
	    !router_is_subscribed(&server->router, &s->subscriptions, req->channel))
		return reply_error(s, req->id, "limit_exceeded", "too many subscriptions (limits.max_subscriptions)");
	router_expire(&server->router, now_ms); /* an expired history is a new incarnation */
	int rc = router_subscribe(&server->router, &s->subscriptions, s, req->channel);
	if (rc < 0)
		return -1;
	struct subscription *sub = router_subscription(&server->router, &s->subscriptions, req->channel);
	/* subscribed already and live, no since: it has had everything up to the channel's seq here */
	bool is_known_here = rc == 1 && !req->has_since && !sub->hold;
	if (!is_known_here && cluster_subscribe(s, sub, req->id, req->has_since ? req->since_epoch : NULL,
						req->since_seq, answer_subscribe))
		return 0;
	struct channel *c = sub->channel;
	struct channel_position pos = { c->epoch, c->seq, -1 };
	if (req->has_since)
		pos.recovered = router_can_recover(c, req->since_epoch, req->since_seq, now_ms);
	answer_subscribe(s, req->id, &pos);
	if (pos.recovered == 1 && c->history && req->since_seq < c->seq)
		history_since(c->history, req->since_seq, SIZE_MAX, replay_one, s);
	return 0;
}

/* A subscribe of it still waiting for the cluster's answer is answered first (from this node), then it goes. */
static void unsubscribe(struct session *s, const char *channel)
{
	struct subscription *sub = router_subscription(&s->server->router, &s->subscriptions, channel);

	if (sub && sub->hold)
		cluster_settle(sub);
	router_unsubscribe(&s->server->router, &s->subscriptions, channel);
}

static int do_publish(struct session *s, struct request *req)
{
	if (!channel_globs_allow(s->token->publish.items, s->token->publish.count, req->channel))
		return reply_error(s, req->id, "forbidden", "not allowed to publish to this channel");
	uint64_t seq;
	long long delivered = server_publish(s->server, req->channel, s->user, req->data, &seq);
	return delivered_reply(s, req->id, delivered);
}

static int do_send(struct session *s, struct request *req)
{
	if (!channel_globs_allow(s->token->send.items, s->token->send.count, req->to))
		return reply_error(s, req->id, "forbidden", "not allowed to send to this user");
	long long delivered = server_send_to_user(s->server, s->user, req->to, req->data);
	return delivered_reply(s, req->id, delivered);
}

static int dispatch(struct session *s, struct request *req)
{
	size_t len = 0;

	switch (req->type) {
	case REQUEST_INVALID:
		return reply_error(s, req->id, req->error_code, req->error_text);
	case REQUEST_TEXT_PING:
		return queue_reply(s, "pong", 4);
	case REQUEST_PING: {
		char pong[256];
		len = message_pong_to(req, pong, sizeof(pong));
		if (len)
			return queue_reply(s, pong, len);
		char *text = message_pong(req->id, &len);
		return reply(s, text, len);
	}
	case REQUEST_SUBSCRIBE:
		return do_subscribe(s, req);
	case REQUEST_UNSUBSCRIBE:
		unsubscribe(s, req->channel);
		return reply_ack(s, req->id, -1);
	case REQUEST_PUBLISH:
		return do_publish(s, req);
	case REQUEST_SEND:
		return do_send(s, req);
	}
	return 0;
}

static int handle_message(struct session *s, const char *text, size_t len)
{
	const struct wsg_config *config = s->server->config;
	struct request req;
	int rc;

	s->server->metrics.messages_in++;
	s->server->metrics.bytes_in += len;
	if (!ratelimit_allow(&s->rate, config->messages_per_second, config->burst, util_now_ms())) {
		s->server->metrics.rate_limited++;
		/* persistent abuse: a whole burst more after being told */
		if (s->rate.strikes >= config->burst) {
			session_close(s, WSG_CLOSE_RATE_LIMITED, NULL);
			return 0; /* the close follows the replies already queued */
		}
		return reply_error(s, NULL, "rate_limited", "too many messages (limits.messages_per_second)");
	}
	if (message_parse(text, len, &req))
		return -1;
	rc = dispatch(s, &req);
	message_request_free(&req);
	return rc;
}

/* {"type":"error","code":"forbidden","channel":C,"message":...}: a subscription the new permissions end. */
static void tell_unsubscribed(struct session *s, const char *channel)
{
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code", "forbidden", "channel", channel,
				"message", "subscription ended: no longer allowed to subscribe to this channel");
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	struct outmsg *msg = text ? outmsg_new(text, strlen(text)) : NULL;

	json_decref(obj);
	free(text);
	if (msg)
		session_queue(s, msg);
	outmsg_unref(msg);
}

/* Drops the subscriptions the session's (new) token no longer allows. */
static void enforce_subscriptions(struct session *s)
{
	const struct wsg_globs *allowed = &s->token->subscribe;

	for (struct subscription *sub = s->subscriptions.first, *next; sub; sub = next) {
		char channel[256];
		next = sub->owner_next;
		if (channel_globs_allow(allowed->items, allowed->count, sub->channel->name))
			continue;
		/* the channel (and its name) goes with its last subscriber */
		util_strlcpy(channel, sub->channel->name, sizeof(channel));
		unsubscribe(s, channel);
		tell_unsubscribed(s, channel);
	}
}

static int on_open(struct session *s)
{
	struct wsg_server *server = s->server;
	size_t len = 0;
	char *welcome = message_welcome(s->id, s->user, s->device, server->config->heartbeat_interval_ms, &len);

	ratelimit_init(&s->rate, server->config->burst, s->opened_ms);
	return reply(s, welcome, len);
}

static int on_message(struct session *s, const unsigned char *data, size_t len, bool is_binary)
{
	(void)is_binary; /* never: this application does not accept binary messages */
	return handle_message(s, (const char *)data, len);
}

static void on_close(struct session *s)
{
	router_unsubscribe_all(&s->server->router, &s->subscriptions);
}

static const struct wsg_app_http messaging_http = {
	.is_route = api_is_route,
	.is_authorized = api_is_authorized,
	.handle = api_handle,
};

/* wsgate itself: JSON messages, channels and direct sends, and the backend HTTP API. */
const struct wsg_app wsg_application = {
	.name = "wsgate",
	.accepts_binary = false,
	.on_open = on_open,
	.on_message = on_message,
	.on_token_changed = enforce_subscriptions,
	.on_close = on_close,
	.http = &messaging_http,
};
