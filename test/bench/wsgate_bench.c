/*
 * wsgate-bench: a single-threaded epoll load generator for WebSocket servers (the
 * client side of RFC 6455) and for a raw TCP echo. Modes: handshake, echo (JSON or
 * bare text "ping"), fanout (publisher over the HTTP API or a WebSocket), idle (each
 * session optionally subscribed to one of N channels). It prints one key=value result
 * line (and --json FILE). It must never leave loopback and never run unbounded: every
 * run ends after --duration (or at SIGINT) plus a short close grace, and only
 * 127.0.0.0/8 addresses are accepted.
 */
#define _GNU_SOURCE /* memmem, strndup */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC	   1000000000ull
#define CLOSE_GRACE_NS	   (2 * NS_PER_SEC)  /* time left for close handshakes after --duration */
#define SETUP_LIMIT_NS	   (60 * NS_PER_SEC) /* opening connections before the measured --duration */
#define WELCOME_TIMEOUT_NS NS_PER_SEC	     /* longer without a welcome: the peer is not wsgate */
#define MAX_DURATION_S	   3600.0
#define MAX_SOURCES	   64
#define MAX_FRAME_PAYLOAD  (16u << 20)
#define RX_CHUNK	   (64 * 1024)
#define WS_GUID		   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */

enum ws_opcode { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wsgate-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- byte buffer: bytes waiting to be sent, or a partial frame waiting for the rest ---- */

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static uint8_t *buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + extra)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			die("out of memory");
		b->cap = cap;
	}
	return b->data + b->len;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
	if (!n)
		return; /* data may still be NULL */
	memcpy(buf_reserve(b, n), p, n);
	b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
	if (!n)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---- latency histogram: log-linear buckets (about 0.1% precision), fixed 256 KiB ---- */

#define HIST_SUB_BITS 10
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* values are clamped to 2^40 ns, about 18 minutes */
#define HIST_BUCKETS  ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

static unsigned hist_index(uint64_t v)
{
	unsigned shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS; /* v >> shift is in [SUB, 2 SUB) */
	return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

static uint64_t hist_value(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	return ((uint64_t)(idx % HIST_SUB + HIST_SUB) << shift) + ((1ull << shift) >> 1);
}

static void hist_add(struct hist *h, uint64_t ns)
{
	if (ns >= (1ull << HIST_MAX_BITS))
		ns = (1ull << HIST_MAX_BITS) - 1;
	h->counts[hist_index(ns)]++;
	h->total++;
	if (ns > h->max)
		h->max = ns;
}

static double hist_percentile_us(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->total + 0.999999), seen = 0;

	if (!h->total)
		return 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want && h->counts[i])
			return (double)hist_value(i) / 1000.0;
	}
	return (double)h->max / 1000.0;
}

/* ---- result: one list of numbers printed as key=value and as JSON ---- */

struct result_item {
	char key[32];
	char value[64];
	bool is_string;
};

struct result {
	struct result_item items[48];
	int count;
};

static void result_add(struct result *r, const char *key, bool is_string, const char *fmt, ...)
{
	struct result_item *it;
	va_list ap;

	if (r->count == (int)(sizeof(r->items) / sizeof(r->items[0])))
		die("too many result fields");
	it = &r->items[r->count++];
	snprintf(it->key, sizeof(it->key), "%s", key);
	it->is_string = is_string;
	va_start(ap, fmt);
	vsnprintf(it->value, sizeof(it->value), fmt, ap);
	va_end(ap);
}

static void result_int(struct result *r, const char *key, uint64_t v)
{
	result_add(r, key, false, "%" PRIu64, v);
}

static void result_num(struct result *r, const char *key, double v)
{
	result_add(r, key, false, "%.1f", v);
}

static void result_str(struct result *r, const char *key, const char *v)
{
	result_add(r, key, true, "%s", v);
}

static void result_latency(struct result *r, const char *prefix, const struct hist *h)
{
	static const struct {
		const char *name;
		double q;
	} pct[] = { { "p50", 0.50 }, { "p99", 0.99 }, { "p999", 0.999 } };
	char key[32];

	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
		snprintf(key, sizeof(key), "%s_%s_us", prefix, pct[i].name);
		result_num(r, key, hist_percentile_us(h, pct[i].q));
	}
	snprintf(key, sizeof(key), "%s_max_us", prefix);
	result_num(r, key, (double)h->max / 1000.0);
}

static void result_print(const struct result *r, FILE *f)
{
	for (int i = 0; i < r->count; i++)
		fprintf(f, "%s%s=%s", i ? " " : "", r->items[i].key, r->items[i].value);
	fputc('\n', f);
}

/* Values are our own numbers and option strings; quotes and backslashes are escaped. */
static int result_write_json(const struct result *r, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputc('{', f);
	for (int i = 0; i < r->count; i++) {
		fprintf(f, "%s\"%s\":", i ? "," : "", r->items[i].key);
		if (!r->items[i].is_string) {
			fputs(r->items[i].value, f);
			continue;
		}
		fputc('"', f);
		for (const char *p = r->items[i].value; *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fputc('"', f);
	}
	fputs("}\n", f);
	return fclose(f);
}

/* ---- the server process, seen through /proc ---- */

static long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat, after the "(comm)") */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], text[1024], *p;
	unsigned long long utime, stime;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (!(p = strrchr(text, ')')))
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
		return -1;
	return (long long)(utime + stime);
}

/* ---- options ---- */

enum peer_kind { PEER_WSGATE, PEER_ECHO };

/* fanout: who publishes. API: POST /api/publish (wsgate only); WS: a WebSocket client's
 * {"type":"publish"} (wsgate), or any text message (a broadcast peer such as node_broadcast.js). */
enum publisher_kind { PUBLISHER_API, PUBLISHER_WS };

struct options {
	const char *mode;
	const char *host;
	struct sockaddr_in server;
	const char *path;
	const char *api_key;
	const char *channel;
	const char *device_prefix;
	const char *json_path;
	const char *perf_control; /* a `perf stat --control fifo:` FIFO: counting follows the window */
	struct in_addr sources[MAX_SOURCES];
	int source_count;
	enum peer_kind peer;
	enum publisher_kind publisher;
	bool raw_tcp;
	bool text_ping; /* echo: bare "ping" (wsgate answers "pong") instead of JSON */
	unsigned connections;
	unsigned inflight;
	unsigned size;
	unsigned window;
	unsigned subscribers;
	unsigned channels; /* idle: each session subscribes to one of this many channels (0: none) */
	double duration;
	double rate;
	pid_t server_pid;
};

/* Only loopback: the generator must never be pointed at a host it does not own. */
static bool parse_loopback(const char *text, struct in_addr *out)
{
	return inet_pton(AF_INET, text, out) == 1 && (ntohl(out->s_addr) >> 24) == 127;
}

static unsigned parse_count(const char *name, const char *text, unsigned min, unsigned max)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < min || v > max)
		die("--%s must be an integer between %u and %u, not '%s'", name, min, max, text);
	return (unsigned)v;
}

static double parse_seconds(const char *name, const char *text, double min, double max)
{
	char *end;
	double v = strtod(text, &end);

	if (*text == '\0' || *end != '\0' || !(v >= min && v <= max))
		die("--%s must be a number between %g and %g, not '%s'", name, min, max, text);
	return v;
}

static void parse_sources(struct options *o, char *list)
{
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->source_count == MAX_SOURCES)
			die("at most %d --sources", MAX_SOURCES);
		if (!parse_loopback(tok, &o->sources[o->source_count++]))
			die("source '%s' is not a loopback IPv4 address (127.0.0.0/8)", tok);
	}
}

