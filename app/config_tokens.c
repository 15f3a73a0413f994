/*
 * The config's tokens: `tokens` or `tokens_file`, each entry's permissions
 * and expiry, and the index by digest a reload moves sessions by. Only the
 * SHA-256 digest of a token is kept, never its text.
 */
#define _GNU_SOURCE /* qsort_r */
#include "config_loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "channel.h"

static int load_globs(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      struct wsg_globs *globs)
{
	const config_setting_t *list = config_setting_get_member(group, name);
	char key[64];

	if (!list)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", prefix, name);
	int count = loader_begin_list(ld, list, key, "an array of names or globs like \"chat.*\"",
				      sizeof(*globs->items), (void **)&globs->items);
	if (count < 0)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *text = loader_list_string(list, i);
		if (!text || !channel_glob_is_valid(text))
			return loader_fail_at(ld, line_of(list),
					      "key '%s.%s' entry %d must be a name or glob: dot-separated segments of "
					      "A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest",
					      prefix, name, i + 1);
		globs->items[i] = strdup(text);
		if (!globs->items[i])
			return loader_fail_at(ld, line_of(list), "out of memory");
		globs->count++;
	}
	return 0;
}

static void free_globs(struct wsg_globs *globs)
{
	for (size_t i = 0; i < globs->count; i++)
		free(globs->items[i]);
	free(globs->items);
}

static bool is_leap_year(long year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static bool parse_digits(const char *p, int n, long *value)
{
	*value = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*value = *value * 10 + (p[i] - '0');
	}
	return true;
}

int config_parse_utc(const char *text, uint64_t *ms)
{
	static const int days_in_month[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long year, month, day, hour, minute, second;
	struct tm tm;

	/* exactly YYYY-MM-DDTHH:MM:SSZ: a time zone other than UTC is a mistake waiting to happen */
	if (strlen(text) != 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
	    text[13] != ':' || text[16] != ':' || (text[19] != 'Z' && text[19] != 'z') ||
	    !parse_digits(text, 4, &year) || !parse_digits(text + 5, 2, &month) || !parse_digits(text + 8, 2, &day) ||
	    !parse_digits(text + 11, 2, &hour) || !parse_digits(text + 14, 2, &minute) ||
	    !parse_digits(text + 17, 2, &second))
		return -1;
	if (year < 1970 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
		return -1;
	if (day > days_in_month[month - 1] + (month == 2 && is_leap_year(year)))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(year - 1900);
	tm.tm_mon = (int)(month - 1);
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)minute;
	tm.tm_sec = (int)second;
	time_t t = timegm(&tm);
	if (t < 0)
		return -1;
	*ms = (uint64_t)t * 1000;
	return 0;
}

static int load_expiry(struct loader *ld, const config_setting_t *entry, const char *prefix, struct wsg_token *t)
{
	const config_setting_t *s = config_setting_get_member(entry, "expires");

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    config_parse_utc(config_setting_get_string(s), &t->expires_ms))
		return loader_fail_at(ld, line_of(s),
				      "key '%s.expires' must be a UTC time like \"2027-01-31T00:00:00Z\" (RFC 3339)",
				      prefix);
	/* 0 means "never": the first second of 1970 expires a millisecond later */
	if (!t->expires_ms)
		t->expires_ms = 1;
	return 0;
}

static int compare_digests(const void *a, const void *b, void *tokens)
{
	const struct wsg_token *t = tokens;

	return memcmp(t[*(const size_t *)a].digest, t[*(const size_t *)b].digest, WSG_TOKEN_DIGEST_LEN);
}

int config_index_tokens(struct loader *ld, struct wsg_config *c)
{
	c->token_order = calloc(c->token_count + 1, sizeof(*c->token_order));
	if (!c->token_order)
		return loader_fail_at(ld, 1, "out of memory");
	for (size_t i = 0; i < c->token_count; i++)
		c->token_order[i] = i;
	qsort_r(c->token_order, c->token_count, sizeof(*c->token_order), compare_digests, c->tokens);
	return 0;
}

