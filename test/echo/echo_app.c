/*
 * wsgate-echo: the wsgate server core running an application that sends every
 * message back as it came, text or binary. It exists for conformance tests
 * (RFC 6455 framing, fragmentation, UTF-8, close handling), which need an echo
 * server; admission, heartbeat, limits and the close path are wsgate's own.
 */
#include "app.h"
#include "outq.h"
#include "server.h"

static int echo(struct session *s, const unsigned char *data, size_t len, bool is_binary)
{
	struct outmsg *msg = outmsg_new_frame(is_binary ? FRAME_BINARY : FRAME_TEXT, data, len);

	if (!msg)
		return -1;
	session_queue(s, msg); /* not queued only when closing, or as a slow consumer */
	outmsg_unref(msg);
	return 0;
}

const struct wsg_app wsg_application = {
	.name = "wsgate-echo",
	.accepts_binary = true,
	.on_message = echo,
};