static void usage(FILE *f)
{
	fputs("usage: wsgate-bench --mode handshake|echo|fanout|idle [options]\n"
	      "  --host A           server address, loopback only (127.0.0.1)\n"
	      "  --port N           server port (8080)\n"
	      "  --path P           upgrade path and query (/ws?token=alice-secret); &device=<prefix><n> is appended\n"
	      "  --peer wsgate|echo wsgate: welcome first, JSON pong replies; echo: verbatim echo server (wsgate)\n"
	      "  --raw-tcp          echo mode over plain TCP, no WebSocket (for tcp-echo)\n"
	      "  --connections C    echo and idle: connections (100)\n"
	      "  --inflight K       echo: messages in flight per connection; fanout --publisher ws: publishes (1)\n"
	      "  --size S           echo: message size in bytes (32)\n"
	      "  --text-ping        echo: send the bare text \"ping\" (wsgate: \"pong\" back; echo peers: \"ping\")\n"
	      "  --window W         handshakes in progress at once (64)\n"
	      "  --subscribers N    fanout: subscribers (100)\n"
	      "  --channel NAME     fanout: channel; idle --channels: their prefix (bench)\n"
	      "  --channels N       idle: each session subscribes to one of N channels, NAME.0 .. NAME.N-1 in\n"
	      "                     turn, and counts as open once the subscribe is answered (0: none)\n"
	      "  --publisher api|ws fanout: POST /api/publish (api), or a WebSocket client publishing (ws) (api)\n"
	      "  --api-key KEY      fanout: backend API key for POST /api/publish\n"
	      "  --rate R           fanout: publishes per second, 0 = as fast as acks allow (0); a wsgate\n"
	      "                     cluster's acks carry no count (202 {\"accepted\":true}, {\"type\":\"ack\"})\n"
	      "  --device-prefix P  device id prefix, to run several generators at once (b)\n"
	      "  --sources A,B,...  loopback source addresses to spread ephemeral ports over\n"
	      "  --server-pid PID   report the server's CPU (and RSS in idle mode) from /proc\n"
	      "  --duration SEC     measured time, at most 3600 (10), after setup (60 s at most); SIGINT ends\n"
	      "                     the run earlier, with its report\n"
	      "  --json FILE        also write the result as a JSON object\n"
	      "  --perf-control F   write enable/disable to F (perf stat -D -1 --control fifo:F) at the edges\n"
	      "                     of the measured window, so perf counts exactly the operations reported\n",
	      f);
}

static void parse_options(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "path", required_argument, NULL, 'P' },
		{ "peer", required_argument, NULL, 'e' },
		{ "raw-tcp", no_argument, NULL, 'r' },
		{ "text-ping", no_argument, NULL, 't' },
		{ "publisher", required_argument, NULL, 'u' },
		{ "connections", required_argument, NULL, 'c' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "subscribers", required_argument, NULL, 'n' },
		{ "channel", required_argument, NULL, 'C' },
		{ "channels", required_argument, NULL, 'N' },
		{ "api-key", required_argument, NULL, 'a' },
		{ "rate", required_argument, NULL, 'R' },
		{ "device-prefix", required_argument, NULL, 'D' },
		{ "sources", required_argument, NULL, 'S' },
		{ "server-pid", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "perf-control", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct options){ .mode = "echo",
			       .host = "127.0.0.1",
			       .path = "/ws?token=alice-secret",
			       .channel = "bench",
			       .device_prefix = "b",
			       .connections = 100,
			       .inflight = 1,
			       .size = 32,
			       .window = 64,
			       .subscribers = 100,
			       .duration = 10 };
	o->server.sin_family = AF_INET;
	o->server.sin_port = htons(8080);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			o->mode = optarg;
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			o->server.sin_port = htons((uint16_t)parse_count("port", optarg, 1, 65535));
			break;
		case 'P':
			o->path = optarg;
			break;
		case 'e':
			if (strcmp(optarg, "wsgate") && strcmp(optarg, "echo"))
				die("--peer must be wsgate or echo");
			o->peer = strcmp(optarg, "wsgate") ? PEER_ECHO : PEER_WSGATE;
			break;
		case 'r':
			o->raw_tcp = true;
			break;
		case 't':
			o->text_ping = true;
			break;
		case 'u':
			if (strcmp(optarg, "api") && strcmp(optarg, "ws"))
				die("--publisher must be api or ws");
			o->publisher = strcmp(optarg, "api") ? PUBLISHER_WS : PUBLISHER_API;
			break;
		case 'c':
			o->connections = parse_count("connections", optarg, 1, 1000000);
			break;
		case 'k':
			o->inflight = parse_count("inflight", optarg, 1, 1 << 20);
			break;
		case 's':
			o->size = parse_count("size", optarg, 1, MAX_FRAME_PAYLOAD / 2);
			break;
		case 'w':
			o->window = parse_count("window", optarg, 1, 100000);
			break;
		case 'n':
			o->subscribers = parse_count("subscribers", optarg, 1, 1000000);
			break;
		case 'C':
			o->channel = optarg;
			break;
		case 'N':
			o->channels = parse_count("channels", optarg, 0, 1000000);
			break;
		case 'a':
			o->api_key = optarg;
			break;
		case 'R':
			o->rate = parse_seconds("rate", optarg, 0, 1e7);
			break;
		case 'D':
			o->device_prefix = optarg;
			break;
		case 'S':
			parse_sources(o, optarg);
			break;
		case 'i':
			o->server_pid = (pid_t)parse_count("server-pid", optarg, 1, 1u << 30);
			break;
		case 'd':
			o->duration = parse_seconds("duration", optarg, 0.1, MAX_DURATION_S);
			break;
		case 'j':
			o->json_path = optarg;
			break;
		case 'f':
			o->perf_control = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!parse_loopback(o->host, &o->server.sin_addr))
		die("--host '%s' is not a loopback IPv4 address (127.0.0.0/8); wsgate-bench only loads loopback",
		    o->host);
	if (o->raw_tcp && strcmp(o->mode, "echo"))
		die("--raw-tcp goes with --mode echo only");
	if (o->text_ping && strcmp(o->mode, "echo"))
		die("--text-ping goes with --mode echo only");
	if (!strcmp(o->mode, "fanout") && o->publisher == PUBLISHER_API && (!o->api_key || o->peer != PEER_WSGATE))
		die("--mode fanout --publisher api needs --api-key and a wsgate peer");
	if (!strcmp(o->mode, "idle") && !o->server_pid)
		die("--mode idle needs --server-pid");
	if (o->channels && strcmp(o->mode, "idle"))
		die("--channels goes with --mode idle only");
}

/* ---- connections ---- */

enum conn_kind {
	CONN_WS, /* RFC 6455 client */
	CONN_RAW /* plain TCP bytes: the raw echo, and the HTTP publisher */
};

enum conn_state {
	CS_FREE,
	CS_CONNECTING, /* non-blocking connect() in progress */
	CS_UPGRADING,  /* upgrade request sent, waiting for 101 */
	CS_OPEN,       /* frames flow; 'ready' once the peer's welcome (if any) arrived */
	CS_CLOSING     /* our close frame is sent; waiting for the server's (RFC 6455 7.1.2) */
};

/* One request whose reply has not come back yet (echo mode matches replies in order). */
struct pending_request {
	uint64_t id;
	uint64_t sent_ns;
	size_t len;
};

struct conn {
	int fd;
	uint32_t generation; /* tells stale epoll events for a reused slot apart */
	enum conn_kind kind;
	enum conn_state state;
	bool ready;	 /* the mode may use it: upgraded and welcomed */
	bool subscribed; /* fanout, idle --channels: the subscribe was answered */
	uint64_t started_ns;
	char accept[32]; /* the Sec-WebSocket-Accept the server must answer */
	struct buf in;	 /* received bytes not consumed yet (partial frame or response) */
	struct buf out;	 /* bytes not yet accepted by the kernel */
	struct buf msg;	 /* a fragmented message being reassembled */
	bool in_fragmented_message;
	struct pending_request *ring; /* echo: requests in flight, oldest first */
	unsigned ring_head, ring_len;
	uint64_t next_id;
	size_t raw_received; /* raw echo: bytes of the oldest reply received so far */
};

struct bench;

