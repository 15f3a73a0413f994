/*
 * The close-code table. Keep it in step with the README's table: a unit test
 * compares the two.
 */
#include "closecode.h"

#include "util.h"

static const struct wsg_close_info close_table[] = {
	{ WSG_CLOSE_NORMAL, "normal closure", WSG_ADVICE_DO_NOT_RECONNECT, 0, "the session ended as asked" },
	{ WSG_CLOSE_SHUTDOWN, "server shutting down", WSG_ADVICE_RECONNECT_BACKOFF, 503,
	  "the server is stopping (SIGTERM/SIGINT)" },
	{ WSG_CLOSE_PROTOCOL_ERROR, "protocol error", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "the client broke RFC 6455 framing (bad opcode, bad continuation)" },
	{ WSG_CLOSE_UNSUPPORTED_DATA, "binary messages not accepted", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "the client sent a binary message; wsgate speaks JSON text" },
	{ WSG_CLOSE_INVALID_UTF8, "invalid UTF-8", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "a text message was not valid UTF-8" },
	{ WSG_CLOSE_MESSAGE_TOO_BIG, "message too big", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "a message exceeded websocket.max_message_bytes" },
	{ WSG_CLOSE_INTERNAL_ERROR, "internal error", WSG_ADVICE_RECONNECT_BACKOFF, 0,
	  "the server could not go on with the session (out of memory)" },
	{ WSG_CLOSE_AT_CAPACITY, "server at capacity", WSG_ADVICE_RECONNECT_BACKOFF, 503,
	  "sessions.max sessions are open, or the server is draining (reason \"server draining\")" },
	{ WSG_CLOSE_BAD_REQUEST, "bad request", WSG_ADVICE_DO_NOT_RECONNECT, 400,
	  "the handshake was malformed (for example an invalid device id)" },
	{ WSG_CLOSE_REPEAT_CONNECT, "repeat connect channel", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "this user and device already have a session (on_repeat = reject-new)" },
	{ WSG_CLOSE_REPLACED, "replaced by new connection", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "a newer session for this user and device took over (on_repeat = replace-old)" },
	{ WSG_CLOSE_FORBIDDEN, "forbidden", WSG_ADVICE_DO_NOT_RECONNECT, 403,
	  "missing token, invalid token, token expired or origin not allowed (the reason says which)" },
	{ WSG_CLOSE_TOKEN_REVOKED, "token revoked", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "the session's token was removed by a reload, or its expires time passed (reason \"token expired\")" },
	{ WSG_CLOSE_DISCONNECTED, "disconnected by the application", WSG_ADVICE_DO_NOT_RECONNECT, 0,
	  "the backend closed the session (POST /api/disconnect; it may send any 4000-4999 code)" },
	{ WSG_CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout", WSG_ADVICE_RECONNECT_BACKOFF, 0,
	  "nothing arrived for heartbeat.interval_ms + heartbeat.timeout_ms" },
	{ WSG_CLOSE_RATE_LIMITED, "rate limited", WSG_ADVICE_RECONNECT_BACKOFF, 0,
	  "the client kept sending past limits.messages_per_second after rate_limited errors" },
	{ WSG_CLOSE_SLOW_CONSUMER, "slow consumer", WSG_ADVICE_RECONNECT_BACKOFF, 0,
	  "the client read too slowly: its queue passed limits.max_queued_bytes" },
	{ WSG_CLOSE_DRAINING, "server draining, reconnect", WSG_ADVICE_RECONNECT_NOW, 0,
	  "the server is draining for a restart (SIGUSR1, POST /api/drain); another process takes the reconnect" },
};

const struct wsg_close_info *closecode_find(int code)
{
	for (size_t i = 0; i < sizeof(close_table) / sizeof(close_table[0]); i++)
		if (close_table[i].code == code)
			return &close_table[i];
	return NULL;
}

const struct wsg_close_info *closecode_table(size_t *count)
{
	*count = sizeof(close_table) / sizeof(close_table[0]);
	return close_table;
}

const char *closecode_advice_name(enum wsg_close_advice advice)
{
	switch (advice) {
	case WSG_ADVICE_DO_NOT_RECONNECT:
		return "do not reconnect unchanged";
	case WSG_ADVICE_RECONNECT_BACKOFF:
		return "reconnect with backoff";
	case WSG_ADVICE_RECONNECT_NOW:
		return "reconnect at once";
	}
	return "unknown";
}

enum wsg_close_advice closecode_advice_for(int code)
{
	const struct wsg_close_info *info = closecode_find(code);

	if (info)
		return info->advice;
	if (code >= 4100 && code <= 4199)
		return WSG_ADVICE_RECONNECT_BACKOFF;
	if (code >= 4200 && code <= 4299)
		return WSG_ADVICE_RECONNECT_NOW;
	return WSG_ADVICE_DO_NOT_RECONNECT;
}

bool closecode_is_sendable(int code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

size_t closecode_reason_len(const char *reason, size_t len)
{
	return util_utf8_prefix_len(reason, len, WSG_CLOSE_REASON_MAX);
}
