/*
 * The handshake decision at the upgrade: the token, device and origin the
 * client sent, its address (behind a trusted proxy, the forwarded one), and
 * the verdict (auth, shutdown, drain, per-address limit, capacity); then the
 * session begins with it. A token is read here and never logged.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "netaddr.h"
#include "ops.h"
#include "output.h"
#include "util.h"

struct handshake {
	/* one byte longer than the longest configured token, so a cut one never matches */
	char token[4096 + 2];
	char device[512];
	char origin[512];
	bool has_token, has_device, has_origin;
};

static void read_handshake(struct lws *wsi, struct handshake *hs)
{
	char arg[4200];
	const char *v;

	memset(hs, 0, sizeof(*hs));

	v = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));
	if (v) {
		hs->has_token = true;
		util_strlcpy(hs->token, v, sizeof(hs->token));
	} else if (lws_hdr_copy(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
		v = auth_bearer_token(arg);
		if (v) {
			hs->has_token = true;
			util_strlcpy(hs->token, v, sizeof(hs->token));
		}
	}
	v = lws_get_urlarg_by_name(wsi, "device=", arg, sizeof(arg));
	if (v) {
		hs->has_device = true;
		/* an over-long id is cut to a length that fails validation, never silently dropped */
		util_strlcpy(hs->device, v, sizeof(hs->device));
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
		hs->has_origin = true;
		if (lws_hdr_copy(wsi, hs->origin, sizeof(hs->origin), WSI_TOKEN_ORIGIN) < 0)
			util_strlcpy(hs->origin, "(too long)", sizeof(hs->origin));
	}
}

static void decide(struct wsg_server *server, const struct handshake *hs, const char *peer, struct auth_verdict *v)
{
	struct auth_request req = {
		.token = hs->has_token ? hs->token : NULL,
		.device = hs->has_device ? hs->device : NULL,
		.origin = hs->has_origin ? hs->origin : NULL,
		.now_ms = util_wall_ms(), /* token expiry */
	};
	const struct wsg_config *config = server->config;

	if (server->is_stopping) {
		auth_refuse(v, HANDSHAKE_SHUTTING_DOWN, WSG_CLOSE_SHUTDOWN, NULL);
		return;
	}
	if (ops_refuses_upgrades(server)) {
		auth_refuse(v, HANDSHAKE_DRAINING, WSG_CLOSE_AT_CAPACITY, "server draining");
		return;
	}
	auth_decide(config, &req, v);
	if (v->close_code)
		return;
	if (config->max_per_ip && addrcount_get(&server->per_address, peer) >= config->max_per_ip) {
		auth_refuse(v, HANDSHAKE_PER_ADDRESS_LIMIT, WSG_CLOSE_AT_CAPACITY,
			    "too many connections from this address");
		v->http_status = 429;
		return;
	}
	if (registry_count(&server->registry) < config->max_sessions)
		return;
	/* replacing an existing session does not need a new slot */
	if (config->on_repeat == WSG_REPEAT_REPLACE_OLD &&
	    registry_find(&server->registry, v->token->user, req.device ? req.device : ""))
		return;
	auth_refuse(v, HANDSHAKE_AT_CAPACITY, WSG_CLOSE_AT_CAPACITY, NULL);
}

static void client_address(const struct wsg_server *server, struct lws *wsi, char *out, size_t len, char *via,
			   size_t vialen);

void server_decide(struct wsg_server *server, struct lws *wsi, struct auth_verdict *verdict)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX];
	struct handshake hs;

	read_handshake(wsi, &hs);
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	decide(server, &hs, peer, verdict);
}

/*
 * The client's address: the TCP peer, or, when the peer is a trusted proxy,
 * the address it forwarded. via gets the proxy's address ("" when direct).
 */
static void client_address(const struct wsg_server *server, struct lws *wsi, char *out, size_t len, char *via,
			   size_t vialen)
{
	char peer[WSG_PEER_MAX], forwarded[1024] = "", real_ip[WSG_PEER_MAX] = "";
	const struct wsg_config *config = server->config;

	if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
		util_strlcpy(peer, "unknown", sizeof(peer));
	via[0] = '\0';
	if (config->trusted_proxy_count) {
		/* present but too long to read: believe no forwarded header, X-Real-IP neither */
		if (lws_hdr_copy(wsi, forwarded, sizeof(forwarded), WSI_TOKEN_X_FORWARDED_FOR) < 0) {
			util_strlcpy(out, peer, len);
			return;
		}
		/* a known token in Debian's lws (UNCOMMON_HEADERS), so not a custom header */
		if (lws_hdr_copy(wsi, real_ip, sizeof(real_ip), WSI_TOKEN_HTTP_X_REAL_IP) < 0)
			real_ip[0] = '\0';
	}
	if (netaddr_client_address(peer, forwarded, real_ip, config->trusted_proxies, config->trusted_proxy_count, out,
				   len))
		util_strlcpy(via, peer, vialen);
}

void server_log_refusal(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *v, const char *how)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX], reason[256];

	server->metrics.handshakes[v->outcome]++;
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	log_event(LOG_INFO, "handshake_refused", "peer=%s%s%s code=%d reason=%s %s", peer, *via ? " via=" : "", via,
		  v->close_code, log_quote(reason, sizeof(reason), v->reason, strlen(v->reason)), how);
}

/* "user\0device\0peer\0via\0" in one allocation: no field sized for the worst case. */
static int set_names(struct session *s, const char *user, const char *device, const char *peer, const char *via)
{
	size_t ul = strlen(user) + 1, dl = strlen(device) + 1, pl = strlen(peer) + 1, vl = strlen(via) + 1;
	char *p = malloc(ul + dl + pl + vl);

	if (!p)
		return -1;
	s->names = p;
	s->user = memcpy(p, user, ul);
	s->device = memcpy(p + ul, device, dl);
	memcpy(p + ul + dl, peer, pl);
	memcpy(p + ul + dl + pl, via, vl);
	s->entry.user = s->user;
	s->entry.device = s->device;
	return 0;
}

void server_session_begin(struct wsg_server *server, struct session *s, struct lws *wsi, struct auth_verdict *v)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX];
	struct handshake hs;

	read_handshake(wsi, &hs);
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	decide(server, &hs, peer, v);
	/* an upgrade is a GET: no request body can be pending here */
	memset(s, 0, sizeof(*s));
	if (v->close_code && server->config->reject == WSG_REJECT_HTTP)
		return; /* answered with an HTTP status: no session */
	s->wsi = wsi;
	s->server = server;
	s->close_code = (uint16_t)v->close_code;
	s->close_reason = v->reason;
	s->refusal_outcome = (uint8_t)v->outcome;
	s->token = v->token;
	if (!v->close_code && server->config->max_per_ip)
		s->is_counted_by_address = !addrcount_add(&server->per_address, peer);
	if (set_names(s, v->token ? v->token->user : "", v->token && hs.has_device ? hs.device : "", peer, via)) {
		static const char no_names[4] = ""; /* four empty strings */
		s->close_code = WSG_CLOSE_INTERNAL_ERROR;
		s->close_reason = NULL;
		s->refusal_outcome = HANDSHAKE_INTERNAL_ERROR;
		s->user = no_names;
		s->device = no_names + 1;
	}
	/* lws writes the 101 once this returns; the welcome (or the close) follows within the loop turn */
	output_cork(s);
	output_limit_kernel_share(s, server->config->send_buffer_bytes);
}
