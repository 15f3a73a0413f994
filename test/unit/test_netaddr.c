/* netaddr: address and network parsing, and the client address behind trusted proxies. */
#include "netaddr.h"

#include <arpa/inet.h>

#include "check.h"

static const struct netaddr_net *nets(const char *const *texts, size_t count, struct netaddr_net *out)
{
	for (size_t i = 0; i < count; i++)
		CHECK_EQ_INT(netaddr_parse_net(texts[i], &out[i]), 0);
	return out;
}

static void test_parse_addresses(void)
{
	struct netaddr a;

	CHECK_EQ_INT(netaddr_parse("127.0.0.1", &a), 0);
	CHECK_EQ_INT(a.family, AF_INET);
	CHECK_EQ_INT(netaddr_parse("::1", &a), 0);
	CHECK_EQ_INT(a.family, AF_INET6);
	CHECK_EQ_INT(netaddr_parse("localhost", &a), -1);
	CHECK_EQ_INT(netaddr_parse("1.2.3", &a), -1);
	CHECK_EQ_INT(netaddr_parse("", &a), -1);
}

static void test_parse_networks(void)
{
	struct netaddr_net n;

	CHECK_EQ_INT(netaddr_parse_net("10.0.0.0/8", &n), 0);
	CHECK_EQ_INT(n.prefix, 8);
	CHECK_EQ_INT(netaddr_parse_net("10.1.2.3", &n), 0);
	CHECK_EQ_INT(n.prefix, 32);
	CHECK_EQ_INT(netaddr_parse_net("fd00::/8", &n), 0);
	CHECK_EQ_INT(n.prefix, 8);
	CHECK_EQ_INT(netaddr_parse_net("::1", &n), 0);
	CHECK_EQ_INT(n.prefix, 128);
	CHECK_EQ_INT(netaddr_parse_net("10.0.0.0/33", &n), -1);
	CHECK_EQ_INT(netaddr_parse_net("10.0.0.0/", &n), -1);
	CHECK_EQ_INT(netaddr_parse_net("10.0.0.0/8x", &n), -1);
	CHECK_EQ_INT(netaddr_parse_net("::/129", &n), -1);
	CHECK_EQ_INT(netaddr_parse_net("example.com/8", &n), -1);
}

static void test_network_membership(void)
{
	static const char *const texts[] = { "10.0.0.0/8", "192.168.1.128/25", "fd00::/8" };
	struct netaddr_net n[3];
	struct netaddr a;

	nets(texts, 3, n);
	netaddr_parse("10.255.0.1", &a);
	CHECK(netaddr_in_any(&a, n, 3));
	netaddr_parse("11.0.0.1", &a);
	CHECK(!netaddr_in_any(&a, n, 3));
	netaddr_parse("192.168.1.200", &a);
	CHECK(netaddr_in_net(&a, &n[1]));
	netaddr_parse("192.168.1.127", &a);
	CHECK(!netaddr_in_net(&a, &n[1]));
	netaddr_parse("fd12::5", &a);
	CHECK(netaddr_in_any(&a, n, 3));
	netaddr_parse("fe80::1", &a);
	CHECK(!netaddr_in_any(&a, n, 3));
	/* an IPv4 address never matches an IPv6 network of the same bytes */
	netaddr_parse("253.0.0.1", &a);
	CHECK(!netaddr_in_net(&a, &n[2]));
}

static void test_untrusted_peer_keeps_its_own_address(void)
{
	static const char *const texts[] = { "10.0.0.1" };
	struct netaddr_net n[1];
	char out[64];

	nets(texts, 1, n);
	CHECK(!netaddr_client_address("127.0.0.1", "198.51.100.7", NULL, n, 1, out, sizeof(out)));
	CHECK_EQ_STR(out, "127.0.0.1");
	CHECK(!netaddr_client_address("127.0.0.1", "198.51.100.7", "198.51.100.8", NULL, 0, out, sizeof(out)));
	CHECK_EQ_STR(out, "127.0.0.1");
}

static void test_trusted_peer_gives_the_rightmost_untrusted_hop(void)
{
	static const char *const texts[] = { "127.0.0.1", "10.0.0.0/8" };
	struct netaddr_net n[2];
	char out[64];

	nets(texts, 2, n);
	CHECK(netaddr_client_address("127.0.0.1", "198.51.100.7", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "198.51.100.7");
	/* a client cannot forge its way past the last untrusted hop */
	CHECK(netaddr_client_address("127.0.0.1", "1.1.1.1, 198.51.100.7, 10.0.0.5", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "198.51.100.7");
	/* every hop trusted: the leftmost is the best we know */
	CHECK(netaddr_client_address("127.0.0.1", "10.0.0.9,10.0.0.5", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "10.0.0.9");
	/* garbage ends the walk at the last address believed */
	CHECK(netaddr_client_address("127.0.0.1", "evil, 198.51.100.7", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "198.51.100.7");
	CHECK(!netaddr_client_address("127.0.0.1", "not-an-ip", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "127.0.0.1");
	CHECK(netaddr_client_address("127.0.0.1", " 2001:db8::7 ", NULL, n, 2, out, sizeof(out)));
	CHECK_EQ_STR(out, "2001:db8::7");
}

static void test_real_ip_used_without_forwarded_for(void)
{
	static const char *const texts[] = { "127.0.0.1" };
	struct netaddr_net n[1];
	char out[64];

	nets(texts, 1, n);
	CHECK(netaddr_client_address("127.0.0.1", "", "203.0.113.4", n, 1, out, sizeof(out)));
	CHECK_EQ_STR(out, "203.0.113.4");
	CHECK(!netaddr_client_address("127.0.0.1", NULL, "bogus", n, 1, out, sizeof(out)));
	CHECK_EQ_STR(out, "127.0.0.1");
	CHECK(!netaddr_client_address("127.0.0.1", NULL, NULL, n, 1, out, sizeof(out)));
	CHECK_EQ_STR(out, "127.0.0.1");
}

int main(void)
{
	RUN(test_parse_addresses);
	RUN(test_parse_networks);
	RUN(test_network_membership);
	RUN(test_untrusted_peer_keeps_its_own_address);
	RUN(test_trusted_peer_gives_the_rightmost_untrusted_hop);
	RUN(test_real_ip_used_without_forwarded_for);
	return check_summary();
}
