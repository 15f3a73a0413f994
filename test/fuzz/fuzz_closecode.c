/*
 * Close reasons: closecode_reason_len must return the longest prefix of at
 * most 123 bytes that is valid UTF-8 (so it ends on a character boundary),
 * util's UTF-8 checks must agree with an independent validator, and the close
 * frame built from the cut reason must be a well-formed RFC 6455 5.5.1 frame.
 */
#include "closecode.h"
#include "frame.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t n = closecode_reason_len(text, size);

	FUZZ_ASSERT(n <= WSG_CLOSE_REASON_MAX);
	FUZZ_ASSERT(n <= size);
	FUZZ_ASSERT(fuzz_is_utf8(data, n)); /* so it ends on a character boundary */
	/* the longest such prefix: no longer one is valid */
	size_t cap = size < WSG_CLOSE_REASON_MAX ? size : WSG_CLOSE_REASON_MAX;
	for (size_t k = n + 1; k <= cap && k <= n + 4; k++)
		FUZZ_ASSERT(!fuzz_is_utf8(data, k));

	unsigned char frame[2 + FRAME_CONTROL_MAX];
	size_t flen = frame_write_close(frame, WSG_CLOSE_DISCONNECTED, text, n);
	FUZZ_ASSERT(flen == 2 + 2 + n && frame[0] == 0x88 && frame[1] == 2 + n);
	FUZZ_ASSERT(frame[2] == WSG_CLOSE_DISCONNECTED >> 8 && frame[3] == (WSG_CLOSE_DISCONNECTED & 0xff));
	FUZZ_ASSERT(!memcmp(frame + 4, data, n));

	FUZZ_ASSERT(util_is_valid_utf8(data, size) == fuzz_is_utf8(data, size));
	for (size_t max = 0; max <= 8 && max <= size; max++) {
		size_t p = util_utf8_prefix_len(text, size, max);
		FUZZ_ASSERT(p <= max && fuzz_is_utf8(data, p));
	}

	/* the first two bytes as a close code, as a peer's close frame carries it */
	if (size >= 2) {
		int code = data[0] << 8 | data[1];
		bool sendable = (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
				(code >= 3000 && code <= 4999);
		FUZZ_ASSERT(closecode_is_sendable(code) == sendable);
		const struct wsg_close_info *info = closecode_find(code);
		if (info) {
			FUZZ_ASSERT(info->code == code && closecode_is_sendable(code));
			FUZZ_ASSERT(strlen(info->reason) <= WSG_CLOSE_REASON_MAX);
		}
		enum wsg_close_advice advice = closecode_advice_for(code);
		FUZZ_ASSERT(strcmp(closecode_advice_name(advice), "unknown"));
	}
	return 0;
}
