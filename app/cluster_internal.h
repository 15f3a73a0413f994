/*
 * What the cluster's files share (not an interface: app/cluster.h is). The
 * node's connections and lifecycle live in cluster.c, claims in
 * cluster_claims.c, channels, history and recovery in cluster_channels.c,
 * presence and listings in cluster_presence.c.
 */
#ifndef WSGATE_CLUSTER_INTERNAL_H
#define WSGATE_CLUSTER_INTERNAL_H

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "hashtable.h"
#include "registry.h"
#include "router.h"

#define CLUSTER_KEY_MAX 512
#define CLUSTER_SHA_HEX (2 * SHA_DIGEST_LENGTH + 1)

/*
 * Lua helpers for the channel scripts: a new incarnation's epoch (16 hex
 * digits, unique per channel and Redis microsecond) and Redis's clock in ms.
 */
#define NEW_EPOCH                                                                                                      \
	"local function new_epoch()\n"                                                                                 \
	"  local t = redis.call('TIME')\n"                                                                             \
	"  return string.sub(redis.sha1hex(KEYS[1] .. '/' .. t[1] .. '.' .. t[2]), 1, 16)\n"                           \
	"end\n"                                                                                                        \
	"local function now_ms()\n"                                                                                    \
	"  local t = redis.call('TIME')\n"                                                                             \
	"  return t[1] * 1000 + math.floor(t[2] / 1000)\n"                                                             \
	"end\n"

struct api_response;
struct api_wait;
struct position_request;

/* One Redis subscription per channel per node; the states keep hiredis 0.14's callback table right. */
enum remote_state { REMOTE_SUBSCRIBED, REMOTE_UNSUBSCRIBING };

struct remote_channel {
	struct ht_node node;
	char *name;
	enum remote_state state;
	bool is_wanted;	   /* while unsubscribing: subscribe again once Redis confirms */
	bool is_confirmed; /* Redis said "subscribe": every later publish reaches this node */
	/* subscribes waiting for is_confirmed before they ask Redis where the channel stands */
	struct position_request *waiting;
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
	char claim_sha[CLUSTER_SHA_HEX], release_sha[CLUSTER_SHA_HEX], publish_sha[CLUSTER_SHA_HEX],
		position_sha[CLUSTER_SHA_HEX];
	uint64_t reconnects, refused, local_admits, claims_taken, claims_refused, replaced_remote, messages_in;
	uint64_t positions_from_redis, positions_from_node;
};

/* The scripts EVALSHA runs, loaded by cluster.c on every new command connection. */
extern const char cluster_claim_script[], cluster_release_script[], cluster_publish_script[], cluster_position_script[];

/* cluster.c */
struct cluster *cluster_of(const struct wsg_server *server);
/* Loads the EVALSHA scripts again (a NOSCRIPT answer: someone ran SCRIPT FLUSH). */
void cluster_load_scripts(struct cluster *cl);
/*
 * An API response that waits for Redis: the wait, bound to resp; NULL when
 * Redis is down (resp is a 503) or out of memory (a 500). A command that then
 * cannot be sent cancels it (resp becomes a 500).
 */
struct api_wait *cluster_begin_wait(struct cluster *cl, struct api_response *resp);
void cluster_cancel_wait(struct api_response *resp);
/* Completes an API response that waited for Redis (app/api.h: struct api_wait); takes body. */
void cluster_finish_wait(struct api_wait *wait, unsigned status, json_t *body);
/* Every reply on the pub/sub connection. */
void cluster_on_sub_message(redisAsyncContext *ac, void *reply, void *privdata);
/* Splits text at '\n' into at most max fields (the last takes the rest); returns the count. */
size_t cluster_split_lines(char *text, char **fields, size_t max);

/* cluster_claims.c */
/* "replace\nN/SID\nUSER\nDEVICE": a newer session on another node took the key from our session SID. */
void cluster_on_replace(struct cluster *cl, char **fields, size_t count);
/* After a reconnect: every admitted session claimed again; conflicts lose with 4002. */
size_t cluster_reclaim_all(struct cluster *cl);

/* cluster_presence.c */
char *cluster_session_json(const struct session *s, const char *node);
void cluster_update_presence(struct cluster *cl, struct session *s);

/* cluster_channels.c */
struct channel_keys {
	char seq[CLUSTER_KEY_MAX], epoch[CLUSTER_KEY_MAX], history[CLUSTER_KEY_MAX];
};
/* The Redis keys of channel name: its seq, its epoch, its history stream. */
void cluster_channel_keys(struct channel_keys *k, const char *name);
/* The history bounds of a channel, as this node's configuration gives them (every node should agree). */
struct wsg_history_limits cluster_history_limits(const struct cluster *cl, const char *name);
void cluster_on_router_event(void *ctx, enum router_event event, const struct channel *c, void *owner);
/* A message on "wsgate:DB:ch:C", or Redis confirming a (un)subscribe of it. */
void cluster_on_channel_message(struct cluster *cl, const char *name, const char *payload, size_t len);
void cluster_on_channel_subscribed(struct cluster *cl, const char *name);
void cluster_on_channel_unsubscribed(struct cluster *cl, const char *name);
/* The pub/sub connection is ready again: every channel with local subscribers subscribed again. */
void cluster_channels_resubscribe(struct cluster *cl);
/* The connections are gone: waiting subscribes answered from this node, unwanted channels forgotten. */
void cluster_channels_lost(struct cluster *cl);
/* Redis is back: every channel's seq goes on from what its subscribers here last got. */
void cluster_channels_raise_seqs(struct cluster *cl);
/* Every claim_ttl_ms / 3: the Redis keys of the channels with subscribers here are kept from expiring. */
void cluster_channels_keep_alive(struct cluster *cl);
void cluster_channels_free(struct cluster *cl);

/* cluster_publish.c */
/* "send\n..." and "disconnect\n..." on the all-nodes channel. */
void cluster_on_broadcast(struct cluster *cl, char *payload, size_t len);

#endif