/* What a mode does at each step of a connection's life; the core does the rest. */
struct mode {
	const char *name;
	void (*start)(struct bench *b);
	void (*on_ready)(struct bench *b, struct conn *c);
	void (*on_message)(struct bench *b, struct conn *c, const uint8_t *data, size_t len);
	size_t (*on_raw)(struct bench *b, struct conn *c, const uint8_t *data, size_t len); /* returns bytes used */
	void (*on_closed)(struct bench *b, struct conn *c);
	void (*on_tick)(struct bench *b, uint64_t now);
	void (*on_deadline)(struct bench *b);
	void (*report)(struct bench *b, struct result *r);
};

struct counters {
	uint64_t connect_errors;   /* connect() failed (EADDRNOTAVAIL: out of ephemeral ports) */
	uint64_t handshake_errors; /* status not 101, wrong Sec-WebSocket-Accept, no welcome */
	uint64_t protocol_errors;  /* malformed frames from the server */
	uint64_t server_closes;	   /* the server started the close (a refusal, 4001, 4109 ...) */
	uint64_t eof_closes;	   /* TCP ended without a close frame */
	uint64_t clean_closes;	   /* our close 1000 answered by the server's close */
	uint64_t unclean_closes;   /* still open when the close grace ran out */
	uint64_t pings_answered;   /* server pings echoed in a pong (wsgate's heartbeat) */
	uint64_t no_welcome;	   /* upgraded, no welcome after 1 s: not wsgate (--peer echo?) */
	unsigned last_close_code;
	unsigned last_status;
};

struct echo_state {
	uint64_t replies, bad_replies;
	struct hist rtt;
};

struct handshake_state {
	uint64_t handshakes;
	struct hist latency;
};

struct fanout_state {
	struct conn *publisher;
	uint64_t subscribed, subscribe_errors;
	unsigned last_api_status;
	unsigned unacked; /* publishes sent and not acknowledged yet */
	uint64_t next_due_ns, interval_ns;
	uint64_t publishes, acks, acked_delivered, deliveries, bad_responses, reconnects;
	uint64_t accepted; /* acks without a count: a wsgate cluster handed the publish to Redis */
	struct hist latency;
};

struct idle_state {
	long rss_before_kb, rss_open_kb, rss_end_kb;
	/* --channels: subscribes sent, acked, refused, unanswered when their session ended */
	uint64_t subscribes, subscribed, subscribe_errors, unanswered;
};

enum phase { PHASE_RUN, PHASE_CLOSING };

struct bench {
	struct options opt;
	const struct mode *mode;
	int epoll_fd;
	enum phase phase;
	struct conn *conns;
	unsigned conn_cap;
	unsigned *free_slots;
	unsigned free_count;
	unsigned live;	       /* connections holding a socket */
	unsigned not_ready;    /* connecting, upgrading or waiting for the welcome */
	uint64_t target;       /* connections the opener should make */
	uint64_t opened;       /* connections the opener made */
	uint64_t ready_total;  /* connections that became ready */
	uint64_t failed_total; /* connections that ended before ready */
	unsigned next_source;
	uint64_t rng;
	uint64_t t_start, deadline, close_deadline;
	uint64_t t_measure, t_measure_end; /* the window the rates are computed over */
	long long cpu_start, cpu_end;
	uint64_t wake_ns; /* a mode's next timed action, 0 for none */
	int perf_fd;	  /* --perf-control FIFO, -1 without */
	struct counters count;
	uint8_t *scratch; /* one outgoing message at a time */
	size_t scratch_cap;
	union {
		struct echo_state echo;
		struct handshake_state handshake;
		struct fanout_state fanout;
		struct idle_state idle;
	} m;
};

/* SIGINT ends the run early, as the deadline would: close, then report. */
static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t rng_next(struct bench *b)
{
	/* xorshift64*: masks and keys only need to be unpredictable to proxies, not secret */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ull;
}

static uint64_t epoll_tag(const struct bench *b, const struct conn *c)
{
	return (uint64_t)(c - b->conns) | (uint64_t)c->generation << 32;
}

static bool conn_is_live(const struct conn *c, uint32_t generation)
{
	return c->state != CS_FREE && c->generation == generation;
}

/* Starts the measurement window: rates and server CPU are counted from here. */
static void perf_control(struct bench *b, const char *command)
{
	if (b->perf_fd >= 0 && write(b->perf_fd, command, strlen(command)) < 0)
		die("--perf-control: %s", strerror(errno));
}

static void measure_begin(struct bench *b)
{
	if (b->t_measure)
		return;
	b->t_measure = now_ns();
	if (b->phase == PHASE_RUN) {
		b->deadline = b->t_measure + (uint64_t)(b->opt.duration * 1e9);
		b->close_deadline = b->deadline + CLOSE_GRACE_NS;
	}
	if (b->opt.server_pid)
		b->cpu_start = proc_cpu_ticks(b->opt.server_pid);
	perf_control(b, "enable\n");
}

static double measure_seconds(const struct bench *b)
{
	if (!b->t_measure || b->t_measure_end <= b->t_measure)
		return 0;
	return (double)(b->t_measure_end - b->t_measure) / 1e9;
}

static bool in_window(const struct bench *b)
{
	return b->t_measure && b->phase == PHASE_RUN;
}

/* All the connections the opener had to make are ready or gone. */
static bool all_settled(const struct bench *b)
{
	return b->ready_total + b->failed_total >= b->target;
}

static void conn_flush(struct bench *b, struct conn *c);
static void conn_finish(struct bench *b, struct conn *c);
static void conn_release(struct bench *b, struct conn *c);

/* ---- WebSocket framing (RFC 6455 5.2) ---- */

/* XOR src with the 4-byte mask into dst, 8 bytes at a time (RFC 6455 5.3). */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4])
{
	uint64_t key8;
	size_t i = 0;

	memcpy(&key8, key, 4);
	memcpy((uint8_t *)&key8 + 4, key, 4);
	for (; i + 8 <= len; i += 8) {
		uint64_t v;

		memcpy(&v, src + i, 8);
		v ^= key8;
		memcpy(dst + i, &v, 8);
	}
	for (; i < len; i++)
		dst[i] = src[i] ^ key[i & 3];
}

/* Queues one masked frame; clients must mask every frame (RFC 6455 5.1). */
static void ws_queue_frame(struct bench *b, struct conn *c, enum ws_opcode op, const void *payload, size_t len)
{
	uint8_t *p = buf_reserve(&c->out, len + 14), key[4];
	uint32_t k = (uint32_t)rng_next(b);
	size_t h = 0;

	p[h++] = (uint8_t)(0x80 | op);
	if (len < 126) {
		p[h++] = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		p[h++] = 0x80 | 126;
		p[h++] = (uint8_t)(len >> 8);
		p[h++] = (uint8_t)len;
	} else {
		p[h++] = 0x80 | 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			p[h++] = (uint8_t)((uint64_t)len >> shift);
	}
	memcpy(key, &k, 4);
	memcpy(p + h, key, 4);
	h += 4;
	mask_copy(p + h, payload, len, key);
	c->out.len += h + len;
}

static void ws_send_text(struct bench *b, struct conn *c, const void *text, size_t len)
{
	ws_queue_frame(b, c, OP_TEXT, text, len);
}

/* Starts the closing handshake with 1000; the TCP close waits for the server's close frame. */
static void ws_start_close(struct bench *b, struct conn *c)
{
	static const uint8_t normal[2] = { 1000 >> 8, 1000 & 0xff };

	ws_queue_frame(b, c, OP_CLOSE, normal, sizeof(normal));
	c->state = CS_CLOSING;
}

struct ws_frame {
	bool fin;
	uint8_t opcode;
	const uint8_t *payload;
	size_t len;
};

/* Returns the frame's total size, 0 while incomplete, -1 when the server broke the framing. */
static long ws_parse_frame(const uint8_t *p, size_t avail, struct ws_frame *f)
{
	size_t h = 2;
	uint64_t len;

	if (avail < 2)
		return 0;
	/* servers never mask (5.1); no extension was negotiated, so RSV bits must be 0 (5.2) */
	if ((p[0] & 0x70) || (p[1] & 0x80))
		return -1;
	f->fin = p[0] & 0x80;
	f->opcode = p[0] & 0x0f;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (avail < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		if (avail < 10)
			return 0;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | p[i];
		h = 10;
	}
	if (len > MAX_FRAME_PAYLOAD || (f->opcode >= OP_CLOSE && (len > 125 || !f->fin)))
		return -1;
	if (avail < h + len)
		return 0;
	f->payload = p + h;
	f->len = (size_t)len;
	return (long)(h + len);
}

