/*
 * Channel names and globs against a reference written from channel.h's rules:
 * 1-128 bytes of dot-separated non-empty segments of A-Z a-z 0-9 _ - @ :; in a
 * glob "*" is one whole segment and a final "**" one or more segments.
 * Input: GLOB '\n' NAME.
 */
#include "channel.h"
#include "fuzz.h"

#define MAX_SEGMENTS (WSG_CHANNEL_MAX / 2 + 1)

struct segs {
	const char *s[MAX_SEGMENTS];
	size_t len[MAX_SEGMENTS];
	size_t count;
};

static bool split(const char *text, struct segs *out)
{
	size_t len = strlen(text), start = 0;

	out->count = 0;
	if (!len || len > WSG_CHANNEL_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '.')
			continue;
		if (i == start || out->count == MAX_SEGMENTS)
			return false;
		out->s[out->count] = text + start;
		out->len[out->count++] = i - start;
		start = i + 1;
	}
	return true;
}

static bool is_plain(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '@' || c == ':'))
			return false;
	}
	return true;
}

static bool is_star(const struct segs *g, size_t i)
{
	return g->len[i] == 1 && g->s[i][0] == '*';
}

static bool is_double_star(const struct segs *g, size_t i)
{
	return g->len[i] == 2 && !memcmp(g->s[i], "**", 2);
}

static bool ref_name_valid(const char *name)
{
	struct segs n;

	if (!split(name, &n))
		return false;
	for (size_t i = 0; i < n.count; i++)
		if (!is_plain(n.s[i], n.len[i]))
			return false;
	return true;
}

static bool ref_glob_valid(const char *glob)
{
	struct segs g;

	if (!split(glob, &g))
		return false;
	for (size_t i = 0; i < g.count; i++) {
		if (is_star(&g, i) || (is_double_star(&g, i) && i == g.count - 1))
			continue;
		if (!is_plain(g.s[i], g.len[i]))
			return false;
	}
	return true;
}

/* Only for a valid glob and a valid name. */
static bool ref_match(const char *glob, const char *name)
{
	struct segs g, n;

	split(glob, &g);
	split(name, &n);
	for (size_t i = 0; i < g.count; i++) {
		if (is_double_star(&g, i))
			return n.count > i;
		if (i >= n.count)
			return false;
		if (!is_star(&g, i) && (g.len[i] != n.len[i] || memcmp(g.s[i], n.s[i], g.len[i])))
			return false;
	}
	return g.count == n.count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[2];
	char *buf = fuzz_split(data, size, f, 2);
	const char *glob = f[0], *name = f[1] ? f[1] : f[0];

	bool glob_ok = channel_glob_is_valid(glob), name_ok = channel_name_is_valid(name);
	FUZZ_ASSERT(glob_ok == ref_glob_valid(glob));
	FUZZ_ASSERT(name_ok == ref_name_valid(name));
	FUZZ_ASSERT(channel_name_is_valid(glob) == ref_name_valid(glob));
	bool match = channel_glob_match(glob, name); /* any input: must not crash */
	if (glob_ok && name_ok) {
		FUZZ_ASSERT(match == ref_match(glob, name));
		char *const globs[] = { (char *)glob };
		FUZZ_ASSERT(channel_globs_allow(globs, 1, name) == match);
	}
	if (name_ok) {
		char *const all[] = { "**" };
		FUZZ_ASSERT(channel_glob_match(name, name)); /* a name is a glob matching itself */
		FUZZ_ASSERT(channel_globs_allow(all, 1, name));
		FUZZ_ASSERT(!channel_globs_allow(NULL, 0, name));
	}
	free(buf);
	return 0;
}
