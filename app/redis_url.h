/*
 * Parses the cluster's Redis address, redis://[[user]:password@]host[:port][/db].
 * Pure, for the config loader and its tests. The password is kept only in
 * the parsed struct: nothing here formats it for a log.
 */
#ifndef WSGATE_REDIS_URL_H
#define WSGATE_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_HOST_MAX 255
#define REDIS_URL_AUTH_MAX 512

struct redis_url {
	char host[REDIS_URL_HOST_MAX + 1]; /* a name or an address; [::1] is stored without brackets */
	int port;			   /* 6379 when absent */
	int db;				   /* 0 when absent; 0-15 */
	char user[REDIS_URL_AUTH_MAX + 1]; /* "" when absent (AUTH password) */
	char password[REDIS_URL_AUTH_MAX + 1];
	int has_password;
};

/*
 * 0 on success; -1 with why holding what is wrong (never the password).
 * rediss:// (TLS) is refused: Debian's hiredis 0.14 has no TLS.
 */
int redis_url_parse(const char *text, struct redis_url *out, char *why, size_t whylen);

/* host:port/db for logs: never the user or password. */
void redis_url_describe(const struct redis_url *url, char *out, size_t len);

#endif
