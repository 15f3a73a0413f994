/*
 * The handshake decision: who is this client, and may it in? Pure functions
 * over the request's token, device and origin, so the same verdict drives an
 * HTTP refusal or a close frame. Secrets are compared in constant time.
 */
#ifndef WSGATE_AUTH_H
#define WSGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"

struct auth_request {
	const char *token;  /* NULL when the client sent none */
	const char *device; /* NULL or "" when absent */
	const char *origin; /* NULL when the client sent no Origin header */
	uint64_t now_ms;    /* wall clock (Unix ms) for token expiry; 0: not checked */
};

struct auth_verdict {
	const struct wsg_token *token; /* the matched entry when admitted */
	int close_code;		       /* 0 when admitted */
	const char *reason;	       /* why not, for the client and the log */
	int http_status;	       /* status for a refusal before the upgrade */
	enum handshake_outcome outcome;
};

void auth_decide(const struct wsg_config *config, const struct auth_request *req, struct auth_verdict *out);

/* A refusal with code's HTTP status; reason NULL takes the close-code table's text. */
void auth_refuse(struct auth_verdict *out, enum handshake_outcome outcome, int code, const char *reason);

/*
 * Extracts the token from an "Authorization: Bearer T" value; returns NULL when
 * the header is not a bearer credential.
 */
const char *auth_bearer_token(const char *authorization);

/* True when origin may connect: auth.origins unset or holding it; NULL (no Origin header) is allowed. */
bool auth_is_origin_allowed(const struct wsg_config *config, const char *origin);

/* True when a Sec-WebSocket-Protocol list ("a, b") names protocol. */
bool auth_offers_protocol(const char *list, const char *protocol);

/* 1..max characters of A-Z a-z 0-9 . _ : @ - (user names and device ids). */
bool auth_is_valid_id(const char *id, size_t max);

void auth_token_digest(const char *token, size_t len, unsigned char digest[WSG_TOKEN_DIGEST_LEN]);

#endif
