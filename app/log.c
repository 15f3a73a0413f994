/*
 * Key=value event log on stderr. Lines are built whole in one buffer and
 * written with write(2) in batches. A log that cannot be written (a full
 * disk, a pipe nobody reads) never stops the server: lines wait while the
 * buffer lasts, then are dropped and counted, and the outage is said once.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>

#include "util.h"

static enum log_level min_level = LOG_INFO;
static bool is_buffered;
static char pending[64 * 1024];
static bool is_failing; /* the last flush could not write everything */
static uint64_t lines_lost;
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
	struct stat st;

	log_flush();
	is_buffered = buffered;
	/*
	 * A pipe or socket nobody reads (a stuck journald, a paused pager) must
	 * not stop the server in write(): lines wait in pending, then are dropped.
	 * A terminal is shared with the shell, and files never block: left alone.
	 */
	if (buffered && !fstat(STDERR_FILENO, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		fcntl(STDERR_FILENO, F_SETFL, fcntl(STDERR_FILENO, F_GETFL) | O_NONBLOCK);
}

uint64_t log_lines_lost(void)
{
	return lines_lost;
}

static uint64_t count_lines(const char *s, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* The log could not be written: said once per outage, where it may still be seen. */
static void report_outage(int error)
{
	if (is_failing)
		return;
	is_failing = true;
	syslog(LOG_WARNING,
	       "wsgate: cannot write its log to stderr (%s); lines are dropped and counted in "
	       "/metrics as wsgate_log_lines_lost_total",
	       strerror(error));
}

static size_t write_some(const char *s, size_t len, int *error)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(STDERR_FILENO, s + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		*error = n < 0 ? errno : EIO;
		break;
	}
	return done;
}

void log_flush(void)
{
	int error = 0;
	size_t done;

	if (!pending_len)
		return;
	done = write_some(pending, pending_len, &error);
	if (done == pending_len) {
		pending_len = 0;
		if (is_failing) {
			char note[128];
			int n = snprintf(note, sizeof(note), "level=warn event=log_resumed lines_lost=%llu\n",
					 (unsigned long long)lines_lost);
			is_failing = false;
			write_some(note, (size_t)n, &error);
		}
		return;
	}
	/* what was written (maybe part of a line) is gone; the rest waits for the next flush */
	memmove(pending, pending + done, pending_len - done);
	pending_len -= done;
	report_outage(error);
	if (error != EAGAIN && error != EWOULDBLOCK) {
		/* a full disk or a closed pipe will not take them later either */
		lines_lost += count_lines(pending, pending_len);
		pending_len = 0;
	}
}

static void emit(const char *line, size_t len)
{
	if (len > sizeof(pending))
		len = sizeof(pending);
	if (pending_len + len > sizeof(pending))
		log_flush();
	if (pending_len + len > sizeof(pending)) {
		/* still full: the reader is stuck; this line is the one dropped */
		lines_lost++;
		return;
	}
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
