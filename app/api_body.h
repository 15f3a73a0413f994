/*
 * The backend API's request bodies: a JSON object per route, parsed and
 * checked into a struct, or the text a 400 answer carries. Pure (no
 * libwebsockets, no server), so unit tests and the fuzz harness drive it.
 */
#ifndef WSGATE_API_BODY_H
#define WSGATE_API_BODY_H

#include <jansson.h>
#include <stddef.h>

/* API_BODY_NONE: a route without parameters; an empty body, or any JSON object. */
enum api_body_route { API_BODY_PUBLISH, API_BODY_SEND, API_BODY_DISCONNECT, API_BODY_NONE };

struct api_body {
	json_t *root;	     /* owned: free with api_body_free */
	const char *channel; /* publish: a valid channel name */
	const char *user;    /* send, disconnect: non-empty */
	const char *device;  /* disconnect: NULL when absent */
	json_t *data;	     /* publish, send: borrowed from root */
	int code;	     /* disconnect: 4000-4999 */
	const char *reason;  /* disconnect: the body's text, or the close-code table's */
};

/*
 * Parses text[0..len) for route. Returns 0 with out filled, or -1 with err
 * holding why (out->root is then NULL and nothing needs freeing).
 */
int api_body_parse(enum api_body_route route, const char *text, size_t len, struct api_body *out, char *err,
		   size_t errlen);
void api_body_free(struct api_body *body);

#endif
