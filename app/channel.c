/*
 * Channel-name validation and glob matching over dot-separated segments.
 * Linear in the length of the name; no backtracking.
 */
#include "channel.h"

#include <string.h>

static bool is_segment_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '@' || c == ':';
}

/* Segments of is_segment_char, or (globs) a whole "*" / final "**" segment. */
static bool is_valid(const char *s, bool is_glob)
{
	size_t len = strlen(s);

	if (!len || len > WSG_CHANNEL_MAX)
		return false;
	const char *seg = s;
	for (;;) {
		const char *end = strchr(seg, '.');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if (!n)
			return false;
		if (is_glob && n == 1 && seg[0] == '*') {
			/* one whole segment */
		} else if (is_glob && n == 2 && !memcmp(seg, "**", 2)) {
			if (end)
				return false; /* "**" only at the end */
		} else {
			for (size_t i = 0; i < n; i++)
				if (!is_segment_char(seg[i]))
					return false;
		}
		if (!end)
			return true;
		seg = end + 1;
	}
}

bool channel_name_is_valid(const char *name)
{
	return is_valid(name, false);
}

bool channel_glob_is_valid(const char *glob)
{
	return is_valid(glob, true);
}

bool channel_glob_match(const char *glob, const char *name)
{
	for (;;) {
		const char *gend = strchr(glob, '.'), *nend = strchr(name, '.');
		size_t gn = gend ? (size_t)(gend - glob) : strlen(glob);
		size_t nn = nend ? (size_t)(nend - name) : strlen(name);

		if (gn == 2 && !memcmp(glob, "**", 2))
			return nn > 0; /* the rest of the name, at least one segment */
		if (!(gn == 1 && glob[0] == '*') && (gn != nn || memcmp(glob, name, gn)))
			return false;
		if (!gend || !nend)
			return !gend && !nend;
		glob = gend + 1;
		name = nend + 1;
	}
}

bool channel_globs_allow(char *const *globs, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (channel_glob_match(globs[i], name))
			return true;
	return false;
}
