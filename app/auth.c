/*
 * Handshake admission. Tokens are matched by SHA-256 digest with
 * CRYPTO_memcmp over every entry, so neither the match position nor the
 * token's length shows in the timing. Never logs or keeps a token.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "closecode.h"

void auth_token_digest(const char *token, size_t len, unsigned char digest[WSG_TOKEN_DIGEST_LEN])
{
	SHA256((const unsigned char *)token, len, digest);
}

static const struct wsg_token *find_token(const struct wsg_config *config, const char *token)
{
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];
	const struct wsg_token *found = NULL;

	auth_token_digest(token, strlen(token), digest);
	for (size_t i = 0; i < config->token_count; i++) {
		/* no early exit: the loop costs the same wherever the match is */
		bool equal = !CRYPTO_memcmp(digest, config->tokens[i].digest, WSG_TOKEN_DIGEST_LEN);
		if (equal)
			found = &config->tokens[i];
	}
	return found;
}

bool auth_is_origin_allowed(const struct wsg_config *config, const char *origin)
{
	/* No Origin header: not a browser, so no cross-site hijacking to guard against. */
	if (!config->origins || !origin)
		return true;
	for (size_t i = 0; i < config->origin_count; i++)
		if (!strcasecmp(origin, config->origins[i]))
			return true;
	return false;
}

bool auth_is_valid_id(const char *id, size_t max)
{
	size_t n = 0;

	if (!*id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '_' || c == ':' || c == '@' || c == '-';
		if (!ok || n >= max)
			return false;
	}
	return true;
}

void auth_refuse(struct auth_verdict *out, enum handshake_outcome outcome, int code, const char *reason)
{
	const struct wsg_close_info *info = closecode_find(code);

	out->token = NULL;
	out->outcome = outcome;
	out->close_code = code;
	out->reason = reason ? reason : info ? info->reason : "refused";
	out->http_status = info ? info->http_status : 403;
}

void auth_decide(const struct wsg_config *config, const struct auth_request *req, struct auth_verdict *out)
{
	if (!auth_is_origin_allowed(config, req->origin)) {
		auth_refuse(out, HANDSHAKE_ORIGIN_NOT_ALLOWED, WSG_CLOSE_FORBIDDEN, "origin not allowed");
		return;
	}
	if (!req->token || !*req->token) {
		auth_refuse(out, HANDSHAKE_MISSING_TOKEN, WSG_CLOSE_FORBIDDEN, "missing token");
		return;
	}
	const struct wsg_token *token = find_token(config, req->token);
	if (!token) {
		auth_refuse(out, HANDSHAKE_INVALID_TOKEN, WSG_CLOSE_FORBIDDEN, "invalid token");
		return;
	}
	if (token->expires_ms && req->now_ms >= token->expires_ms) {
		auth_refuse(out, HANDSHAKE_TOKEN_EXPIRED, WSG_CLOSE_FORBIDDEN, "token expired");
		return;
	}
	/* "?device=" with no value is the same as no device */
	if (req->device && *req->device && !auth_is_valid_id(req->device, WSG_DEVICE_MAX)) {
		auth_refuse(out, HANDSHAKE_INVALID_DEVICE, WSG_CLOSE_BAD_REQUEST, "invalid device id");
		return;
	}
	out->token = token;
	out->outcome = HANDSHAKE_ADMITTED;
	out->close_code = 0;
	out->reason = NULL;
	out->http_status = 0;
}

bool auth_offers_protocol(const char *list, const char *protocol)
{
	size_t want = strlen(protocol);

	while (*list) {
		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		const char *end = list;
		while (*end && *end != ',' && *end != ' ' && *end != '\t')
			end++;
		if ((size_t)(end - list) == want && !memcmp(list, protocol, want))
			return true;
		list = end;
	}
	return false;
}

const char *auth_bearer_token(const char *authorization)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7))
		return NULL;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return authorization;
}
