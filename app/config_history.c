/*
 * History bounds: `history = { size; ttl_ms; }` for every channel and
 * `history_channels = ( { channel; size; ttl_ms; } )` overriding it by glob,
 * the first match winning.
 */
#include "config_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

#define HISTORY_SIZE_MAX   100000
#define HISTORY_TTL_MS_MIN 100
#define HISTORY_TTL_MS_MAX (7LL * 24 * 3600 * 1000)

static int load_history_limits(struct loader *ld, const config_setting_t *g, const char *prefix,
			       struct wsg_history_limits *limits)
{
	return loader_get_uint(ld, g, prefix, "size", 0, HISTORY_SIZE_MAX, &limits->size) ||
			       loader_get_uint(ld, g, prefix, "ttl_ms", HISTORY_TTL_MS_MIN, HISTORY_TTL_MS_MAX,
					       &limits->ttl_ms)
		       ? -1
		       : 0;
}

int config_load_history(struct loader *ld, const config_setting_t *root, struct wsg_config *c)
{
	static const char *const known[] = { "size", "ttl_ms", NULL };
	static const char *const rule_known[] = { "channel", "size", "ttl_ms", NULL };
	const config_setting_t *list = config_setting_get_member(root, "history_channels");
	config_setting_t *g;
	char prefix[48];

	if (loader_get_group(ld, root, "history", &g) || (g && loader_check_known_keys(ld, g, "history", known)) ||
	    load_history_limits(ld, g, "history", &c->history))
		return -1;
	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return loader_fail_at(
			ld, line_of(list),
			"key 'history_channels' must be a list ( { channel = \"chat.**\"; size = 1000; }, ... )");
	int count = config_setting_length(list);
	c->history_rules = calloc((size_t)count + 1, sizeof(*c->history_rules));
	if (!c->history_rules)
		return loader_fail_at(ld, line_of(list), "out of memory");
	for (int i = 0; i < count; i++) {
		const config_setting_t *entry = config_setting_get_elem(list, (unsigned)i), *channel;
		struct wsg_history_rule *rule = &c->history_rules[i];
		snprintf(prefix, sizeof(prefix), "history_channels.[%d]", i);
		if (!config_setting_is_group(entry))
			return loader_fail_at(ld, line_of(entry),
					      "key '%s' must be a group { channel = \"...\"; size = N; }", prefix);
		if (loader_check_known_keys(ld, entry, prefix, rule_known))
			return -1;
		channel = config_setting_get_member(entry, "channel");
		if (!channel || config_setting_type(channel) != CONFIG_TYPE_STRING ||
		    !channel_glob_is_valid(config_setting_get_string(channel)))
			return loader_fail_at(
				ld, line_of(channel ? channel : entry),
				"key '%s.channel' must be a channel name or glob: dot-separated segments of "
				"A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest",
				prefix);
		rule->limits = c->history; /* what the rule leaves out */
		if (load_history_limits(ld, entry, prefix, &rule->limits))
			return -1;
		if (!(rule->channel = strdup(config_setting_get_string(channel))))
			return loader_fail_at(ld, line_of(channel), "out of memory");
		c->history_rule_count++;
	}
	return 0;
}

struct wsg_history_limits config_history_limits(const struct wsg_config *c, const char *name)
{
	for (size_t i = 0; i < c->history_rule_count; i++)
		if (channel_glob_match(c->history_rules[i].channel, name))
			return c->history_rules[i].limits;
	return c->history;
}

void config_free_history(struct wsg_config *c)
{
	for (size_t i = 0; i < c->history_rule_count; i++)
		free(c->history_rules[i].channel);
	free(c->history_rules);
}
