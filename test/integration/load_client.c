/*
 * wsgate-load: the subscriber side of the load test (test_load.py). Opens N
 * WebSocket sessions to wsgate on loopback, subscribes each to one channel,
 * prints "ready N" and then reads every delivery, checking that each
 * session's `seq` goes 1, 2, 3 ... with no gap, and answers pings. On "stop K"
 * on stdin it waits (at most 10 s) until every session has seen seq K, prints
 * one key=value summary line and closes every session with 1000.
 * Loopback only, bounded in time; never a test by itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW		  256 /* handshakes in progress at once */
#define SETUP_TIMEOUT_S	  60
#define DRAIN_TIMEOUT_S	  10
#define MAX_FRAME_PAYLOAD (1u << 20)

enum state { CONNECTING, HANDSHAKE, WELCOME, SUBSCRIBING, SUBSCRIBED, CLOSED };

struct conn {
	int fd;
	enum state state;
	uint8_t *in;
	size_t len, cap;
	uint64_t last_seq, received, gaps, bad;
	unsigned close_code;
};

static struct conn *conns;
static int nconns, port, epfd;
static const char *path, *channel;
static char *sources[64];
static int nsources;
static uint64_t stop_at; /* expected last seq, 0 until "stop K" */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
	fprintf(stderr, "wsgate-load: %s\n", msg);
	exit(2);
}

static void send_all(struct conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* small control writes on a loopback socket: wait until writable */
			usleep(1000);
			continue;
		}
		if (n <= 0)
			return; /* the peer is gone: the read side notices */
		p += n;
		len -= (size_t)n;
	}
}

/* A masked client frame (RFC 6455 5.3); payloads here are small. */
static void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
{
	uint8_t frame[256 + 14];
	size_t h = 0;
	const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };

	if (len > 256)
		len = 256;
	frame[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		frame[h++] = (uint8_t)(0x80 | len);
	} else {
		frame[h++] = 0x80 | 126;
		frame[h++] = (uint8_t)(len >> 8);
		frame[h++] = (uint8_t)len;
	}
	memcpy(frame + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		frame[h + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
	send_all(c, frame, h + len);
}

static void close_conn(struct conn *c)
{
	if (c->state == CLOSED)
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->state = CLOSED;
}

static void start_connect(struct conn *c, int index)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int one = 1;

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket() failed (open files limit?)");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nsources) {
		struct sockaddr_in from = { .sin_family = AF_INET };
		inet_pton(AF_INET, sources[index % nsources], &from.sin_addr);
		if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)))
			die("bind() to a source address failed");
	}
	if (connect(c->fd, (struct sockaddr *)&to, sizeof(to)) && errno != EINPROGRESS)
		die("connect() failed");
	c->state = CONNECTING;
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void send_handshake(struct conn *c, int index)
{
	char req[1024];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int n = snprintf(req, sizeof(req),
			 "GET %s&device=l%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path, index, port);

	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->state = HANDSHAKE;
	send_all(c, req, (size_t)n);
}

static uint64_t json_uint(const uint8_t *p, size_t len, const char *key)
{
	const uint8_t *hit = memmem(p, len, key, strlen(key));

	if (!hit)
		return 0;
	return strtoull((const char *)hit + strlen(key), NULL, 10);
}

static void on_message(struct conn *c, const uint8_t *p, size_t len)
{
	char sub[256];

	switch (c->state) {
	case WELCOME:
		if (!memmem(p, len, "\"type\":\"welcome\"", 16)) {
			c->bad++;
			return;
		}
		snprintf(sub, sizeof(sub), "{\"type\":\"subscribe\",\"channel\":\"%s\",\"id\":1}", channel);
		send_frame(c, 1, sub, strlen(sub));
		c->state = SUBSCRIBING;
		return;
	case SUBSCRIBING:
		if (!memmem(p, len, "\"type\":\"ack\"", 12)) {
			c->bad++;
			return;
		}
		c->state = SUBSCRIBED;
		return;
	case SUBSCRIBED: {
		uint64_t seq = json_uint(p, len, "\"seq\":");
		if (!memmem(p, len, "\"type\":\"message\"", 16) || !seq) {
			c->bad++;
			return;
		}
		if (seq != c->last_seq + 1)
			c->gaps++;
		c->last_seq = seq;
		c->received++;
		return;
	}
	default:
		c->bad++;
	}
}

/* Frames in c->in: messages, pings answered, a close noted. */
static void parse_frames(struct conn *c)
{
	size_t off = 0;

	while (c->state != CLOSED && c->len - off >= 2) {
		const uint8_t *f = c->in + off;
		size_t h = 2;
		uint64_t plen = f[1] & 0x7F;
		int opcode = f[0] & 0x0F;

		if (plen == 126) {
			if (c->len - off < 4)
				break;
			plen = ((uint64_t)f[2] << 8) | f[3];
			h = 4;
		} else if (plen == 127) {
			if (c->len - off < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = (plen << 8) | f[2 + i];
			h = 10;
		}
		if (plen > MAX_FRAME_PAYLOAD) {
			c->bad++;
			close_conn(c);
			return;
		}
		if (c->len - off < h + plen)
			break;
		const uint8_t *payload = f + h;
		if (opcode == 1)
			on_message(c, payload, plen);
		else if (opcode == 9)
			send_frame(c, 10, payload, plen);
		else if (opcode == 8) {
			c->close_code = plen >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 1005;
			close_conn(c);
			return;
		}
		off += h + plen;
	}
	memmove(c->in, c->in + off, c->len - off);
	c->len -= off;
}

static void on_readable(struct conn *c)
{
	for (;;) {
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 65536;
			c->in = realloc(c->in, c->cap);
			if (!c->in)
				die("out of memory");
		}
		ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			close_conn(c);
			return;
		}
		c->len += (size_t)n;
		if ((size_t)n < c->cap - c->len)
			break;
	}
	if (c->state == HANDSHAKE) {
		uint8_t *end = memmem(c->in, c->len, "\r\n\r\n", 4);
		if (!end)
			return;
		if (c->len < 12 || memcmp(c->in, "HTTP/1.1 101", 12)) {
			c->bad++;
			close_conn(c);
			return;
		}
		size_t head = (size_t)(end + 4 - c->in);
		memmove(c->in, c->in + head, c->len - head);
		c->len -= head;
		c->state = WELCOME;
	}
	parse_frames(c);
}

