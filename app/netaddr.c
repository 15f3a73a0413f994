/*
 * Address parsing and proxy trust. Never believes a forwarded address from a
 * peer that is not in the trusted list.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int netaddr_parse(const char *text, struct netaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

int netaddr_parse_net(const char *text, struct netaddr_net *out)
{
	char addr[NETADDR_TEXT_MAX + 1];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);

	if (len > NETADDR_TEXT_MAX)
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	if (netaddr_parse(addr, &out->addr))
		return -1;
	unsigned max = out->addr.family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash) {
		char *end;
		unsigned long prefix = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || prefix > max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	return 0;
}

bool netaddr_in_net(const struct netaddr *addr, const struct netaddr_net *net)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (addr->family != net->addr.family)
		return false;
	if (memcmp(addr->bytes, net->addr.bytes, full))
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (addr->bytes[full] & mask) == (net->addr.bytes[full] & mask);
}

bool netaddr_in_any(const struct netaddr *addr, const struct netaddr_net *nets, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (netaddr_in_net(addr, &nets[i]))
			return true;
	return false;
}

static bool is_trusted(const char *text, const struct netaddr_net *trusted, size_t count)
{
	struct netaddr addr;

	return !netaddr_parse(text, &addr) && netaddr_in_any(&addr, trusted, count);
}

/* The hop text between [start, end) trimmed of spaces, into out; -1 when not an address. */
static int take_hop(const char *start, const char *end, char *out, size_t outlen)
{
	struct netaddr addr;

	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - start) >= outlen || end == start)
		return -1;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return netaddr_parse(out, &addr);
}

bool netaddr_client_address(const char *peer, const char *forwarded_for, const char *real_ip,
			    const struct netaddr_net *trusted, size_t trusted_count, char *out, size_t outlen)
{
	char hop[NETADDR_TEXT_MAX + 1];

	util_strlcpy(out, peer, outlen);
	if (!trusted_count || !is_trusted(peer, trusted, trusted_count))
		return false;
	bool forwarded = false;
	if (forwarded_for && *forwarded_for) {
		const char *end = forwarded_for + strlen(forwarded_for);
		while (end > forwarded_for) {
			const char *start = end;
			while (start > forwarded_for && start[-1] != ',')
				start--;
			if (take_hop(start, end, hop, sizeof(hop)))
				break; /* garbage: keep the last address we could believe */
			util_strlcpy(out, hop, outlen);
			forwarded = true;
			if (!is_trusted(hop, trusted, trusted_count))
				break;
			end = start > forwarded_for ? start - 1 : start;
		}
	} else if (real_ip && !take_hop(real_ip, real_ip + strlen(real_ip), hop, sizeof(hop))) {
		util_strlcpy(out, hop, outlen);
		forwarded = true;
	}
	return forwarded;
}
