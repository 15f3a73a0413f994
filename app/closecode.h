/*
 * The one table of close codes wsgate sends: code -> reason -> client advice.
 * Every server-initiated close takes its code and default reason from here, so
 * the README, the logs and (later) the browser client agree on what each means.
 */
#ifndef WSGATE_CLOSECODE_H
#define WSGATE_CLOSECODE_H

#include <stdbool.h>
#include <stddef.h>

enum wsg_close_code {
	WSG_CLOSE_NORMAL = 1000,
	WSG_CLOSE_SHUTDOWN = 1001,
	WSG_CLOSE_PROTOCOL_ERROR = 1002,
	WSG_CLOSE_UNSUPPORTED_DATA = 1003,
	WSG_CLOSE_INVALID_UTF8 = 1007,
	WSG_CLOSE_MESSAGE_TOO_BIG = 1009,
	WSG_CLOSE_INTERNAL_ERROR = 1011,
	WSG_CLOSE_AT_CAPACITY = 1013,
	WSG_CLOSE_BAD_REQUEST = 4000,
	WSG_CLOSE_REPEAT_CONNECT = 4001,
	WSG_CLOSE_REPLACED = 4002,
	WSG_CLOSE_FORBIDDEN = 4003,
	WSG_CLOSE_TOKEN_REVOKED = 4004,
	WSG_CLOSE_DISCONNECTED = 4005,
	WSG_CLOSE_HEARTBEAT_TIMEOUT = 4100,
	WSG_CLOSE_RATE_LIMITED = 4108,
	WSG_CLOSE_SLOW_CONSUMER = 4109,
	WSG_CLOSE_DRAINING = 4200,
};

/* What a client should do after a close: 4000-4099, 4100-4199, 4200-4299. */
enum wsg_close_advice {
	WSG_ADVICE_DO_NOT_RECONNECT,
	WSG_ADVICE_RECONNECT_BACKOFF,
	WSG_ADVICE_RECONNECT_NOW,
};

/* RFC 6455 5.5: a control frame payload is at most 125 bytes, 2 of them the code. */
#define WSG_CLOSE_REASON_MAX 123

struct wsg_close_info {
	int code;
	const char *reason; /* default reason text sent on the wire */
	enum wsg_close_advice advice;
	int http_status;     /* status when refused before the upgrade, 0 if never */
	const char *meaning; /* one line for operators and the README */
};

/* The entry for code, or NULL when wsgate never sends it. */
const struct wsg_close_info *closecode_find(int code);

/* The whole table, for listings (README check, future /api/close-codes). */
const struct wsg_close_info *closecode_table(size_t *count);

const char *closecode_advice_name(enum wsg_close_advice advice);

/* Advice by range for any application code, also ones not in the table. */
enum wsg_close_advice closecode_advice_for(int code);

/* RFC 6455 7.4: 1005, 1006 and 1015 are reserved and must never be sent. */
bool closecode_is_sendable(int code);

/*
 * Length of reason cut to at most WSG_CLOSE_REASON_MAX bytes on a UTF-8
 * character boundary (invalid bytes end the reason).
 */
size_t closecode_reason_len(const char *reason, size_t len);

#endif
