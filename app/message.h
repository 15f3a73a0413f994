/*
 * The client message protocol: JSON text frames with a "type". Pure: takes a
 * complete, UTF-8-valid message and returns the reply to queue, so it is
 * driven by unit tests without a socket. Routing (channels, direct sends)
 * plugs in here as new types.
 */
#ifndef WSGATE_MESSAGE_H
#define WSGATE_MESSAGE_H

#include <stddef.h>

struct message_reply {
	char *text; /* malloc'd reply, NULL when there is none */
	size_t len;
};

/* Handles one client message; returns -1 only when out of memory. */
int message_handle(const char *text, size_t len, struct message_reply *reply);

/* The first message of every admitted session. */
char *message_welcome(const char *session_id, const char *user, const char *device, unsigned heartbeat_ms,
		      size_t *len);

#endif