static void conn_become_ready(struct bench *b, struct conn *c);

static void ws_deliver_message(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	static const char welcome[] = "{\"type\":\"welcome\"";

	if (c->state != CS_OPEN)
		return; /* after our close frame, late replies are not counted */
	if (c->ready) {
		if (b->phase == PHASE_RUN)
			b->mode->on_message(b, c, data, len);
		return;
	}
	/* a wsgate session starts with its welcome; anything else means the admission failed */
	if (len < sizeof(welcome) - 1 || memcmp(data, welcome, sizeof(welcome) - 1)) {
		b->count.handshake_errors++;
		ws_start_close(b, c);
		return;
	}
	conn_become_ready(b, c);
}

/* The server closed: answer with its code (RFC 6455 5.5.1) and end the connection. */
static void ws_on_close_frame(struct bench *b, struct conn *c, const struct ws_frame *f)
{
	uint32_t generation = c->generation;

	if (c->state == CS_CLOSING) {
		b->count.clean_closes++;
	} else {
		b->count.server_closes++;
		b->count.last_close_code = f->len >= 2 ? (unsigned)(f->payload[0] << 8 | f->payload[1]) : 1005;
		ws_queue_frame(b, c, OP_CLOSE, f->payload, f->len >= 2 ? 2 : 0);
		conn_flush(b, c);
		if (!conn_is_live(c, generation))
			return; /* the send failed and already ended it */
	}
	conn_finish(b, c);
}

/* Handles one frame; returns -1 when the connection ended. */
static int ws_on_frame(struct bench *b, struct conn *c, const struct ws_frame *f)
{
	switch (f->opcode) {
	case OP_PING:
		/* wsgate checks that the pong carries its ping's payload (RFC 6455 5.5.3) */
		if (c->state == CS_OPEN) {
			ws_queue_frame(b, c, OP_PONG, f->payload, f->len);
			b->count.pings_answered++;
		}
		return 0;
	case OP_PONG:
		return 0;
	case OP_CLOSE:
		ws_on_close_frame(b, c, f);
		return -1;
	case OP_TEXT:
	case OP_BINARY:
		if (c->in_fragmented_message)
			break;
		if (f->fin) {
			ws_deliver_message(b, c, f->payload, f->len);
			return 0;
		}
		c->in_fragmented_message = true;
		c->msg.len = 0;
		buf_append(&c->msg, f->payload, f->len);
		return 0;
	case OP_CONT:
		if (!c->in_fragmented_message)
			break;
		buf_append(&c->msg, f->payload, f->len);
		if (f->fin) {
			c->in_fragmented_message = false;
			ws_deliver_message(b, c, c->msg.data, c->msg.len);
		}
		return 0;
	}
	b->count.protocol_errors++;
	conn_finish(b, c);
	return -1;
}

/* Consumes whole frames; returns the bytes used, or -1 when the connection ended. */
static long ws_consume(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	size_t used = 0;
	uint32_t generation = c->generation;

	while (used < len) {
		struct ws_frame f;
		long n = ws_parse_frame(data + used, len - used, &f);

		if (n == 0)
			break;
		if (n < 0) {
			b->count.protocol_errors++;
			conn_finish(b, c);
			return -1;
		}
		if (ws_on_frame(b, c, &f) < 0 || !conn_is_live(c, generation))
			return -1;
		used += (size_t)n;
	}
	return (long)used;
}

/* ---- the opening handshake (RFC 6455 4.1) ---- */

static void base64(const uint8_t *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void ws_queue_upgrade(struct bench *b, struct conn *c, uint64_t number)
{
	uint8_t nonce[16], digest[SHA_DIGEST_LENGTH];
	char key[32], keyguid[64];
	const struct options *o = &b->opt;
	int n;

	for (int i = 0; i < 16; i += 8) {
		uint64_t r = rng_next(b);

		memcpy(nonce + i, &r, 8);
	}
	base64(nonce, sizeof(nonce), key);
	n = snprintf(keyguid, sizeof(keyguid), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)keyguid, (size_t)n, digest);
	base64(digest, sizeof(digest), c->accept);
	/* one session per (user, device) in wsgate: every connection gets its own device id */
	n = snprintf((char *)buf_reserve(&c->out, 1024), 1024,
		     "GET %s%cdevice=%s%" PRIu64 " HTTP/1.1\r\n"
		     "Host: %s:%u\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     o->path, strchr(o->path, '?') ? '&' : '?', o->device_prefix, number, o->host,
		     ntohs(o->server.sin_port), key);
	if (n < 0 || n >= 1024)
		die("--path too long");
	c->out.len += (size_t)n;
}

/* Finds header 'name' (case-insensitive) in a response head; returns its trimmed value. */
static const char *http_header(const char *head, const char *name, size_t *value_len)
{
	size_t name_len = strlen(name);

	for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, name, name_len) && line[name_len] == ':') {
			const char *v = line + name_len + 1, *end = strstr(v, "\r\n");

			while (*v == ' ' || *v == '\t')
				v++;
			*value_len = (size_t)(end - v);
			while (*value_len && (v[*value_len - 1] == ' ' || v[*value_len - 1] == '\t'))
				(*value_len)--;
			return v;
		}
	}
	return NULL;
}

/* The length of a complete response head, with its "\r\n\r\n", or 0 while incomplete. */
static size_t http_head_len(const uint8_t *data, size_t len)
{
	const uint8_t *end = memmem(data, len, "\r\n\r\n", 4);

	return end ? (size_t)(end - data) + 4 : 0;
}

static unsigned http_status(const char *head)
{
	unsigned status = 0;

	return sscanf(head, "HTTP/1.%*1[01] %u", &status) == 1 ? status : 0;
}

/* Checks the 101 and Sec-WebSocket-Accept; returns the head's size, 0 to wait, -1 when the upgrade failed. */
static long ws_check_upgrade(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	size_t head_len = http_head_len(data, len), accept_len;
	const char *accept;
	char *head;
	bool ok;

	if (!head_len)
		return len > 16384 ? -1 : 0;
	head = strndup((const char *)data, head_len);
	if (!head)
		die("out of memory");
	b->count.last_status = http_status(head);
	accept = http_header(head, "Sec-WebSocket-Accept", &accept_len);
	ok = b->count.last_status == 101 && accept && accept_len == strlen(c->accept) &&
	     !memcmp(accept, c->accept, accept_len);
	free(head);
	return ok ? (long)head_len : -1;
}

/* ---- connection lifecycle ---- */

static struct conn *conn_alloc(struct bench *b)
{
	struct conn *c;

	if (!b->free_count)
		return NULL;
	c = &b->conns[b->free_slots[--b->free_count]];
	c->generation++;
	c->in.len = c->out.len = c->msg.len = 0;
	c->in_fragmented_message = c->ready = c->subscribed = false;
	c->ring_head = c->ring_len = 0;
	c->next_id = 0;
	c->raw_received = 0;
	return c;
}

/* Opens a non-blocking connection; the handshake goes on in the event loop. */
static struct conn *conn_open(struct bench *b, enum conn_kind kind, uint64_t number)
{
	const struct options *o = &b->opt;
	struct conn *c = conn_alloc(b);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	int one = 1;

	if (!c)
		return NULL;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (raise the open-file limit or use fewer connections)", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->source_count) {
		struct sockaddr_in src = { .sin_family = AF_INET,
					   .sin_addr = o->sources[b->next_source++ % (unsigned)o->source_count] };

