/*
 * Counters for /metrics, rendered in the Prometheus text format. Plain
 * increments on the service thread; nothing here allocates per event.
 */
#ifndef WSGATE_METRICS_H
#define WSGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum handshake_outcome {
	HANDSHAKE_ADMITTED,
	HANDSHAKE_MISSING_TOKEN,
	HANDSHAKE_INVALID_TOKEN,
	HANDSHAKE_ORIGIN_NOT_ALLOWED,
	HANDSHAKE_INVALID_DEVICE,
	HANDSHAKE_AT_CAPACITY,
	HANDSHAKE_SHUTTING_DOWN,
	HANDSHAKE_REPEAT_CONNECT,
	HANDSHAKE_UNSUPPORTED_SUBPROTOCOL,
	HANDSHAKE_INTERNAL_ERROR, /* out of memory while admitting */
	HANDSHAKE_TOKEN_EXPIRED,
	HANDSHAKE_DRAINING,
	HANDSHAKE_PER_ADDRESS_LIMIT, /* limits.max_per_ip */
	HANDSHAKE_OUTCOME_COUNT
};

#define METRICS_CLOSE_CODE_MAX 5000

struct metrics {
	uint64_t handshakes[HANDSHAKE_OUTCOME_COUNT];
	/* plain GETs on websocket.path asking what an upgrade would get, by that verdict */
	uint64_t verdict_queries[HANDSHAKE_OUTCOME_COUNT];
	uint64_t closes[METRICS_CLOSE_CODE_MAX]; /* by close code; 1006 for drops */
	uint64_t messages_in, messages_out;
	uint64_t bytes_in, bytes_out;
	uint64_t heartbeat_timeouts;
	uint64_t slow_consumers;
	uint64_t rate_limited;
	uint64_t api_requests;
	uint64_t reloads_ok, reloads_failed; /* SIGHUP and POST /api/reload */
	uint64_t recoveries[2];		     /* subscribes with "since": [0] not recovered, [1] recovered */
	/* gauges, copied from the router's history stats when rendered */
	uint64_t history_entries, history_bytes, history_channels;
};

const char *metrics_outcome_name(enum handshake_outcome outcome);

static inline void metrics_count_close(struct metrics *m, int code)
{
	if (code >= 0 && code < METRICS_CLOSE_CODE_MAX)
		m->closes[code]++;
}

/* The exposition text (malloc'd), with the gauge of open sessions. */
char *metrics_render(const struct metrics *m, size_t sessions_open, size_t *len);

#endif
