/*
 * Key=value event log on stderr. Lines are built whole and written with
 * write(2), whole lines only, so they never interleave mid-line. A log that
 * cannot be written (a closed pipe, a full disk) never stops the server.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static enum log_level min_level = LOG_INFO;
static bool is_buffered;
static char pending[64 * 1024];
static size_t pending_len;
static char stamp[32];
static time_t stamp_sec = -1;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	min_level = level;
}

int log_parse_level(const char *name, enum log_level *level)
{
	for (int i = 0; i <= LOG_ERROR; i++) {
		if (!strcmp(name, level_names[i])) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_buffered(bool buffered)
{
	log_flush();
	is_buffered = buffered;
}

void log_flush(void)
{
	size_t done = 0;

	while (done < pending_len) {
		ssize_t n = write(STDERR_FILENO, pending + done, pending_len - done);
		if (n <= 0)
			break; /* unwritable: these lines are lost, the server goes on */
		done += (size_t)n;
	}
	pending_len = 0;
}

static void emit(const char *line, size_t len)
{
	if (len > sizeof(pending))
		len = sizeof(pending);
	if (pending_len + len > sizeof(pending))
		log_flush();
	memcpy(pending + pending_len, line, len);
	pending_len += len;
	if (!is_buffered)
		log_flush();
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
	/* the date and time change once a second; formatting them every line is waste */
	if (tv.tv_sec != stamp_sec) {
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		stamp_sec = tv.tv_sec;
	}
	n = snprintf(line, sizeof(line), "%s.%03ldZ level=%s event=%s ", stamp, (long)tv.tv_usec / 1000,
		     level_names[level], event);
	va_start(ap, fmt);
	if ((size_t)n < sizeof(line) - 1)
		n += vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
	va_end(ap);
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2; /* cut: the line still ends */
	line[n++] = '\n';
	emit(line, (size_t)n);
}

const char *log_quote(char *out, size_t outlen, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	/* bytes that are not UTF-8 (a client's close reason, say) are escaped, never passed on */
	bool is_utf8 = util_is_valid_utf8((const unsigned char *)s, len);

	if (outlen < 3)
		return "\"\"";
	out[o++] = '"';
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !is_utf8)) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
