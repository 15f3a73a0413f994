/*
 * JSON message handling on jansson. Every malformed request becomes an error
 * reply naming the problem; none of them closes the session.
 */
#define _GNU_SOURCE /* asprintf */
#include "message.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "util.h"

static char *dump(json_t *obj, size_t *len)
{
	char *text;

	if (!obj)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text)
		*len = strlen(text);
	return text;
}

/* A new object {"type":type} with "id" after it when the request had one. */
static json_t *reply_object(const char *type, json_t *id)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	json_object_set_new(obj, "type", json_string(type));
	if (id)
		json_object_set(obj, "id", id);
	return obj;
}

char *message_error(json_t *id, const char *code, const char *text, size_t *len)
{
	json_t *obj = reply_object("error", id);

	if (obj) {
		json_object_set_new(obj, "code", json_string(code));
		json_object_set_new(obj, "message", json_string(text));
	}
	return dump(obj, len);
}

char *message_ack(json_t *id, long long delivered, size_t *len)
{
	json_t *obj = reply_object("ack", id);

	if (obj && delivered >= 0)
		json_object_set_new(obj, "delivered", json_integer(delivered));
	return dump(obj, len);
}

char *message_subscribe_ack(json_t *id, const char *epoch, uint64_t seq, int recovered, size_t *len)
{
	json_t *obj = reply_object("ack", id);

	if (obj) {
		json_object_set_new(obj, "epoch", json_string(epoch));
		json_object_set_new(obj, "seq", json_integer((json_int_t)seq));
		if (recovered >= 0)
			json_object_set_new(obj, "recovered", json_boolean(recovered));
	}
	return dump(obj, len);
}

char *message_pong(json_t *id, size_t *len)
{
	return dump(reply_object("pong", id), len);
}

size_t message_pong_to(const struct request *req, char *out, size_t outlen)
{
	size_t len = 0;
	char *text;

	if (!req->id) {
		int n = snprintf(out, outlen, req->raw_id ? "{\"type\":\"pong\",\"id\":%.*s}" : "{\"type\":\"pong\"}",
				 (int)req->raw_id_len, req->raw_id ? req->raw_id : "");
		return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
	}
	text = message_pong(req->id, &len);
	if (!text || len >= outlen) {
		free(text);
		return 0;
	}
	memcpy(out, text, len);
	free(text);
	return len;
}

char *message_welcome(const char *session_id, const char *user, const char *device, unsigned heartbeat_ms, size_t *len)
{
	/* ids are hex and user and device ids plain characters (auth_is_valid_id): nothing to escape */
	char *text = NULL;
	int n = asprintf(
		&text,
		"{\"type\":\"welcome\",\"session\":\"%s\",\"user\":\"%s\",\"device\":\"%s\",\"heartbeat_ms\":%u}",
		session_id, user, device, heartbeat_ms);

	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return text;
}

char *message_channel_delivery(const char *channel, const char *from, json_t *data, uint64_t seq, uint64_t ts_ms,
			       size_t *len)
{
	return dump(json_pack("{s:s, s:s, s:s?, s:O, s:I, s:I}", "type", "message", "channel", channel, "from", from,
			      "data", data, "seq", (json_int_t)seq, "ts", (json_int_t)ts_ms),
		    len);
}

char *message_direct_delivery(const char *from, const char *to, json_t *data, uint64_t ts_ms, size_t *len)
{
	return dump(json_pack("{s:s, s:s?, s:s, s:O, s:I}", "type", "message", "from", from, "to", to, "data", data,
			      "ts", (json_int_t)ts_ms),
		    len);
}

static void invalid(struct request *req, const char *fmt, const char *detail)
{
	req->type = REQUEST_INVALID;
	req->error_code = "bad_request";
	snprintf(req->error_text, sizeof(req->error_text), fmt, detail);
}

/* A string member that must be present; NULL (and req made invalid) when not. */
static const char *required_string(struct request *req, const char *name)
{
	json_t *v = json_object_get(req->root, name);

	if (!json_is_string(v)) {
		invalid(req, "\"%s\" must be a string", name);
		return NULL;
	}
	return json_string_value(v);
}

static void parse_channel(struct request *req)
{
	req->channel = required_string(req, "channel");
	if (req->channel && !channel_name_is_valid(req->channel))
		invalid(req, "%s", "\"channel\" must be 1-128 bytes of dot-separated segments of A-Z a-z 0-9 _ - @ :");
}

