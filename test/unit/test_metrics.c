/* metrics: the Prometheus text exposition. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_render_counts(void)
{
	struct metrics m;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.handshakes[HANDSHAKE_ADMITTED] = 3;
	m.handshakes[HANDSHAKE_INVALID_TOKEN] = 2;
	m.verdict_queries[HANDSHAKE_INVALID_DEVICE] = 5;
	metrics_count_close(&m, 4001);
	metrics_count_close(&m, 4001);
	metrics_count_close(&m, 99999); /* out of range: ignored, never a crash */
	m.slow_consumers = 1;
	char *text = metrics_render(&m, 7, &len);
	if (!CHECK(text != NULL))
		return;
	CHECK_EQ_INT(len, strlen(text));
	CHECK(strstr(text, "\nwsgate_sessions_open 7\n") != NULL);
	CHECK(strstr(text, "\nwsgate_handshakes_total{outcome=\"admitted\"} 3\n") != NULL);
	CHECK(strstr(text, "\nwsgate_handshakes_total{outcome=\"invalid_token\"} 2\n") != NULL);
	CHECK(strstr(text, "\nwsgate_handshakes_total{outcome=\"repeat_connect\"} 0\n") != NULL);
	CHECK(strstr(text, "\nwsgate_closes_total{code=\"4001\"} 2\n") != NULL);
	CHECK(strstr(text, "\nwsgate_verdict_queries_total{outcome=\"invalid_device\"} 5\n") != NULL);
	CHECK(strstr(text, "\nwsgate_verdict_queries_total{outcome=\"admitted\"} 0\n") != NULL);
	CHECK(strstr(text, "# TYPE wsgate_verdict_queries_total counter\n") != NULL);
	CHECK(strstr(text, "code=\"1000\"") == NULL); /* zero close counts are not listed */
	CHECK(strstr(text, "\nwsgate_slow_consumers_total 1\n") != NULL);
	CHECK(strstr(text, "# TYPE wsgate_messages_sent_total counter\n") != NULL);
	CHECK(strstr(text, "\nwsgate_reloads_total{result=\"ok\"} 0\n") != NULL);
	CHECK(strstr(text, "\nwsgate_handshakes_total{outcome=\"token_expired\"} 0\n") != NULL);
	CHECK(strstr(text, "\nwsgate_handshakes_total{outcome=\"draining\"} 0\n") != NULL);
	free(text);
	m.reloads_ok = 4;
	m.reloads_failed = 3;
	text = metrics_render(&m, 0, &len);
	if (!CHECK(text != NULL))
		return;
	CHECK(strstr(text, "\nwsgate_reloads_total{result=\"ok\"} 4\n") != NULL);
	CHECK(strstr(text, "\nwsgate_reloads_total{result=\"failed\"} 3\n") != NULL);
	free(text);
}

static void test_outcome_names(void)
{
	CHECK_EQ_STR(metrics_outcome_name(HANDSHAKE_ORIGIN_NOT_ALLOWED), "origin_not_allowed");
	CHECK_EQ_STR(metrics_outcome_name(HANDSHAKE_OUTCOME_COUNT), "unknown");
}

int main(void)
{
	RUN(test_render_counts);
	RUN(test_outcome_names);
	return check_summary();
}