		/* the port is then picked at connect(), per destination, not per source address */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)))
			die("bind %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
	}
	c->kind = kind;
	c->state = CS_CONNECTING;
	c->started_ns = now_ns();
	b->live++;
	b->not_ready++;
	if (connect(c->fd, (const struct sockaddr *)&o->server, sizeof(o->server)) && errno != EINPROGRESS) {
		/* no conn_finish: its opener call would recurse while connect() keeps failing */
		b->count.connect_errors++;
		conn_release(b, c);
		return NULL;
	}
	if (kind == CONN_WS)
		ws_queue_upgrade(b, c, number);
	ev.data.u64 = epoll_tag(b, c);
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	return c;
}

/* Keeps up to --window connections in their handshake until 'target' were opened. */
static void open_more(struct bench *b)
{
	enum conn_kind kind = b->opt.raw_tcp ? CONN_RAW : CONN_WS;

	while (b->phase == PHASE_RUN && b->not_ready < b->opt.window && b->opened < b->target)
		if (!conn_open(b, kind, b->opened++))
			break;
}

static void conn_become_ready(struct bench *b, struct conn *c)
{
	c->ready = true;
	b->not_ready--;
	b->ready_total++;
	if (b->phase != PHASE_RUN) {
		if (c->kind == CONN_WS)
			ws_start_close(b, c);
		return;
	}
	b->mode->on_ready(b, c);
	open_more(b);
}

/* Closes the socket and returns the slot. */
static void conn_release(struct bench *b, struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	if (!c->ready) {
		b->not_ready--;
		b->failed_total++;
	}
	c->state = CS_FREE;
	b->live--;
	b->free_slots[b->free_count++] = (unsigned)(c - b->conns);
}

/* Ends a connection: the mode hears of it first, then the opener may reuse the slot. */
static void conn_finish(struct bench *b, struct conn *c)
{
	if (b->mode->on_closed)
		b->mode->on_closed(b, c);
	conn_release(b, c);
	open_more(b);
}

static void conn_flush(struct bench *b, struct conn *c)
{
	size_t sent = 0;

	while (sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + sent, c->out.len - sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			b->count.eof_closes++;
			conn_finish(b, c);
			return;
		}
		sent += (size_t)n;
	}
	buf_consume(&c->out, sent);
}

static void conn_on_connected(struct bench *b, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		b->count.connect_errors++;
		conn_finish(b, c);
		return;
	}
	if (c->kind == CONN_RAW) {
		c->state = CS_OPEN;
		conn_become_ready(b, c);
		return;
	}
	c->state = CS_UPGRADING;
}

/* Feeds received bytes to the state machine; returns bytes used, -1 when the connection ended. */
static long conn_consume(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	long head, more;

	if (c->kind == CONN_RAW)
		return (long)b->mode->on_raw(b, c, data, len);
	if (c->state != CS_UPGRADING)
		return ws_consume(b, c, data, len);
	head = ws_check_upgrade(b, c, data, len);
	if (head <= 0) {
		if (head < 0) {
			b->count.handshake_errors++;
			conn_finish(b, c);
		}
		return head;
	}
	c->state = CS_OPEN;
	if (b->opt.peer == PEER_ECHO)
		conn_become_ready(b, c); /* no welcome to wait for */
	more = ws_consume(b, c, data + head, len - (size_t)head);
	return more < 0 ? -1 : head + more;
}

/* Processes newly received bytes, keeping an incomplete tail in c->in. */
static void conn_feed(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	bool buffered = c->in.len > 0;
	long used;

	if (buffered) {
		buf_append(&c->in, data, len);
		data = c->in.data;
		len = c->in.len;
	}
	used = conn_consume(b, c, data, len);
	if (used < 0)
		return;
	if (buffered)
		buf_consume(&c->in, (size_t)used);
	else
		buf_append(&c->in, data + used, len - (size_t)used);
}