/* "since":{"epoch":"<1-64 bytes>","seq":<integer >= 0>}, optional. */
static void parse_since(struct request *req)
{
	json_t *since = json_object_get(req->root, "since");
	json_t *epoch = json_object_get(since, "epoch"), *seq = json_object_get(since, "seq");

	if (!since)
		return;
	if (!json_is_object(since) || !json_is_string(epoch) || !json_string_length(epoch) ||
	    json_string_length(epoch) > 64 || !json_is_integer(seq) || json_integer_value(seq) < 0 ||
	    json_object_size(since) != 2)
		return invalid(req, "%s",
			       "\"since\" must be {\"epoch\":\"...\",\"seq\":N}, the position an earlier ack or "
			       "message gave");
	req->has_since = true;
	req->since_epoch = json_string_value(epoch);
	req->since_seq = (uint64_t)json_integer_value(seq);
}

static void parse_data(struct request *req)
{
	req->data = json_object_get(req->root, "data");
	if (!req->data)
		invalid(req, "%s", "\"data\" is missing");
}

static const struct {
	const char *name;
	enum request_type type;
} request_types[] = {
	{ "ping", REQUEST_PING },	{ "subscribe", REQUEST_SUBSCRIBE }, { "unsubscribe", REQUEST_UNSUBSCRIBE },
	{ "publish", REQUEST_PUBLISH }, { "send", REQUEST_SEND },
};

/*
 * A reader for the commonest request, a ping, that builds no JSON tree: it
 * walks the object once, checking every member is valid JSON. It gives up
 * (false) on anything it does not read itself: escapes, another type, a
 * duplicate member, deep nesting, an id that is not a plain integer or
 * string. jansson then reads the message, so the answer never differs.
 */
struct scan {
	const char *p, *end;
};

static void scan_space(struct scan *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

static bool scan_char(struct scan *sc, char c)
{
	scan_space(sc);
	if (sc->p >= sc->end || *sc->p != c)
		return false;
	sc->p++;
	return true;
}

/* A string with no escapes and no control bytes (the message is already valid UTF-8). */
static bool scan_string(struct scan *sc, const char **s, size_t *len)
{
	scan_space(sc);
	if (sc->p >= sc->end || *sc->p != '"')
		return false;
	const char *start = ++sc->p;
	while (sc->p < sc->end && *sc->p != '"') {
		if (*sc->p == '\\' || (unsigned char)*sc->p < 0x20)
			return false;
		sc->p++;
	}
	if (sc->p >= sc->end)
		return false;
	*s = start;
	*len = (size_t)(sc->p++ - start);
	return true;
}

static bool scan_digits(struct scan *sc)
{
	const char *start = sc->p;

	while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9')
		sc->p++;
	return sc->p > start;
}

/* RFC 8259 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool scan_number(struct scan *sc, bool *is_integer)
{
	if (sc->p < sc->end && *sc->p == '-')
		sc->p++;
	if (sc->p < sc->end && *sc->p == '0')
		sc->p++;
	else if (!scan_digits(sc))
		return false;
	*is_integer = true;
	if (sc->p < sc->end && *sc->p == '.') {
		sc->p++;
		*is_integer = false;
		if (!scan_digits(sc))
			return false;
	}
	if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
		sc->p++;
		*is_integer = false;
		if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
			sc->p++;
		if (!scan_digits(sc))
			return false;
	}
	return true;
}

static bool scan_literal(struct scan *sc, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n))
		return false;
	sc->p += n;
	return true;
}

static bool scan_value(struct scan *sc, int depth)
{
	const char *s;
	size_t len;
	bool is_integer;

	scan_space(sc);
	if (sc->p >= sc->end || depth > 8)
		return false;
	switch (*sc->p) {
	case '"':
		return scan_string(sc, &s, &len);
	case '{':
		return false; /* members would need a duplicate check: jansson's (found by fuzz_message) */
	case '[':
		sc->p++;
		if (scan_char(sc, ']'))
			return true;
		do {
			if (!scan_value(sc, depth + 1))
				return false;
		} while (scan_char(sc, ','));
		return scan_char(sc, ']');
	case 't':
		return scan_literal(sc, "true");
	case 'f':
		return scan_literal(sc, "false");
	case 'n':
		return scan_literal(sc, "null");
	default: {
		/* jansson refuses what overflows (1e999, 2^63): only numbers too short for that here */
		const char *start = sc->p;
		return scan_number(sc, &is_integer) && sc->p - start <= 15 &&
		       !memchr(start, 'e', (size_t)(sc->p - start)) && !memchr(start, 'E', (size_t)(sc->p - start));
	}
	}
}

static bool is_plain_id_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == ':';
}

