/*
 * The handshake arguments: Authorization, Sec-WebSocket-Protocol, the token,
 * device and Origin against a small fixed config, and the client address
 * through X-Forwarded-For / X-Real-IP with trusted proxies. Each verdict is
 * compared with a reference written from the headers' documented rules.
 *
 * Input: two flags bytes, then '\n'-separated fields: token, device, origin,
 * authorization, protocol list, peer, X-Forwarded-For, X-Real-IP, network.
 * The token field is also read as a token's "expires" time (RFC 3339 UTC).
 */
#define _GNU_SOURCE
#define FUZZ_WANTS_MEMFD
#include <arpa/inet.h>
#include <strings.h>

#include "auth.h"
#include "closecode.h"
#include "fuzz.h"
#include "netaddr.h"

static const char config_text[] =
	"tokens = ( { token = \"alice-secret\"; user = \"alice\"; },\n"
	"           { token = \"bob-secret\"; user = \"bob\"; expires = \"2030-01-01T00:00:00Z\"; } );\n"
	"auth = { origins = [ \"https://app.example.com\", \"http://localhost:8080\" ]; };\n"
	"proxy = { trusted = [ \"127.0.0.1\", \"10.0.0.0/8\", \"::1\", \"fd00::/8\" ]; };\n";
static const char *const origins[] = { "https://app.example.com", "http://localhost:8080" };
static const char *const tokens[][2] = { { "alice-secret", "alice" }, { "bob-secret", "bob" } };
static const uint64_t bob_expires_ms = 1893456000000ULL; /* 2030-01-01T00:00:00Z */
static struct wsg_config *config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64], err[1024];
	int fd = fuzz_memfd(path, sizeof(path));

	(void)argc;
	(void)argv;
	fuzz_memfd_write(fd, config_text, sizeof(config_text) - 1);
	if (config_load(path, &config, err, sizeof(err))) {
		fprintf(stderr, "fuzz_handshake: the fixed config does not load: %s\n", err);
		abort();
	}
	close(fd);
	return 0;
}

static bool ref_is_valid_id(const char *id, size_t max)
{
	size_t n = strlen(id);

	if (n < 1 || n > max)
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-") == n;
}

static void check_ids(const char *id)
{
	for (size_t max = 0; max <= 65; max += 13)
		FUZZ_ASSERT(auth_is_valid_id(id, max) == ref_is_valid_id(id, max));
}

static void check_bearer(const char *authorization)
{
	const char *token = auth_bearer_token(authorization);

	FUZZ_ASSERT(!token == !!strncasecmp(authorization, "Bearer ", 7));
	if (token) {
		FUZZ_ASSERT(token >= authorization + 7 && token <= authorization + strlen(authorization));
		FUZZ_ASSERT(*token != ' ');
		for (const char *p = authorization + 7; p < token; p++)
			FUZZ_ASSERT(*p == ' ');
	}
	FUZZ_ASSERT(auth_bearer_token(NULL) == NULL);
}

/* A list item: the text between separators (comma, space, tab). */
static bool ref_offers(const char *list, const char *protocol)
{
	size_t want = strlen(protocol);

	for (const char *p = list; *p;) {
		size_t skip = strspn(p, ", \t");
		p += skip;
		size_t n = strcspn(p, ", \t");
		if (n && n == want && !memcmp(p, protocol, n))
			return true;
		p += n;
	}
	return false;
}

static void check_protocols(const char *list, const char *fuzzed)
{
	FUZZ_ASSERT(auth_offers_protocol(list, "wsgate.v1") == ref_offers(list, "wsgate.v1"));
	if (*fuzzed && !fuzzed[strcspn(fuzzed, ", \t")])
		FUZZ_ASSERT(auth_offers_protocol(list, fuzzed) == ref_offers(list, fuzzed));
}

