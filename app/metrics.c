/* Prometheus text exposition of the counters. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static const char *const outcome_names[HANDSHAKE_OUTCOME_COUNT] = {
	"admitted",	 "missing_token", "invalid_token",     "origin_not_allowed",	  "invalid_device",
	"at_capacity",	 "shutting_down", "repeat_connect",    "unsupported_subprotocol", "internal_error",
	"token_expired", "draining",	  "per_address_limit",
};

const char *metrics_outcome_name(enum handshake_outcome outcome)
{
	return outcome < HANDSHAKE_OUTCOME_COUNT ? outcome_names[outcome] : "unknown";
}

struct text {
	char *buf;
	size_t len, cap;
	int failed;
};

static void emit(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct text *t, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *buf = realloc(t->buf, cap);
		if (!buf) {
			t->failed = 1;
			return;
		}
		t->buf = buf;
		t->cap = cap;
	}
}

static void counter(struct text *t, const char *name, const char *help, uint64_t value)
{
	emit(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)value);
}

char *metrics_render(const struct metrics *m, size_t sessions_open, size_t *len)
{
	struct text t = { malloc(4096), 0, 4096, 0 };

	if (!t.buf)
		return NULL;
	emit(&t,
	     "# HELP wsgate_sessions_open Admitted sessions now open.\n# TYPE wsgate_sessions_open gauge\n"
	     "wsgate_sessions_open %zu\n",
	     sessions_open);
	emit(&t, "# HELP wsgate_handshakes_total WebSocket handshakes by outcome.\n"
		 "# TYPE wsgate_handshakes_total counter\n");
	for (int i = 0; i < HANDSHAKE_OUTCOME_COUNT; i++)
		emit(&t, "wsgate_handshakes_total{outcome=\"%s\"} %llu\n", outcome_names[i],
		     (unsigned long long)m->handshakes[i]);
	emit(&t, "# HELP wsgate_verdict_queries_total Plain GETs on the WebSocket path answered with the verdict an "
		 "upgrade would get, by that verdict (admitted: 426).\n"
		 "# TYPE wsgate_verdict_queries_total counter\n");
	for (int i = 0; i < HANDSHAKE_OUTCOME_COUNT; i++)
		emit(&t, "wsgate_verdict_queries_total{outcome=\"%s\"} %llu\n", outcome_names[i],
		     (unsigned long long)m->verdict_queries[i]);
	emit(&t, "# HELP wsgate_closes_total Session closes by close code (1006: dropped without a close frame).\n"
		 "# TYPE wsgate_closes_total counter\n");
	for (int code = 0; code < METRICS_CLOSE_CODE_MAX; code++)
		if (m->closes[code])
			emit(&t, "wsgate_closes_total{code=\"%d\"} %llu\n", code, (unsigned long long)m->closes[code]);
	counter(&t, "wsgate_messages_received_total", "Messages received from clients.", m->messages_in);
	counter(&t, "wsgate_messages_sent_total", "Messages sent to clients.", m->messages_out);
	counter(&t, "wsgate_bytes_received_total", "Message payload bytes received from clients.", m->bytes_in);
	counter(&t, "wsgate_bytes_sent_total", "Message payload bytes sent to clients.", m->bytes_out);
	counter(&t, "wsgate_heartbeat_timeouts_total", "Sessions closed with 4100 heartbeat timeout.",
		m->heartbeat_timeouts);
	counter(&t, "wsgate_slow_consumers_total", "Sessions closed with 4109 slow consumer.", m->slow_consumers);
	counter(&t, "wsgate_rate_limited_total", "Client messages refused by the rate limit.", m->rate_limited);
	counter(&t, "wsgate_api_requests_total", "Backend HTTP API requests.", m->api_requests);
	counter(&t, "wsgate_log_lines_lost_total", "Log lines dropped because the log could not be written.",
		log_lines_lost());
	emit(&t,
	     "# HELP wsgate_reloads_total Configuration reloads (SIGHUP, POST /api/reload) by result.\n"
	     "# TYPE wsgate_reloads_total counter\nwsgate_reloads_total{result=\"ok\"} %llu\n"
	     "wsgate_reloads_total{result=\"failed\"} %llu\n",
	     (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed);
	emit(&t,
	     "# HELP wsgate_recoveries_total Subscribes with \"since\" by whether what was missed could be "
	     "replayed.\n# TYPE wsgate_recoveries_total counter\nwsgate_recoveries_total{result=\"recovered\"} %llu\n"
	     "wsgate_recoveries_total{result=\"not_recovered\"} %llu\n",
	     (unsigned long long)m->recoveries[1], (unsigned long long)m->recoveries[0]);
	emit(&t,
	     "# HELP wsgate_history_entries Channel messages kept for recovery.\n# TYPE wsgate_history_entries gauge\n"
	     "wsgate_history_entries %llu\n"
	     "# HELP wsgate_history_bytes Bytes the kept messages and their rings take (buffers shared with "
	     "send queues counted once, here).\n# TYPE wsgate_history_bytes gauge\nwsgate_history_bytes %llu\n"
	     "# HELP wsgate_history_channels Channels with a history.\n# TYPE wsgate_history_channels gauge\n"
	     "wsgate_history_channels %llu\n",
	     (unsigned long long)m->history_entries, (unsigned long long)m->history_bytes,
	     (unsigned long long)m->history_channels);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