/* An id copied into replies as it came: an integer of at most 15 digits, or a short plain string. */
static bool scan_id(struct scan *sc, struct request *req)
{
	const char *start;
	size_t len;
	bool is_integer;

	scan_space(sc);
	start = sc->p;
	if (sc->p < sc->end && *sc->p == '"') {
		if (!scan_string(sc, &start, &len) || !len || len > 64)
			return false;
		for (size_t i = 0; i < len; i++)
			if (!is_plain_id_char(start[i]))
				return false;
		start--;
		len += 2;
	} else {
		if (!scan_number(sc, &is_integer) || !is_integer)
			return false;
		len = (size_t)(sc->p - start);
		if (len > 15 || (len == 2 && !memcmp(start, "-0", 2)))
			return false; /* jansson answers -0 as 0 (found by fuzz_message) */
	}
	req->raw_id = start;
	req->raw_id_len = len;
	return true;
}

static bool scan_plain_ping(const char *text, size_t len, struct request *req)
{
	struct scan sc = { text, text + len };
	const char *names[16], *name, *type = NULL;
	size_t lens[16], count = 0, name_len, type_len = 0;

	if (!scan_char(&sc, '{') || scan_char(&sc, '}'))
		return false;
	do {
		if (count == 16 || !scan_string(&sc, &name, &name_len) || !scan_char(&sc, ':'))
			return false;
		for (size_t i = 0; i < count; i++)
			if (lens[i] == name_len && !memcmp(names[i], name, name_len))
				return false; /* a duplicate: jansson's answer */
		names[count] = name;
		lens[count++] = name_len;
		if (name_len == 4 && !memcmp(name, "type", 4)) {
			if (!scan_string(&sc, &type, &type_len))
				return false;
		} else if (name_len == 2 && !memcmp(name, "id", 2)) {
			if (!scan_id(&sc, req))
				return false;
		} else if (!scan_value(&sc, 1)) {
			return false;
		}
	} while (scan_char(&sc, ','));
	if (!scan_char(&sc, '}'))
		return false;
	scan_space(&sc);
	if (sc.p != sc.end || !type || type_len != 4 || memcmp(type, "ping", 4)) {
		req->raw_id = NULL;
		req->raw_id_len = 0;
		return false;
	}
	req->type = REQUEST_PING;
	return true;
}

int message_parse(const char *text, size_t len, struct request *req)
{
	json_error_t error;
	json_t *type;

	memset(req, 0, sizeof(*req));
	/* browsers cannot send WebSocket pings: the bare text "ping" is the app-level one */
	if (len == 4 && !memcmp(text, "ping", 4)) {
		req->type = REQUEST_TEXT_PING;
		return 0;
	}
	if (scan_plain_ping(text, len, req))
		return 0;
	req->raw_id = NULL; /* a scan that gave up may have seen one */
	req->raw_id_len = 0;
	/* DECODE_ANY: a bare value is valid JSON, and gets the "must be an object" answer */
	req->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!req->root) {
		req->type = REQUEST_INVALID;
		req->error_code = "bad_request";
		snprintf(req->error_text, sizeof(req->error_text), "invalid JSON at position %d: %s", error.position,
			 error.text);
		/* jansson quotes the bytes it stopped at, maybe half a character: the reply must stay UTF-8 */
		req->error_text[util_utf8_prefix_len(req->error_text, strlen(req->error_text),
						     sizeof(req->error_text))] = '\0';
		return 0;
	}
	if (!json_is_object(req->root)) {
		invalid(req, "%s", "a message must be a JSON object with a \"type\"");
		return 0;
	}
	req->id = json_object_get(req->root, "id");
	type = json_object_get(req->root, "type");
	if (!json_is_string(type)) {
		invalid(req, "%s", "\"type\" must be a string");
		return 0;
	}
	const char *name = json_string_value(type);
	for (size_t i = 0; i < sizeof(request_types) / sizeof(request_types[0]); i++)
		if (!strcmp(name, request_types[i].name))
			req->type = request_types[i].type;
	switch (req->type) {
	case REQUEST_INVALID: {
		/* quote at most 64 bytes of the client's type, cut on a character boundary */
		char shown[80];
		size_t n = util_utf8_prefix_len(name, strlen(name), 64);
		snprintf(shown, sizeof(shown), "%.*s", (int)n, name);
		invalid(req, "unknown type \"%s\"", shown);
		break;
	}
	case REQUEST_SUBSCRIBE:
		parse_channel(req);
		if (req->type != REQUEST_INVALID)
			parse_since(req);
		break;
	case REQUEST_UNSUBSCRIBE:
		parse_channel(req);
		break;
	case REQUEST_PUBLISH:
		parse_channel(req);
		if (req->type != REQUEST_INVALID)
			parse_data(req);
		break;
	case REQUEST_SEND:
		req->to = required_string(req, "to");
		if (req->type != REQUEST_INVALID)
			parse_data(req);
		break;
	case REQUEST_TEXT_PING:
	case REQUEST_PING:
		break;
	}
	return 0;
}

void message_request_free(struct request *req)
{
	json_decref(req->root);
	req->root = NULL;
}