static void check_decide(const char *token, const char *device, const char *origin, uint64_t now_ms)
{
	struct auth_request req = { token, device, origin, now_ms };
	struct auth_verdict v;
	bool origin_ok = !origin, device_ok = !device || !*device || ref_is_valid_id(device, WSG_DEVICE_MAX);
	const char *user = NULL;

	for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++)
		origin_ok |= origin && !strcasecmp(origin, origins[i]);
	for (size_t i = 0; token && i < sizeof(tokens) / sizeof(tokens[0]); i++)
		if (!strcmp(token, tokens[i][0]))
			user = tokens[i][1];

	bool expired = user && !strcmp(user, "bob") && now_ms && now_ms >= bob_expires_ms;

	auth_decide(config, &req, &v);
	if (origin_ok && user && !expired && device_ok) {
		FUZZ_ASSERT(v.outcome == HANDSHAKE_ADMITTED && v.close_code == 0 && v.http_status == 0);
		FUZZ_ASSERT(v.token && !strcmp(v.token->user, user));
		return;
	}
	FUZZ_ASSERT(v.outcome != HANDSHAKE_ADMITTED && v.token == NULL);
	FUZZ_ASSERT(closecode_is_sendable(v.close_code) && v.close_code >= 4000);
	FUZZ_ASSERT(v.reason && strlen(v.reason) <= WSG_CLOSE_REASON_MAX);
	FUZZ_ASSERT(v.http_status == 400 || v.http_status == 403);
	if (!origin_ok)
		FUZZ_ASSERT(v.outcome == HANDSHAKE_ORIGIN_NOT_ALLOWED && v.close_code == WSG_CLOSE_FORBIDDEN);
	else if (!token || !*token)
		FUZZ_ASSERT(v.outcome == HANDSHAKE_MISSING_TOKEN && v.close_code == WSG_CLOSE_FORBIDDEN);
	else if (!user)
		FUZZ_ASSERT(v.outcome == HANDSHAKE_INVALID_TOKEN && v.close_code == WSG_CLOSE_FORBIDDEN);
	else if (expired)
		FUZZ_ASSERT(v.outcome == HANDSHAKE_TOKEN_EXPIRED && v.close_code == WSG_CLOSE_FORBIDDEN);
	else
		FUZZ_ASSERT(v.outcome == HANDSHAKE_INVALID_DEVICE && v.close_code == WSG_CLOSE_BAD_REQUEST &&
			    v.http_status == 400);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static bool digits(const char *p, int n, int64_t *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

/* config_parse_utc: exactly YYYY-MM-DDTHH:MM:SSZ, a real date from 1970 on, to the millisecond. */
static void check_utc(const char *text)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t y, mo, d, h, mi, sec;
	uint64_t ms = 0;
	bool ok = strlen(text) == 20 && text[4] == '-' && text[7] == '-' && (text[10] == 'T' || text[10] == 't') &&
		  text[13] == ':' && text[16] == ':' && (text[19] == 'Z' || text[19] == 'z') && digits(text, 4, &y) &&
		  digits(text + 5, 2, &mo) && digits(text + 8, 2, &d) && digits(text + 11, 2, &h) &&
		  digits(text + 14, 2, &mi) && digits(text + 17, 2, &sec) && y >= 1970 && mo >= 1 && mo <= 12 &&
		  d >= 1 && h <= 23 && mi <= 59 && sec <= 59;
	if (ok) {
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		ok = d <= mdays[mo - 1] + (mo == 2 && leap);
	}
	int rc = config_parse_utc(text, &ms);
	FUZZ_ASSERT((rc == 0) == ok);
	if (ok)
		FUZZ_ASSERT(ms == (uint64_t)(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec) * 1000);
}

static bool ref_in_net(const struct netaddr *a, const struct netaddr_net *n)
{
	if (a->family != n->addr.family)
		return false;
	for (unsigned bit = 0; bit < n->prefix; bit++) {
		unsigned mask = 0x80u >> (bit % 8);
		if ((a->bytes[bit / 8] & mask) != (n->addr.bytes[bit / 8] & mask))
			return false;
	}
	return true;
}

