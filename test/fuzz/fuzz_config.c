/*
 * The config loader and validator. Any file either loads into a config that
 * keeps every documented bound, or fails with one "FILE:LINE: message" whose
 * line is in the file. Never a crash, never a half-valid config.
 *
 * The input is written to wsgate.conf in a private temporary directory. Inputs
 * that could make the loader read other files (libconfig's @include, or
 * listen_tls cert/key and tokens_file paths leaving that directory, such as
 * /dev/zero) are
 * skipped: the config is the operator's, and reading a device is not a parser bug.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "config.h"
#include "fuzz.h"

static char dir[4096], path[4200];

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void cleanup(void)
{
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR"); /* scripts/fuzz.sh: inside build-fuzz/, left there after a crash */

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/wsgate-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/wsgate.conf", dir);
	/* 600: a config holding tokens that others may read is refused (fopen "w" keeps this mode) */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	close(fd);
	atexit(cleanup);
	return 0;
}

/* Over every byte: libconfig does not stop at a NUL. */
static bool is_skipped(const uint8_t *data, size_t size)
{
	bool is_file = memmem(data, size, "listen_tls", 10) || memmem(data, size, "tokens_file", 11), is_path = false;

	for (size_t i = 0; i < size; i++) {
		if (i + 7 <= size && !strncasecmp((const char *)data + i, "include", 7))
			return true;
		is_path |= data[i] == '/' || data[i] == '\\';
	}
	return is_file && is_path;
}

static void check_error(const char *err, const uint8_t *data, size_t size)
{
	size_t dlen = strlen(dir), lines = 1;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	/* the config, or a tokens_file: a name in the harness's directory, where wsgate.conf is the only file */
	FUZZ_ASSERT(!strncmp(err, dir, dlen) && err[dlen] == '/');
	const char *num = strchr(err + dlen, ':');
	FUZZ_ASSERT(num != NULL);
	num++;
	char *end;
	long line = strtol(num, &end, 10);
	FUZZ_ASSERT(end > num && *num != '0' && *num != '-' && *num != '+');
	FUZZ_ASSERT(line >= 1 && (size_t)line <= lines);
	FUZZ_ASSERT(end[0] == ':' && end[1] == ' ' && end[2] != '\0' && end[2] != ' ');
	FUZZ_ASSERT(!strchr(err, '\n')); /* one line for the operator and the log */
}

static void check_globs(const struct wsg_globs *g)
{
	for (size_t i = 0; i < g->count; i++)
		FUZZ_ASSERT(channel_glob_is_valid(g->items[i]));
}

static void check_config(const struct wsg_config *c)
{
	FUZZ_ASSERT(!strcmp(c->file, path));
	FUZZ_ASSERT(c->listen_port >= 1 && c->listen_port <= 65535);
	FUZZ_ASSERT(c->ws_path[0] == '/' && !strpbrk(c->ws_path, "?# \t"));
	FUZZ_ASSERT(c->max_message_bytes >= 16 && c->max_message_bytes <= 16 * 1024 * 1024);
	FUZZ_ASSERT(c->max_queued_bytes >= c->max_message_bytes && c->max_queued_bytes >= c->api_max_body_bytes);
	FUZZ_ASSERT(c->heartbeat_interval_ms >= 100 && c->heartbeat_timeout_ms >= 100);
	FUZZ_ASSERT(c->max_sessions >= 1 && c->messages_per_second >= 1 && c->burst >= 1);
	FUZZ_ASSERT(c->max_subscriptions >= 1);
	FUZZ_ASSERT(c->token_count >= 1);
	for (size_t i = 0; i < c->token_count; i++) {
		FUZZ_ASSERT(auth_is_valid_id(c->tokens[i].user, WSG_USER_MAX));
		check_globs(&c->tokens[i].subscribe);
		check_globs(&c->tokens[i].publish);
		check_globs(&c->tokens[i].send);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERT(memcmp(c->tokens[i].digest, c->tokens[j].digest, WSG_TOKEN_DIGEST_LEN));
	}
	for (size_t i = 0; i < c->origin_count; i++)
		FUZZ_ASSERT(c->origins[i] && c->origins[i][0]);
	for (size_t i = 0; i < c->trusted_proxy_count; i++)
		FUZZ_ASSERT(c->trusted_proxies[i].prefix <=
			    (c->trusted_proxies[i].addr.family == AF_INET ? 32u : 128u));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wsg_config *c = NULL;
	char err[1024]; /* main.c's size */

	if (is_skipped(data, size))
		return 0;
	FILE *f = fopen(path, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f))
		abort();
	memset(err, 0, sizeof(err));
	if (config_load(path, &c, err, sizeof(err))) {
		FUZZ_ASSERT(c == NULL);
		check_error(err, data, size);
	} else {
		FUZZ_ASSERT(c != NULL);
		check_config(c);
		config_free(c);
	}
	return 0;
}
