/*
 * Channel names and permission globs. A name is dot-separated segments of
 * A-Z a-z 0-9 _ - (1-128 bytes, no empty segment). In a glob, "*" matches
 * exactly one segment and a final "**" one or more; anything else is literal.
 * User-name globs for direct sends use the same rules.
 */
#ifndef WSGATE_CHANNEL_H
#define WSGATE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#define WSG_CHANNEL_MAX 128

bool channel_name_is_valid(const char *name);
bool channel_glob_is_valid(const char *glob);
bool channel_glob_match(const char *glob, const char *name);
/* True when any of the globs matches; NULL or empty list: nothing is allowed. */
bool channel_globs_allow(char *const *globs, size_t count, const char *name);

#endif
