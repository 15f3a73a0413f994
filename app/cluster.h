/*
 * A wsgate cluster on Redis: several processes (on one machine or many) keep
 * every guarantee of one. One session per (user, device) cluster-wide through
 * an atomic claim in Redis; channel publishes, direct sends and API
 * disconnects reach every node through Redis pub/sub with one subscription
 * per channel per node; channel positions (seq, epoch) and history in Redis,
 * so a client recovers on any node; presence for the whole cluster. Every
 * Redis call is asynchronous on the server's own libev loop. Without a
 * `cluster` group in the configuration every function here is a no-op and
 * Redis is never touched.
 */
#ifndef WSGATE_CLUSTER_H
#define WSGATE_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_response;
struct outmsg;
struct session;
struct subscription;
struct wsg_server;

/* Deliveries whose count is not known here: handed to Redis, every node delivers its own. */
#define WSG_DELIVERED_ACCEPTED (-2)
/* The cluster's Redis is unreachable: nothing was published. */
#define WSG_DELIVERED_UNAVAILABLE (-3)

/* After the lws context and loop exist: connects to Redis (in the background). */
int cluster_init(struct wsg_server *server);
/* At exit: this node's claims are released at once (a short blocking call), then the connections go. */
void cluster_free(struct wsg_server *server);

bool cluster_is_enabled(const struct wsg_server *server);

/*
 * At admission, after the local repeat-connect policy, with s->id set. Returns
 * false when the cluster is off: admit now. True: the cluster took the session
 * (held, reading nothing) and later calls session_admit or closes it (4001,
 * 4002, 1013).
 */
bool cluster_claim(struct session *s);
/* A session going away (lws CLOSED): its claim released, its presence removed. */
void cluster_session_end(struct session *s);

/* server_publish in a cluster: WSG_DELIVERED_ACCEPTED or WSG_DELIVERED_UNAVAILABLE; -1 out of memory. */
long long cluster_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data);
/* POST /api/publish in a cluster: resp waits for the seq Redis gave it (202 {"accepted":true,"seq":N}). */
void cluster_api_publish(struct wsg_server *server, const char *channel, json_t *data, struct api_response *resp);
/* GET /api/history in a cluster: from the channel's stream in Redis, answered as this node's history is. */
void cluster_api_history(struct wsg_server *server, const char *channel, uint64_t since, size_t limit,
			 struct api_response *resp);

/* Where a channel stands for a subscribe, and whether the client recovers what it missed. */
struct channel_position {
	const char *epoch;
	uint64_t seq;  /* its last message */
	int recovered; /* -1: not asked (no since), 0: cannot, 1: every message after since follows */
};

/* The answer (the ack) to a subscribe: queued before its replay and the live deliveries held meanwhile. */
typedef void (*cluster_answer_fn)(struct session *s, json_t *id, const struct channel_position *pos);

/*
 * A subscribe in a cluster, sub just made (or found) for s; since_epoch NULL
 * without a position to recover from. True: Redis is asked where the channel
 * stands (once this node's subscription to it is live) and the answer comes
 * through answer; the messages s missed and the live deliveries held meanwhile
 * follow it, with no gap and no duplicate. False (the cluster off, Redis down):
 * the caller answers from this node.
 */
bool cluster_subscribe(struct session *s, struct subscription *sub, json_t *id, const char *since_epoch,
		       uint64_t since_seq, cluster_answer_fn answer);
/* Before an unsubscribe of sub: the subscribes of it still waiting for Redis are answered now, from this node. */
void cluster_settle(struct subscription *sub);
/*
 * A direct send or an API disconnect already carried out here, told to the
 * other nodes. Return WSG_DELIVERED_ACCEPTED when handed to Redis, 0 when
 * Redis is down (this node's part stands alone), -1 out of memory.
 */
long long cluster_forward_send(struct wsg_server *server, const char *to, const struct outmsg *delivery);
long long cluster_forward_disconnect(struct wsg_server *server, const char *user, const char *device, int code,
				     const char *reason);

/*
 * GET /api/sessions (channel NULL) and GET /api/presence?channel=C for the
 * whole cluster: resp gets a wait (app/api.h) answered when Redis replies, or
 * a 503 at once when Redis is down.
 */
void cluster_list(struct wsg_server *server, const char *channel, struct api_response *resp);

/* /healthz: {"node":..,"redis":"up|down"}; NULL when the cluster is off. */
json_t *cluster_health(const struct wsg_server *server, bool *is_serving);
/* /metrics: appends the cluster's lines to the exposition text (body realloc'd). */
int cluster_render_metrics(const struct wsg_server *server, char **body, size_t *len);

#endif
