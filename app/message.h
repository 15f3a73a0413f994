/*
 * The client message protocol: JSON text frames with a "type". Pure: parses
 * and validates a complete, UTF-8-valid message into a request, and builds
 * every reply and delivery, so unit tests drive it without a socket. What a
 * request does (routing, permissions) is app/messaging.c's business.
 */
#ifndef WSGATE_MESSAGE_H
#define WSGATE_MESSAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum request_type {
	REQUEST_INVALID,   /* error_code / error_text say why */
	REQUEST_TEXT_PING, /* the bare text "ping": answered "pong" */
	REQUEST_PING,
	REQUEST_SUBSCRIBE,
	REQUEST_UNSUBSCRIBE,
	REQUEST_PUBLISH,
	REQUEST_SEND,
};

struct request {
	enum request_type type;
	json_t *root;	    /* owned */
	json_t *id;	    /* borrowed from root; NULL when absent (or read without a tree: raw_id) */
	const char *raw_id; /* the id's JSON text when the request was read without a tree */
	size_t raw_id_len;
	const char *channel; /* subscribe, unsubscribe, publish */
	const char *to;	     /* send */
	json_t *data;	     /* publish, send */
	/* subscribe: "since":{"epoch":"...","seq":N}, the position to recover from */
	bool has_since;
	const char *since_epoch;
	uint64_t since_seq;
	const char *error_code;
	char error_text[256];
};

/* Parses text into req; returns -1 only when out of memory. Free with message_request_free. */
int message_parse(const char *text, size_t len, struct request *req);
void message_request_free(struct request *req);

/* Replies and deliveries, malloc'd compact JSON; NULL when out of memory. */
char *message_error(json_t *id, const char *code, const char *text, size_t *len);
char *message_ack(json_t *id, long long delivered, size_t *len); /* delivered < 0: not shown */
char *message_pong(json_t *id, size_t *len);
/*
 * A subscribe's ack: {"type":"ack","id":..,"epoch":"..","seq":N} with the
 * channel's position, and "recovered":true|false when the subscribe asked to
 * recover (recovered < 0: it did not).
 */
char *message_subscribe_ack(json_t *id, const char *epoch, uint64_t seq, int recovered, size_t *len);
/*
 * The answer to a ping: {"type":"pong"} with the request's id, however it was
 * read (a ping read without a tree has raw_id, not id). Writes into out;
 * returns the length, 0 when it does not fit.
 */
size_t message_pong_to(const struct request *req, char *out, size_t outlen);
char *message_welcome(const char *session_id, const char *user, const char *device, unsigned heartbeat_ms, size_t *len);
/* {"type":"message","channel":..,"from":..,"data":..,"seq":N,"ts":MS}; from NULL: the backend API. */
char *message_channel_delivery(const char *channel, const char *from, json_t *data, uint64_t seq, uint64_t ts_ms,
			       size_t *len);
/* {"type":"message","from":..,"to":..,"data":..,"ts":MS}: a direct message. */
char *message_direct_delivery(const char *from, const char *to, json_t *data, uint64_t ts_ms, size_t *len);

#endif