const struct wsg_token *config_find_token(const struct wsg_config *c, const unsigned char digest[WSG_TOKEN_DIGEST_LEN])
{
	size_t lo = 0, hi = c->token_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct wsg_token *t = &c->tokens[c->token_order[mid]];
		int cmp = memcmp(digest, t->digest, WSG_TOKEN_DIGEST_LEN);
		if (!cmp)
			return t;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * tokens_file: the token list in a file of its own (`tokens = ( ... );` and
 * nothing else), so operators can manage tokens apart from the server
 * config. It holds secrets: refused when others than its owner may read it.
 * Errors in it name that file and its lines.
 */
int config_load_tokens_file(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "tokens", NULL };
	const config_setting_t *s = config_setting_get_member(root, "tokens_file");
	struct loader tld = *ld;
	struct stat st;
	config_t cfg;
	int rc = -1;

	if (config_setting_get_member(root, "tokens"))
		return loader_fail_at(
			ld, line_of(config_setting_get_member(root, "tokens")),
			"keys 'tokens' and 'tokens_file' exclude each other: keep the tokens in one place");
	if (config_setting_type(s) != CONFIG_TYPE_STRING || !*config_setting_get_string(s))
		return loader_fail_at(ld, line_of(s), "key 'tokens_file' must be a non-empty string");
	c->tokens_file = strdup(config_setting_get_string(s));
	if (!c->tokens_file)
		return loader_fail_at(ld, line_of(s), "out of memory");
	if (loader_resolve_path(ld, s, &c->tokens_file))
		return -1;
	if (stat(c->tokens_file, &st))
		return loader_fail_at(ld, line_of(s), "key 'tokens_file': cannot read '%s': %s", c->tokens_file,
				      strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return loader_fail_at(
			ld, line_of(s),
			"key 'tokens_file': '%s' is readable by others than its owner (mode %04o); chmod 600 it",
			c->tokens_file, (unsigned)(st.st_mode & 07777));
	config_init(&cfg);
	tld.file = c->tokens_file;
	if (!config_read_file(&cfg, c->tokens_file)) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			loader_fail_at(ld, line_of(s), "key 'tokens_file': cannot read '%s': %s", c->tokens_file,
				       strerror(errno));
		else
			loader_fail_at(&tld, config_error_line(&cfg), "%s", config_error_text(&cfg));
		goto out;
	}
	const config_setting_t *troot = config_root_setting(&cfg);
	if (loader_check_known_keys(&tld, troot, NULL, known) || config_load_tokens(&tld, troot, c))
		goto out;
	rc = 0;
out:
	config_destroy(&cfg);
	return rc;
}

static int load_token(struct loader *ld, const config_setting_t *entry, int index, struct wsg_token *t)
{
	static const char *const known[] = { "token", "user", "subscribe", "publish", "send", "expires", NULL };
	const config_setting_t *token, *user;
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "tokens.[%d]", index);
	if (!config_setting_is_group(entry))
		return loader_fail_at(ld, line_of(entry),
				      "key '%s' must be a group { token = \"...\"; user = \"...\"; }", prefix);
	if (loader_check_known_keys(ld, entry, prefix, known))
		return -1;
	token = config_setting_get_member(entry, "token");
	user = config_setting_get_member(entry, "user");
	if (!token || config_setting_type(token) != CONFIG_TYPE_STRING || !*config_setting_get_string(token))
		return loader_fail_at(ld, line_of(token ? token : entry), "key '%s.token' must be a non-empty string",
				      prefix);
	if (strlen(config_setting_get_string(token)) > 4096)
		return loader_fail_at(ld, line_of(token), "key '%s.token' must be at most 4096 bytes", prefix);
	if (!user || config_setting_type(user) != CONFIG_TYPE_STRING ||
	    !auth_is_valid_id(config_setting_get_string(user), WSG_USER_MAX) || !*config_setting_get_string(user))
		return loader_fail_at(ld, line_of(user ? user : entry),
				      "key '%s.user' must be 1 to %d characters of A-Z a-z 0-9 . _ : @ -", prefix,
				      WSG_USER_MAX);
	auth_token_digest(config_setting_get_string(token), strlen(config_setting_get_string(token)), t->digest);
	t->user = strdup(config_setting_get_string(user));
	if (!t->user)
		return loader_fail_at(ld, line_of(user), "out of memory");
	return load_globs(ld, entry, prefix, "subscribe", &t->subscribe) ||
			       load_globs(ld, entry, prefix, "publish", &t->publish) ||
			       load_globs(ld, entry, prefix, "send", &t->send) || load_expiry(ld, entry, prefix, t)
		       ? -1
		       : 0;
}

int config_load_tokens(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	const config_setting_t *list = config_setting_get_member(root, "tokens");

	if (!list)
		return loader_fail_at(ld, 1,
				      "missing required key 'tokens' (a list of { token = \"...\"; user = \"...\"; })");
	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return loader_fail_at(
			ld, line_of(list),
			"key 'tokens' must be a non-empty list ( { token = \"...\"; user = \"...\"; }, ... )");
	int count = config_setting_length(list);
	c->tokens = calloc((size_t)count, sizeof(*c->tokens));
	if (!c->tokens)
		return loader_fail_at(ld, line_of(list), "out of memory");
	for (int i = 0; i < count; i++) {
		const config_setting_t *entry = config_setting_get_elem(list, (unsigned)i);
		c->token_count++; /* counted first so a half-loaded entry is freed too */
		if (load_token(ld, entry, i, &c->tokens[i]))
			return -1;
		for (int j = 0; j < i; j++)
			if (!memcmp(c->tokens[j].digest, c->tokens[i].digest, WSG_TOKEN_DIGEST_LEN))
				return loader_fail_at(ld, line_of(config_setting_get_member(entry, "token")),
						      "key 'tokens.[%d].token' repeats the token of entry %d", i, j);
	}
	return 0;
}

void config_free_tokens(struct wsg_config *c)
{
	for (size_t i = 0; i < c->token_count; i++) {
		free(c->tokens[i].user);
		free_globs(&c->tokens[i].subscribe);
		free_globs(&c->tokens[i].publish);
		free_globs(&c->tokens[i].send);
	}
	free(c->tokens);
	free(c->tokens_file);
	free(c->token_order);
}
