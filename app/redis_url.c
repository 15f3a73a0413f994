/*
 * redis:// URLs (the IANA scheme: redis://[[user]:password@]host[:port][/db]).
 * Percent-escapes are decoded in the user and password only. Never prints a
 * password, even in an error.
 */
#include "redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX in [s, s+len) into out; -1 on a bad escape or when it does not fit. */
static int decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

static int fail(char *why, size_t whylen, const char *text)
{
	snprintf(why, whylen, "%s", text);
	return -1;
}

static int parse_number(const char *s, size_t len, long min, long max, int *out)
{
	long v = 0;

	if (!len || len > 6)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

int redis_url_parse(const char *text, struct redis_url *out, char *why, size_t whylen)
{
	static const char scheme[] = "redis://";
	const char *p, *at, *hostend, *end;

	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (!strncmp(text, "rediss://", 9))
		return fail(why, whylen,
			    "rediss:// (TLS to Redis) is not supported: Debian's hiredis 0.14 has no TLS; "
			    "reach Redis over loopback or a private network, or through a TLS tunnel (stunnel)");
	if (strncmp(text, scheme, sizeof(scheme) - 1))
		return fail(why, whylen, "must start with redis://");
	p = text + sizeof(scheme) - 1;
	end = p + strcspn(p, "/?#");
	if (*end == '?' || *end == '#' || strchr(end, '?') || strchr(end, '#'))
		return fail(why, whylen, "must not have a query or fragment");
	/* the last '@' before the path: a password may hold '@' only escaped, but be lenient */
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (!colon)
			return fail(why, whylen, "credentials must be written :password@ or user:password@");
		if (decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) ||
		    decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password)))
			return fail(why, whylen, "has an invalid or over-long user or password (check its %-escapes)");
		if (!out->password[0])
			return fail(why, whylen, "has an empty password");
		out->has_password = 1;
		p = at + 1;
	}
	if (*p == '[') {
		hostend = memchr(p, ']', (size_t)(end - p));
		if (!hostend || hostend == p + 1)
			return fail(why, whylen, "has an unterminated [IPv6] host");
		if ((size_t)(hostend - p - 1) > REDIS_URL_HOST_MAX)
			return fail(why, whylen, "has an over-long host");
		memcpy(out->host, p + 1, (size_t)(hostend - p - 1));
		p = hostend + 1;
		if (p < end && *p != ':')
			return fail(why, whylen, "has junk after the [IPv6] host");
	} else {
		hostend = memchr(p, ':', (size_t)(end - p));
		if (!hostend)
			hostend = end;
		if (hostend == p)
			return fail(why, whylen, "has no host");
		if ((size_t)(hostend - p) > REDIS_URL_HOST_MAX)
			return fail(why, whylen, "has an over-long host");
		memcpy(out->host, p, (size_t)(hostend - p));
		p = hostend;
	}
	for (const char *h = out->host; *h; h++)
		if (*h == ' ' || *h == '@' || *h == '/')
			return fail(why, whylen, "has an invalid host");
	if (p < end && *p == ':' && parse_number(p + 1, (size_t)(end - p - 1), 1, 65535, &out->port))
		return fail(why, whylen, "must have a port from 1 to 65535");
	if (*end == '/' && end[1] && parse_number(end + 1, strlen(end + 1), 0, 15, &out->db))
		return fail(why, whylen, "must have a database number from 0 to 15 after the '/'");
	return 0;
}

void redis_url_describe(const struct redis_url *url, char *out, size_t len)
{
	snprintf(out, len, strchr(url->host, ':') ? "[%s]:%d/%d%s" : "%s:%d/%d%s", url->host, url->port, url->db,
		 url->has_password ? " auth=yes" : "");
}