static void check_addresses(const char *addr_text, const char *net_text)
{
	struct netaddr a, back;
	struct netaddr_net n;
	char text[NETADDR_TEXT_MAX];

	bool addr_ok = !netaddr_parse(addr_text, &a);
	if (addr_ok) {
		FUZZ_ASSERT(a.family == AF_INET || a.family == AF_INET6);
		FUZZ_ASSERT(inet_ntop(a.family, a.bytes, text, sizeof(text)) != NULL);
		FUZZ_ASSERT(!netaddr_parse(text, &back) && back.family == a.family && !memcmp(back.bytes, a.bytes, 16));
	}
	if (!netaddr_parse_net(net_text, &n)) {
		unsigned max = n.addr.family == AF_INET ? 32 : 128;
		FUZZ_ASSERT(n.prefix <= max);
		FUZZ_ASSERT(strchr(net_text, '/') || n.prefix == max);
		FUZZ_ASSERT(netaddr_in_net(&n.addr, &n));
		if (addr_ok)
			FUZZ_ASSERT(netaddr_in_net(&a, &n) == ref_in_net(&a, &n));
	}
}

static bool trusted(const char *text)
{
	struct netaddr a;

	return !netaddr_parse(text, &a) && netaddr_in_any(&a, config->trusted_proxies, config->trusted_proxy_count);
}

/* hop [s, e) trimmed of spaces and tabs into out; false when not an address. */
static bool ref_hop(const char *s, const char *e, char *out)
{
	struct netaddr a;

	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - s > NETADDR_TEXT_MAX)
		return false;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return !netaddr_parse(out, &a);
}

static void check_client_address(const char *peer, const char *xff, const char *real_ip)
{
	char out[64], small[8], expected[64], hop[NETADDR_TEXT_MAX + 1];
	bool forwarded = netaddr_client_address(peer, xff, real_ip, config->trusted_proxies,
						config->trusted_proxy_count, out, sizeof(out));
	bool expect_forwarded = false;

	snprintf(expected, sizeof(expected), "%s", peer);
	if (trusted(peer) && xff && *xff) {
		const char *end = xff + strlen(xff);
		for (;;) {
			const char *comma = end;
			while (comma > xff && comma[-1] != ',')
				comma--;
			if (!ref_hop(comma, end, hop))
				break;
			strcpy(expected, hop);
			expect_forwarded = true;
			if (!trusted(hop) || comma == xff)
				break;
			end = comma - 1;
		}
	} else if (trusted(peer) && real_ip && ref_hop(real_ip, real_ip + strlen(real_ip), hop)) {
		strcpy(expected, hop);
		expect_forwarded = true;
	}
	FUZZ_ASSERT(forwarded == expect_forwarded);
	FUZZ_ASSERT(!strcmp(out, expected));
	if (forwarded)
		FUZZ_ASSERT(trusted(peer));

	/* a short buffer: the same answer, cut and terminated */
	FUZZ_ASSERT(netaddr_client_address(peer, xff, real_ip, config->trusted_proxies, config->trusted_proxy_count,
					   small, sizeof(small)) == forwarded);
	FUZZ_ASSERT(strlen(small) < sizeof(small) && !strncmp(small, expected, strlen(small)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = { NULL, "127.0.0.1", "10.9.8.7", "::1" };
	char *f[9];

	static const uint64_t nows[] = { 0, bob_expires_ms - 1, bob_expires_ms, bob_expires_ms + 1 };

	if (size < 2)
		return 0;
	unsigned flags = data[0];
	uint64_t now_ms = nows[data[1] & 3];
	char *buf = fuzz_split(data + 2, size - 2, f, 9);
	for (size_t i = 0; i < 9; i++)
		if (!f[i])
			f[i] = "";
	const char *token = (flags & 3) == 1 ? "alice-secret" : (flags & 3) == 2 ? "bob-secret" : f[0];
	if ((flags & 3) == 3)
		token = NULL;
	const char *device = flags & 4 ? NULL : f[1];
	const char *origin = flags & 8 ? NULL : f[2];
	const char *peer = peers[(flags >> 4) & 3] ? peers[(flags >> 4) & 3] : f[5];
	const char *xff = flags & 0x80 ? NULL : f[6];
	const char *real_ip = flags & 0x40 ? NULL : f[7];

	check_decide(token, device, origin, now_ms);
	check_utc(f[0]);
	check_ids(f[1]);
	check_bearer(f[3]);
	check_protocols(f[4], f[0]);
	check_addresses(f[5], f[8]);
	check_client_address(peer, xff, real_ip);
	free(buf);
	return 0;
}
