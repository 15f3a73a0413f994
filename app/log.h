/*
 * Logging: one line per event on stderr, key=value, greppable:
 *   2026-11-24T13:37:00.123Z level=info event=session_open session=... user=alice
 * Callers must never pass a token or key; values from clients go through
 * log_quote so a crafted reason cannot forge a second line.
 */
#ifndef WSGATE_LOG_H
#define WSGATE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);

/*
 * Buffered: lines are kept and written together by log_flush (the server
 * calls it once per loop turn), one write() for many events. Unbuffered (the
 * default): each line is written at once.
 */
void log_set_buffered(bool buffered);
void log_flush(void);
/* Lines dropped because the log could not be written (a full disk, a stuck reader). */
uint64_t log_lines_lost(void);
int log_parse_level(const char *name, enum log_level *level);

/* fmt continues the line after "level=... event=NAME". */
void log_event(enum log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * s (len bytes, may hold anything) as a double-quoted value with \" \\ \n and
 * \xNN escapes for control bytes, and for every byte >= 0x80 unless s is UTF-8.
 */
const char *log_quote(char *out, size_t outlen, const char *s, size_t len);

#endif
