/*
 * What wsgate's messaging application offers the backend API: deliveries to
 * channels and users, and closing a user's sessions, on the sessions of this
 * process.
 */
#ifndef WSGATE_MESSAGING_H
#define WSGATE_MESSAGING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct wsg_server;

/*
 * Deliveries to sessions; return how many got it (-1: out of memory). from NULL: the API.
 * A publish sets *seq to the number the message got (0: none, nobody subscribed and no history).
 */
long long server_publish(struct wsg_server *server, const char *channel, const char *from, json_t *data, uint64_t *seq);
long long server_send_to_user(struct wsg_server *server, const char *from, const char *to, json_t *data);
/* Closes the sessions of user (one device, or all with device NULL); returns how many. */
size_t server_disconnect(struct wsg_server *server, const char *user, const char *device, int code, const char *reason);

#endif
