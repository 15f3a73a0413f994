/*
 * IP addresses and networks for the proxy trust list, and the client address
 * behind a trusted proxy. Pure parsing over strings: X-Forwarded-For is client
 * input and is believed only as far as trusted hops vouch for it.
 */
#ifndef WSGATE_NETADDR_H
#define WSGATE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

#define NETADDR_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

struct netaddr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char bytes[16];
};

struct netaddr_net {
	struct netaddr addr;
	unsigned prefix; /* bits that must match */
};

int netaddr_parse(const char *text, struct netaddr *out);
/* "10.0.0.0/8", "::1", "127.0.0.1" (a bare address is a /32 or /128). */
int netaddr_parse_net(const char *text, struct netaddr_net *out);
bool netaddr_in_net(const struct netaddr *addr, const struct netaddr_net *net);
bool netaddr_in_any(const struct netaddr *addr, const struct netaddr_net *nets, size_t count);

/*
 * The client's address for a connection from peer. When peer is trusted, walk
 * X-Forwarded-For from the right past trusted hops; the first other address is
 * the client (X-Real-IP when there is no X-Forwarded-For). A malformed hop ends
 * the walk at the last address believed. Returns true when out came from a
 * forwarded header (it may equal peer when client and proxy share a host).
 */
bool netaddr_client_address(const char *peer, const char *forwarded_for, const char *real_ip,
			    const struct netaddr_net *trusted, size_t trusted_count, char *out, size_t outlen);

#endif