static void conn_on_readable(struct bench *b, struct conn *c, uint8_t *rx)
{
	uint32_t generation = c->generation;

	/* edge-triggered: read until the socket is empty */
	while (conn_is_live(c, generation)) {
		ssize_t n = recv(c->fd, rx, RX_CHUNK, 0);

		if (n > 0) {
			conn_feed(b, c, rx, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (c->kind == CONN_WS || b->phase == PHASE_RUN)
			b->count.eof_closes++;
		conn_finish(b, c);
	}
}

static void conn_on_event(struct bench *b, uint64_t tag, uint32_t events, uint8_t *rx)
{
	struct conn *c = &b->conns[(uint32_t)tag];
	uint32_t generation = (uint32_t)(tag >> 32);

	if (!conn_is_live(c, generation))
		return; /* the slot was reused after this event was queued */
	if (c->state == CS_CONNECTING) {
		conn_on_connected(b, c);
		if (!conn_is_live(c, generation))
			return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_on_readable(b, c, rx);
	if (conn_is_live(c, generation))
		conn_flush(b, c);
}

/* ---- the run ---- */

static void enter_closing(struct bench *b)
{
	b->phase = PHASE_CLOSING;
	b->t_measure_end = now_ns();
	if (b->opt.server_pid && b->t_measure)
		b->cpu_end = proc_cpu_ticks(b->opt.server_pid);
	if (b->t_measure)
		perf_control(b, "disable\n");
	if (b->mode->on_deadline)
		b->mode->on_deadline(b);
	for (unsigned i = 0; i < b->conn_cap; i++) {
		struct conn *c = &b->conns[i];

		if (c->state == CS_FREE)
			continue;
		if (c->kind == CONN_RAW) {
			conn_finish(b, c);
		} else if (c->state == CS_OPEN) {
			/* connections still in their handshake are closed once they are up */
			b->count.no_welcome += !c->ready && b->t_measure_end - c->started_ns > WELCOME_TIMEOUT_NS;
			ws_start_close(b, c);
			conn_flush(b, c);
		}
	}
}

static void abort_remaining(struct bench *b)
{
	for (unsigned i = 0; i < b->conn_cap; i++)
		if (b->conns[i].state != CS_FREE) {
			b->count.unclean_closes++;
			conn_finish(b, &b->conns[i]);
		}
}

static int next_timeout_ms(const struct bench *b, uint64_t now)
{
	uint64_t until = b->phase == PHASE_RUN ? b->deadline : b->close_deadline;

	if (b->wake_ns && b->wake_ns < until)
		until = b->wake_ns;
	if (until <= now)
		return 0;
	return (int)((until - now + 999999) / 1000000);
}

static void run(struct bench *b)
{
	static uint8_t rx[RX_CHUNK];
	struct epoll_event events[512];

	b->t_start = now_ns();
	/* until the measurement begins (every connection up), setup has SETUP_LIMIT_NS more */
	b->deadline = b->t_start + SETUP_LIMIT_NS + (uint64_t)(b->opt.duration * 1e9);
	b->close_deadline = b->deadline + CLOSE_GRACE_NS;
	b->mode->start(b);
	open_more(b);
	for (;;) {
		uint64_t now = now_ns();
		int n;

		if (b->phase == PHASE_RUN && (now >= b->deadline || stop_requested))
			enter_closing(b);
		if (b->phase == PHASE_CLOSING && (!b->live || now >= b->close_deadline))
			break;
		n = epoll_wait(b->epoll_fd, events, (int)(sizeof(events) / sizeof(events[0])), next_timeout_ms(b, now));
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			conn_on_event(b, events[i].data.u64, events[i].events, rx);
		if (b->mode->on_tick && b->phase == PHASE_RUN)
			b->mode->on_tick(b, now_ns());
	}
	abort_remaining(b);
}

/* Fills b->scratch with len bytes (grown as needed) and returns it. */
static uint8_t *scratch(struct bench *b, size_t len)
{
	if (len > b->scratch_cap) {
		b->scratch = realloc(b->scratch, len);
		if (!b->scratch)
			die("out of memory");
		b->scratch_cap = len;
	}
	return b->scratch;
}

/* ---- mode: echo ---- */

/* {"type":"ping","id":N,"pad":"xxx"} padded to --size bytes (longer when --size is too small) */
static size_t echo_build_request(struct bench *b, uint64_t id, uint8_t **out)
{
	static uint8_t ping[] = "ping";
	char head[64];
	int n = snprintf(head, sizeof(head), "{\"type\":\"ping\",\"id\":%" PRIu64 ",\"pad\":\"", id);
	size_t pad = b->opt.size > (size_t)n + 2 ? b->opt.size - (size_t)n - 2 : 0;
	uint8_t *p;

	if (b->opt.text_ping) {
		*out = ping;
		return 4;
	}
	p = scratch(b, (size_t)n + pad + 2);

	memcpy(p, head, (size_t)n);
	memset(p + n, 'x', pad);
	memcpy(p + (size_t)n + pad, "\"}", 2);
	*out = p;
	return (size_t)n + pad + 2;
}

static void echo_send_request(struct bench *b, struct conn *c)
{
	struct pending_request *r = &c->ring[(c->ring_head + c->ring_len++) % b->opt.inflight];
	uint8_t *msg;

	r->id = c->next_id++;
	r->len = echo_build_request(b, r->id, &msg);
	r->sent_ns = now_ns();
	if (c->kind == CONN_RAW)
		buf_append(&c->out, msg, r->len);
	else
		ws_send_text(b, c, msg, r->len);
}

/* wsgate answers {"type":"pong","id":N}; an echo peer returns the request itself. */
static bool echo_reply_matches(struct bench *b, const struct pending_request *r, const uint8_t *data, size_t len)
{
	uint8_t *expected;
	char pong[64];
	size_t n;

	if (b->opt.peer == PEER_WSGATE && b->opt.text_ping)
		return len == 4 && !memcmp(data, "pong", 4);
	if (b->opt.peer == PEER_WSGATE) {
		n = (size_t)snprintf(pong, sizeof(pong), "{\"type\":\"pong\",\"id\":%" PRIu64 "}", r->id);
		return len == n && !memcmp(data, pong, n);
	}
	n = echo_build_request(b, r->id, &expected);
	return len == n && !memcmp(data, expected, n);
}

/* The oldest request got its reply: record it and keep K in flight. */
static void echo_complete(struct bench *b, struct conn *c, bool ok)
{
	struct pending_request *r = &c->ring[c->ring_head];
	uint64_t now = now_ns();

	c->ring_head = (c->ring_head + 1) % b->opt.inflight;
	c->ring_len--;
	if (in_window(b) && r->sent_ns >= b->t_measure) {
		b->m.echo.replies++;
		hist_add(&b->m.echo.rtt, now - r->sent_ns);
	}
	if (!ok)
		b->m.echo.bad_replies++;
	echo_send_request(b, c);
}

static void echo_on_ready(struct bench *b, struct conn *c)
{
	if (!c->ring) {
		c->ring = calloc(b->opt.inflight, sizeof(*c->ring));
		if (!c->ring)
			die("out of memory");
	}
	for (unsigned i = 0; i < b->opt.inflight; i++)
		echo_send_request(b, c);
	if (all_settled(b))
		measure_begin(b);
}

static void echo_on_message(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	if (!c->ring_len) {
		b->m.echo.bad_replies++; /* a message nobody asked for */
		return;
	}
	echo_complete(b, c, echo_reply_matches(b, &c->ring[c->ring_head], data, len));
}

/* Raw TCP has no message boundaries: every request's length of bytes is one reply. */
static size_t echo_on_raw(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	(void)data;
	c->raw_received += len;
	while (c->ring_len && c->raw_received >= c->ring[c->ring_head].len) {
		c->raw_received -= c->ring[c->ring_head].len;
		echo_complete(b, c, true);
	}
	return len;
}

static void echo_on_closed(struct bench *b, struct conn *c)
{
	(void)c;
	if (!b->t_measure && all_settled(b))
		measure_begin(b); /* failures count as settled, so a partial run still measures */
}

static void echo_start(struct bench *b)
{
	b->target = b->opt.connections;
}

static void echo_report(struct bench *b, struct result *r)
{
	double secs = measure_seconds(b);

	result_int(r, "connections", b->opt.connections);
	result_int(r, "inflight", b->opt.inflight);
	result_int(r, "size", b->opt.text_ping ? 4 : b->opt.size);
	result_str(r, "payload", b->opt.text_ping ? "text-ping" : "json");
	result_num(r, "msgs_per_s", secs > 0 ? (double)b->m.echo.replies / secs : 0);
	result_latency(r, "rtt", &b->m.echo.rtt);
	result_int(r, "replies", b->m.echo.replies);
	result_int(r, "bad_replies", b->m.echo.bad_replies);
}

/* ---- mode: handshake ---- */

static void handshake_start(struct bench *b)
{
	b->target = UINT64_MAX; /* keep opening until the deadline */
	measure_begin(b);
}

static void handshake_on_ready(struct bench *b, struct conn *c)
{
	b->m.handshake.handshakes++;
	hist_add(&b->m.handshake.latency, now_ns() - c->started_ns);
	ws_start_close(b, c);
}

static bool starts_with(const uint8_t *data, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && !memcmp(data, prefix, n);
}

/* handshake mode expects nothing after the welcome; anything else is ignored */
static void ignore_message(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	(void)b, (void)c, (void)data, (void)len;
}

static void handshake_report(struct bench *b, struct result *r)
{
	double secs = measure_seconds(b);

	result_int(r, "window", b->opt.window);
	result_num(r, "handshakes_per_s", secs > 0 ? (double)b->m.handshake.handshakes / secs : 0);
	result_latency(r, "upgrade", &b->m.handshake.latency);
	result_int(r, "handshakes", b->m.handshake.handshakes);
}

/* ---- mode: idle ---- */

static void idle_start(struct bench *b)
{
	b->target = b->opt.connections;
	b->m.idle.rss_before_kb = proc_rss_kb(b->opt.server_pid);
	if (b->m.idle.rss_before_kb < 0)
		die("cannot read /proc/%d/status", (int)b->opt.server_pid);
}

static void idle_on_settled(struct bench *b)
{
	const struct idle_state *s = &b->m.idle;

	if (b->t_measure || !all_settled(b))
		return;
	/* --channels: every session that became ready has its subscribe answered (or is gone) */
	if (b->opt.channels && s->subscribed + s->subscribe_errors + s->unanswered < b->ready_total)
		return;
	b->m.idle.rss_open_kb = proc_rss_kb(b->opt.server_pid);
	measure_begin(b);
	/* a driver (scripts/bench.py) waits for this line to start its own window */
	fprintf(stderr, "wsgate-bench: idle: %" PRIu64 " sessions open after %.2f s\n", b->ready_total,
		(double)(b->t_measure - b->t_start) / 1e9);
	fflush(stderr);
}

static void idle_on_ready(struct bench *b, struct conn *c)
{
	char msg[192];
	int n;

	if (b->opt.channels) {
		n = snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%s.%" PRIu64 "\"}",
			     b->opt.channel, b->m.idle.subscribes++ % b->opt.channels);
		if (n < 0 || n >= (int)sizeof(msg))
			die("--channel too long");
		ws_send_text(b, c, msg, (size_t)n);
		return; /* open once answered */
	}
	idle_on_settled(b);
}

/* --channels: the subscribe's answer; anything else (no publishes come) is ignored */
static void idle_on_message(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	struct idle_state *s = &b->m.idle;

	if (!b->opt.channels || c->subscribed)
		return;
	c->subscribed = true;
	if (starts_with(data, len, "{\"type\":\"ack\""))
		s->subscribed++;
	else
		s->subscribe_errors++; /* e.g. forbidden: the token may not subscribe to NAME.k */
	idle_on_settled(b);
}

static void idle_on_closed(struct bench *b, struct conn *c)
{
	if (b->opt.channels && c->ready && !c->subscribed) {
		c->subscribed = true;
		b->m.idle.unanswered++;
	}
	idle_on_settled(b);
}

static void idle_on_deadline(struct bench *b)
{
	b->m.idle.rss_end_kb = proc_rss_kb(b->opt.server_pid);
	if (!b->t_measure)
		b->m.idle.rss_open_kb = b->m.idle.rss_end_kb; /* still opening: per session of those open */
}

static void idle_report(struct bench *b, struct result *r)
{
	const struct idle_state *s = &b->m.idle;
	uint64_t open = b->ready_total;

	result_int(r, "sessions", open);
	result_int(r, "all_open", b->t_measure != 0);
	result_num(r, "open_s", b->t_measure ? (double)(b->t_measure - b->t_start) / 1e9 : measure_seconds(b));
	result_int(r, "rss_before_kb", (uint64_t)s->rss_before_kb);
	result_int(r, "rss_open_kb", (uint64_t)(s->rss_open_kb > 0 ? s->rss_open_kb : 0));
	result_int(r, "rss_end_kb", (uint64_t)(s->rss_end_kb > 0 ? s->rss_end_kb : 0));
	result_num(r, "rss_per_session_b",
		   open && s->rss_open_kb > 0 ? (double)(s->rss_open_kb - s->rss_before_kb) * 1024.0 / (double)open
					      : 0);
	result_num(r, "held_s", measure_seconds(b));
	if (b->opt.channels) {
		result_int(r, "channels", b->opt.channels);
		result_int(r, "subscribed", s->subscribed);
		result_int(r, "subscribe_errors", s->subscribe_errors);
		result_int(r, "subscribes_unanswered", s->unanswered);
	}
}

/* ---- mode: fanout ---- */

static void fanout_start(struct bench *b)
{
	b->target = b->opt.subscribers;
	if (b->opt.rate > 0)
		b->m.fanout.interval_ns = (uint64_t)(1e9 / b->opt.rate);
}

/* The publish timestamp (CLOCK_MONOTONIC ns) travels in the payload: each delivery's latency. */
static void fanout_publish(struct bench *b, uint64_t now)
{
	struct fanout_state *s = &b->m.fanout;
	struct conn *p = s->publisher;
	char body[192];
	int body_len, n;

	if (b->opt.publisher == PUBLISHER_WS) {
		body_len = snprintf(body, sizeof(body),
				    "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":{\"t\":%" PRIu64 "}}",
				    b->opt.channel, now_ns());
		if (body_len < 0 || body_len >= (int)sizeof(body))
			die("--channel too long");
		ws_send_text(b, p, body, (size_t)body_len);
		goto sent;
	}
	body_len = snprintf(body, sizeof(body), "{\"channel\":\"%s\",\"data\":{\"t\":%" PRIu64 "}}", b->opt.channel,
			    now_ns());
	if (body_len < 0 || body_len >= (int)sizeof(body))
		die("--channel too long");
	n = snprintf((char *)buf_reserve(&p->out, 512 + (size_t)body_len), 512 + (size_t)body_len,
		     "POST /api/publish HTTP/1.1\r\n"
		     "Host: %s:%u\r\n"
		     "Authorization: Bearer %s\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %d\r\n\r\n%s",
		     b->opt.host, ntohs(b->opt.server.sin_port), b->opt.api_key, body_len, body);

	if (n < 0 || n >= 512 + body_len)
		die("--api-key or --channel too long");
	p->out.len += (size_t)n;
sent:
	s->publishes++;
	s->unacked++;
	s->next_due_ns = s->interval_ns ? (s->next_due_ns ? s->next_due_ns : now) + s->interval_ns : 0;
	b->wake_ns = 0;
	conn_flush(b, p);
}

/* HTTP/1.1 without pipelining: one API publish at a time; a WebSocket publisher keeps
 * up to --inflight publishes unacknowledged. */
static void fanout_maybe_publish(struct bench *b, uint64_t now)
{
	struct fanout_state *s = &b->m.fanout;
	unsigned window = b->opt.publisher == PUBLISHER_WS ? b->opt.inflight : 1;

	while (s->publisher && s->publisher->ready && s->unacked < window && b->phase == PHASE_RUN) {
		if (s->next_due_ns && now < s->next_due_ns) {
			b->wake_ns = s->next_due_ns;
			return;
		}
		fanout_publish(b, now); /* a failed send may end (and reopen) the publisher */
	}
}

static void fanout_open_publisher(struct bench *b)
{
	/* a WebSocket publisher is a session of its own: a device id after the subscribers' */
	b->m.fanout.unacked = 0;
	b->m.fanout.publisher = b->opt.publisher == PUBLISHER_WS
					? conn_open(b, CONN_WS, b->opt.subscribers + b->m.fanout.reconnects)
					: conn_open(b, CONN_RAW, 0);
	if (!b->m.fanout.publisher)
		die("cannot connect the publisher");
}

static void fanout_on_settled(struct bench *b)
{
	const struct fanout_state *s = &b->m.fanout;

	/* every subscriber answered (ack or error) or is gone: publishing can start */
	if (!s->publisher && b->phase == PHASE_RUN &&
	    s->subscribed + s->subscribe_errors + b->failed_total >= b->target)
		fanout_open_publisher(b);
}

static void fanout_on_ready(struct bench *b, struct conn *c)
{
	char msg[192];
	int n;

	if (c == b->m.fanout.publisher) {
		if (!b->t_measure) /* for a caller that samples other processes over the same window */
			fprintf(stderr, "wsgate-bench: fanout: %" PRIu64 " subscribed, publishing for %.1f s\n",
				b->m.fanout.subscribed, b->opt.duration);
		measure_begin(b);
		fanout_maybe_publish(b, now_ns());
		return;
	}
	n = snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%s\"}", b->opt.channel);
	ws_send_text(b, c, msg, (size_t)n);
}

/* Reads the number after "key": in a JSON text; false when absent. */
static bool json_uint(const uint8_t *data, size_t len, const char *key, uint64_t *out)
{
	char pattern[40];
	int n = snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	const uint8_t *p = memmem(data, len, pattern, (size_t)n), *end = data + len;

	if (!p)
		return false;
	p += n;
	if (p == end || *p < '0' || *p > '9')
		return false;
	for (*out = 0; p < end && *p >= '0' && *p <= '9'; p++)
		*out = *out * 10 + (uint64_t)(*p - '0');
	return true;
}

static void fanout_on_message(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	struct fanout_state *s = &b->m.fanout;
	uint64_t t, delivered;

	if (c == s->publisher) {
		/* wsgate: {"type":"ack","delivered":N}; node_broadcast.js answers the same. A wsgate
		 * cluster acks without the count ({"type":"ack"}): each node delivers its own */
		if (starts_with(data, len, "{\"type\":\"ack\"") && json_uint(data, len, "delivered", &delivered))
			s->acks++, s->acked_delivered += delivered;
		else if (starts_with(data, len, "{\"type\":\"ack\"") && !memmem(data, len, "\"delivered\"", 11))
			s->acks++, s->accepted++;
		else
			s->bad_responses++;
		if (s->unacked)
			s->unacked--;
		fanout_maybe_publish(b, now_ns());
		return;
	}
	/* wsgate delivers {"type":"message",...,"data":{"t":N},...}; a broadcast peer sends the
	 * publisher's own {"type":"publish",...,"data":{"t":N}} */
	if ((starts_with(data, len, "{\"type\":\"message\"") || starts_with(data, len, "{\"type\":\"publish\"")) &&
	    memmem(data, len, "\"data\":{\"t\":", 12) && json_uint(data, len, "t", &t)) {
		if (in_window(b) && t >= b->t_measure) {
			s->deliveries++;
			hist_add(&s->latency, now_ns() - t);
		}
	} else if (!c->subscribed && starts_with(data, len, "{\"type\":\"ack\"")) {
		c->subscribed = true;
		s->subscribed++;
		fanout_on_settled(b);
	} else if (!c->subscribed) {
		s->subscribe_errors++; /* e.g. forbidden: the token lacks subscribe permission */
		c->subscribed = true;
		fanout_on_settled(b);
	} else {
		s->bad_responses++;
	}
}

/* Parses whole HTTP responses to the publishes; returns the bytes used. */
static size_t fanout_on_raw(struct bench *b, struct conn *c, const uint8_t *data, size_t len)
{
	struct fanout_state *s = &b->m.fanout;
	size_t used = 0;

	for (;;) {
		size_t head_len = http_head_len(data + used, len - used), cl_len = 0, total;
		const char *cl;
		char *head;
		uint64_t delivered;
		unsigned status;
		size_t body_len;

		if (!head_len)
			break;
		head = strndup((const char *)data + used, head_len);
		if (!head)
			die("out of memory");
		status = http_status(head);
		cl = http_header(head, "Content-Length", &cl_len);
		body_len = cl ? strtoul(cl, NULL, 10) : 0;
		free(head);
		total = head_len + body_len;
		if (len - used < total)
			break;
		s->acks++;
		if (status == 200 && json_uint(data + used + head_len, body_len, "delivered", &delivered)) {
			s->acked_delivered += delivered;
		} else if (status == 202 && memmem(data + used + head_len, body_len, "\"accepted\":true", 15)) {
			s->accepted++; /* a wsgate cluster: handed to Redis, every node delivers its own */
		} else {
			s->bad_responses++;
			s->last_api_status = status;
		}
		used += total;
		if (s->unacked)
			s->unacked--;
	}
	(void)c;
	fanout_maybe_publish(b, now_ns());
	return used;
}

static void fanout_on_closed(struct bench *b, struct conn *c)
{
	if (c != b->m.fanout.publisher)
		return;
	b->m.fanout.publisher = NULL;
	if (b->phase == PHASE_RUN) {
		/* the server may end a keep-alive connection; a fresh one goes on publishing */
		b->m.fanout.reconnects++;
		fanout_open_publisher(b);
	}
}

static void fanout_on_tick(struct bench *b, uint64_t now)
{
	fanout_maybe_publish(b, now);
}

static void fanout_report(struct bench *b, struct result *r)
{
	const struct fanout_state *s = &b->m.fanout;
	double secs = measure_seconds(b);

	result_int(r, "subscribers", s->subscribed);
	result_str(r, "publisher", b->opt.publisher == PUBLISHER_WS ? "ws" : "api");
	result_num(r, "rate", b->opt.rate);
	result_num(r, "publishes_per_s", secs > 0 ? (double)s->publishes / secs : 0);
	result_num(r, "deliveries_per_s", secs > 0 ? (double)s->deliveries / secs : 0);
	result_latency(r, "delivery", &s->latency);
	result_int(r, "publishes", s->publishes);
	result_int(r, "acked_delivered", s->acked_delivered);
	result_int(r, "acks_accepted", s->accepted);
	result_int(r, "deliveries", s->deliveries);
	result_int(r, "subscribe_errors", s->subscribe_errors);
	result_int(r, "bad_responses", s->bad_responses);
	if (s->last_api_status)
		result_int(r, "last_api_status", s->last_api_status);
	result_int(r, "publisher_reconnects", s->reconnects);
}

static const struct mode modes[] = {
	{ .name = "echo",
	  .start = echo_start,
	  .on_ready = echo_on_ready,
	  .on_message = echo_on_message,
	  .on_raw = echo_on_raw,
	  .on_closed = echo_on_closed,
	  .report = echo_report },
	{ .name = "handshake",
	  .start = handshake_start,
	  .on_ready = handshake_on_ready,
	  .on_message = ignore_message,
	  .report = handshake_report },
	{ .name = "idle",
	  .start = idle_start,
	  .on_ready = idle_on_ready,
	  .on_message = idle_on_message,
	  .on_closed = idle_on_closed,
	  .on_deadline = idle_on_deadline,
	  .report = idle_report },
	{ .name = "fanout",
	  .start = fanout_start,
	  .on_ready = fanout_on_ready,
	  .on_message = fanout_on_message,
	  .on_raw = fanout_on_raw,
	  .on_closed = fanout_on_closed,
	  .on_tick = fanout_on_tick,
	  .report = fanout_report },
};

static void report(struct bench *b)
{
	const struct counters *n = &b->count;
	struct result r = { 0 };

	result_str(&r, "mode", b->mode->name);
	result_str(&r, "peer", b->opt.raw_tcp ? "raw-tcp" : b->opt.peer == PEER_WSGATE ? "wsgate" : "echo");
	result_num(&r, "duration_s", b->opt.duration);
	b->mode->report(b, &r);
	if (b->opt.server_pid && b->cpu_start >= 0 && b->cpu_end >= b->cpu_start && measure_seconds(b) > 0)
		result_num(&r, "server_cpu_pct",
			   (double)(b->cpu_end - b->cpu_start) / (double)sysconf(_SC_CLK_TCK) / measure_seconds(b) *
				   100.0);
	result_int(&r, "connect_errors", n->connect_errors);
	result_int(&r, "handshake_errors", n->handshake_errors);
	result_int(&r, "protocol_errors", n->protocol_errors);
	result_int(&r, "server_closes", n->server_closes);
	if (n->server_closes)
		result_int(&r, "last_close_code", n->last_close_code);
	if (n->handshake_errors)
		result_int(&r, "last_status", n->last_status);
	result_int(&r, "no_welcome", n->no_welcome);
	result_int(&r, "eof_closes", n->eof_closes);
	result_int(&r, "clean_closes", n->clean_closes);
	result_int(&r, "unclean_closes", n->unclean_closes);
	result_int(&r, "pings_answered", n->pings_answered);
	result_print(&r, stdout);
	if (b->opt.json_path && result_write_json(&r, b->opt.json_path))
		die("cannot write %s: %s", b->opt.json_path, strerror(errno));
}

/* Slots: every connection of echo/idle/fanout at once; handshake mode recycles a few times the window. */
static void bench_init(struct bench *b)
{
	struct rlimit lim;

	b->conn_cap = !strcmp(b->mode->name, "handshake") ? b->opt.window * 4 + 16
		      : !strcmp(b->mode->name, "fanout")  ? b->opt.subscribers + 2 /* a reconnecting publisher */
							  : b->opt.connections;
	if (!getrlimit(RLIMIT_NOFILE, &lim) && lim.rlim_cur != RLIM_INFINITY && b->conn_cap + 16 > lim.rlim_cur)
		die("%u connections need more than the open-file limit (%llu); split the load over several processes",
		    b->conn_cap, (unsigned long long)lim.rlim_cur);
	b->conns = calloc(b->conn_cap, sizeof(*b->conns));
	b->free_slots = calloc(b->conn_cap, sizeof(*b->free_slots));
	if (!b->conns || !b->free_slots)
		die("out of memory");
	for (unsigned i = 0; i < b->conn_cap; i++)
		b->free_slots[b->free_count++] = b->conn_cap - 1 - i;
	b->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epoll_fd < 0)
		die("epoll_create1: %s", strerror(errno));
	if (getrandom(&b->rng, sizeof(b->rng), 0) != sizeof(b->rng) || !b->rng)
		b->rng = now_ns() | 1;
	b->cpu_start = b->cpu_end = -1;
	b->perf_fd = -1;
	/* blocks until perf stat has opened its end: perf starts first */
	if (b->opt.perf_control && (b->perf_fd = open(b->opt.perf_control, O_WRONLY | O_CLOEXEC)) < 0)
		die("--perf-control %s: %s", b->opt.perf_control, strerror(errno));
}

static void bench_free(struct bench *b)
{
	for (unsigned i = 0; i < b->conn_cap; i++) {
		buf_free(&b->conns[i].in);
		buf_free(&b->conns[i].out);
		buf_free(&b->conns[i].msg);
		free(b->conns[i].ring);
	}
	free(b->conns);
	free(b->free_slots);
	free(b->scratch);
	close(b->epoll_fd);
	if (b->perf_fd >= 0)
		close(b->perf_fd);
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b)); /* holds histograms: too big for the stack */

	if (!b)
		die("out of memory");
	parse_options(&b->opt, argc, argv);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(modes[i].name, b->opt.mode))
			b->mode = &modes[i];
	if (!b->mode)
		die("unknown --mode '%s' (handshake, echo, fanout, idle)", b->opt.mode);
	bench_init(b);
	signal(SIGINT, on_sigint);
	run(b);
	report(b);
	bench_free(b);
	free(b);
	return 0;
}
