/*
 * lws-echo: the smallest libwebsockets echo server, as a floor for wsgate's numbers.
 * Every text or binary message is sent back unchanged, one lws_write per writeable
 * callback (how the lws minimal examples do it). No auth, any path: never expose it.
 */
#include <getopt.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One received message waiting to be echoed; LWS_PRE bytes of headroom for lws's header. */
struct echo_msg {
	struct echo_msg *next;
	size_t len;
	bool binary;
	unsigned char data[]; /* LWS_PRE + len */
};

/* Per-connection state that lws allocates (per_session_data_size). */
struct echo_session {
	struct echo_msg *head, *tail; /* messages to echo, oldest first */
	unsigned char *partial;	      /* a message arriving in fragments */
	size_t partial_len;
};

static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	lws_cancel_service(context);
}

static void session_free(struct echo_session *s)
{
	while (s->head) {
		struct echo_msg *m = s->head;

		s->head = m->next;
		free(m);
	}
	s->tail = NULL;
	free(s->partial);
	s->partial = NULL;
	s->partial_len = 0;
}

/* Appends a fragment; on the final one the whole message joins the queue. */
static int session_receive(struct lws *wsi, struct echo_session *s, const void *in, size_t len)
{
	unsigned char *grown = realloc(s->partial, LWS_PRE + s->partial_len + len);
	struct echo_msg *m;

	if (!grown)
		return -1;
	s->partial = grown;
	memcpy(s->partial + LWS_PRE + s->partial_len, in, len);
	s->partial_len += len;
	if (!lws_is_final_fragment(wsi))
		return 0;
	m = malloc(sizeof(*m) + LWS_PRE + s->partial_len);
	if (!m)
		return -1;
	m->next = NULL;
	m->len = s->partial_len;
	m->binary = lws_frame_is_binary(wsi);
	memcpy(m->data + LWS_PRE, s->partial + LWS_PRE, s->partial_len);
	s->partial_len = 0;
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Writes the oldest queued message; asks for another callback while more wait. */
static int session_write(struct lws *wsi, struct echo_session *s)
{
	struct echo_msg *m = s->head;
	int n;

	if (!m)
		return 0;
	n = lws_write(wsi, m->data + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	if (n < (int)m->len)
		return -1;
	s->head = m->next;
	if (!s->head)
		s->tail = NULL;
	free(m);
	if (s->head)
		lws_callback_on_writable(wsi);
	return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct echo_session *s = user;

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		return session_receive(wsi, s, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return session_write(wsi, s);
	case LWS_CALLBACK_CLOSED:
		session_free(s);
		return 0;
	default:
		return 0;
	}
}

/*
 * The ws protocol comes first: an upgrade without Sec-WebSocket-Protocol binds to the
 * vhost's first protocol. Not const: rx_buffer_size comes from --rx-buffer.
 */
static struct lws_protocols protocols[] = {
	{ "echo", callback_echo, sizeof(struct echo_session), 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 } /* terminator */
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "rx-buffer", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct lws_context_creation_info info;
	int port = 8090, opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'r')
			protocols[0].rx_buffer_size = (size_t)strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: lws-echo [--port N] [--rx-buffer BYTES]\n");
			return 2;
		}
	}
	if (port < 1 || port > 65535 || protocols[0].rx_buffer_size < 128) {
		fprintf(stderr, "lws-echo: --port 1-65535, --rx-buffer at least 128\n");
		return 2;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "lws-echo: cannot create the lws context\n");
		return 1;
	}
	fprintf(stderr, "lws-echo: listening on 127.0.0.1:%d rx_buffer_size=%zu\n", port, protocols[0].rx_buffer_size);
	while (!interrupted && lws_service(context, 0) >= 0)
		;
	lws_context_destroy(context);
	return 0;
}
