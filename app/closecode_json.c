/* The close-code table as JSON; see closecode_json.h. */
#include "closecode_json.h"

#include "closecode.h"

json_t *closecode_json(void)
{
	size_t count;
	const struct wsg_close_info *table = closecode_table(&count);
	json_t *list = json_array();

	for (size_t i = 0; list && i < count; i++)
		if (json_array_append_new(list,
					  json_pack("{s:i, s:s, s:s, s:s}", "code", table[i].code, "reason",
						    table[i].reason, "advice", closecode_advice_name(table[i].advice),
						    "meaning", table[i].meaning))) {
			json_decref(list);
			return NULL;
		}
	/* the ranges that also cover codes not in the table (closecode_advice_for) */
	return json_pack("{s:o, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "close_codes", list, "ranges", "codes",
			 "4000-4099", "advice", closecode_advice_name(WSG_ADVICE_DO_NOT_RECONNECT), "codes",
			 "4100-4199", "advice", closecode_advice_name(WSG_ADVICE_RECONNECT_BACKOFF), "codes",
			 "4200-4299", "advice", closecode_advice_name(WSG_ADVICE_RECONNECT_NOW));
}
