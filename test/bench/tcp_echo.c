/*
 * tcp-echo: a trivial epoll TCP echo with no WebSocket framing. It is the loopback
 * limit: when wsgate-bench --raw-tcp against it is far faster than any WebSocket
 * peer, the generator is not what limits those peers. Listens on 127.0.0.1 only.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

/* Bytes read but not yet written back; reading waits while any are pending. */
struct client {
	int fd;
	char *pending;
	size_t pending_len;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int listen_on(int port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_port = htons((uint16_t)port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 4096))
		return -1;
	return fd;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->pending);
	free(c);
}

/* Writes what is pending; returns 1 when all is out, 0 to wait for EPOLLOUT, -1 on error. */
static int client_flush(struct client *c)
{
	while (c->pending_len) {
		ssize_t n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
		c->pending_len -= (size_t)n;
	}
	return 1;
}

/* Echoes until the socket is empty or the peer stops reading; returns -1 to close. */
static int client_serve(struct client *c, char *buf)
{
	for (;;) {
		int flushed = client_flush(c);
		ssize_t n;

		if (flushed <= 0)
			return flushed;
		n = recv(c->fd, buf, CHUNK, 0);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		c->pending = realloc(c->pending, (size_t)n);
		if (!c->pending)
			return -1;
		memcpy(c->pending, buf, (size_t)n);
		c->pending_len = (size_t)n;
	}
}

static void accept_all(int lfd, int ep)
{
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct client *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };

		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			client_close(c);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "port", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 } };
	static char buf[CHUNK];
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL }, events[256];
	int port = 8091, opt, lfd, ep;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 'p') {
			fprintf(stderr, "usage: tcp-echo [--port N]\n");
			return 2;
		}
		port = atoi(optarg);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	lfd = listen_on(port);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev)) {
		fprintf(stderr, "tcp-echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "tcp-echo: listening on 127.0.0.1:%d\n", port);
	while (!interrupted) {
		int n = epoll_wait(ep, events, 256, -1);

		for (int i = 0; i < n; i++) {
			struct client *c = events[i].data.ptr;

			if (!c)
				accept_all(lfd, ep);
			else if (client_serve(c, buf) < 0)
				client_close(c); /* close() also removes it from the epoll set */
		}
	}
	return 0;
}