static void poll_once(int timeout_ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(epfd, evs, 512, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (c->state == CONNECTING) {
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err) {
				c->bad++;
				close_conn(c);
				continue;
			}
			send_handshake(c, (int)(c - conns));
			continue;
		}
		if (c->state != CLOSED)
			on_readable(c);
	}
}

static int count(enum state s)
{
	int n = 0;

	for (int i = 0; i < nconns; i++)
		n += conns[i].state == s;
	return n;
}

static void read_stdin_command(void)
{
	char line[128];

	if (!fgets(line, sizeof(line), stdin))
		stop_at = UINT64_MAX; /* stdin gone: stop now */
	else if (!strncmp(line, "stop ", 5))
		stop_at = strtoull(line + 5, NULL, 10);
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	double started;

	if (argc < 5) {
		fprintf(stderr, "usage: wsgate-load PORT SESSIONS CHANNEL PATH?QUERY [SOURCE,SOURCE,...]\n");
		return 2;
	}
	port = atoi(argv[1]);
	nconns = atoi(argv[2]);
	channel = argv[3];
	path = argv[4];
	if (argc > 5)
		for (char *s = strtok(argv[5], ","); s && nsources < 64; s = strtok(NULL, ","))
			sources[nsources++] = s;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	conns = calloc((size_t)nconns, sizeof(*conns));
	epfd = epoll_create1(0);
	if (!conns || epfd < 0)
		die("setup failed");

	/* connect, handshake, welcome, subscribe: WINDOW at a time */
	started = now_s();
	int next = 0;
	for (;;) {
		int pending = 0;
		for (int i = 0; i < next; i++)
			pending += conns[i].state != SUBSCRIBED && conns[i].state != CLOSED;
		while (next < nconns && pending < WINDOW) {
			start_connect(&conns[next], next);
			next++;
			pending++;
		}
		if (next == nconns && pending == 0)
			break;
		if (now_s() - started > SETUP_TIMEOUT_S)
			break;
		poll_once(100);
	}
	printf("ready subscribed=%d closed=%d setup_s=%.1f\n", count(SUBSCRIBED), count(CLOSED), now_s() - started);
	fflush(stdout);

	/* deliveries until "stop K", then until every session has K (at most DRAIN_TIMEOUT_S) */
	struct epoll_event in = { .events = EPOLLIN, .data.ptr = NULL };
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in);
	double drain_until = 0;
	for (;;) {
		struct epoll_event evs[512];
		int n = epoll_wait(epfd, evs, 512, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				read_stdin_command();
				if (stop_at && !drain_until) {
					drain_until = now_s() + DRAIN_TIMEOUT_S;
					epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
				}
			} else if (c->state != CLOSED) {
				on_readable(c);
			}
		}
		if (!drain_until)
			continue;
		bool all = true;
		for (int i = 0; i < nconns && all; i++)
			all = conns[i].state != SUBSCRIBED || conns[i].last_seq >= stop_at;
		if (all || now_s() > drain_until)
			break;
	}

	uint64_t gaps = 0, bad = 0, min_rx = UINT64_MAX, max_rx = 0, short_of = 0;
	int subscribed = count(SUBSCRIBED), closed = count(CLOSED);
	unsigned a_close = 0;
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		gaps += c->gaps;
		bad += c->bad;
		if (c->received < min_rx)
			min_rx = c->received;
		if (c->received > max_rx)
			max_rx = c->received;
		if (c->state == SUBSCRIBED && c->last_seq != stop_at)
			short_of++;
		if (c->close_code)
			a_close = c->close_code;
	}
	printf("sessions=%d subscribed=%d closed=%d expected=%" PRIu64 " min_received=%" PRIu64 " max_received=%" PRIu64
	       " short=%" PRIu64 " gaps=%" PRIu64 " bad=%" PRIu64 " a_close_code=%u\n",
	       nconns, subscribed, closed, stop_at, min_rx, max_rx, short_of, gaps, bad, a_close);
	fflush(stdout);
	for (int i = 0; i < nconns; i++)
		if (conns[i].state != CLOSED) {
			const uint8_t bye[2] = { 0x03, 0xE8 };
			send_frame(&conns[i], 8, bye, 2);
		}
	/* the server answers and ends TCP; give it a moment, then drop what is left */
	double until = now_s() + 3;
	while (now_s() < until && count(CLOSED) < nconns)
		poll_once(50);
	for (int i = 0; i < nconns; i++)
		close_conn(&conns[i]);
	return 0;
}
