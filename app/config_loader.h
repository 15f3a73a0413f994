/*
 * Private to the config loader (app/config*.c), not part of config.h: the
 * primitives that read one key and report FILE:LINE errors (config_loader.c),
 * and the parts of config_load that live in files of their own.
 */
#ifndef WSGATE_CONFIG_LOADER_H
#define WSGATE_CONFIG_LOADER_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The file being read (errors name it) and where its error goes. */
struct loader {
	const char *file;
	char *err;
	size_t errlen;
};

/* Writes "FILE:LINE: message" into ld->err (control characters as '?'); returns -1. */
int loader_fail_at(struct loader *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The line of setting s in its file; 0 (reported as line 1) for none. The
 * NULL check is for clang-tidy's analyzer, which cannot see across files
 * that a key absent from its group is never the one an error names.
 */
static inline int line_of(const config_setting_t *s)
{
	return s ? (int)config_setting_source_line(s) : 0;
}

/* Unknown keys are errors: a misspelt key silently ignored is a bug in production. */
int loader_check_known_keys(struct loader *ld, const config_setting_t *group, const char *prefix,
			    const char *const *known);
/* The group at root.name, NULL when absent (all defaults), or an error when not a group. */
int loader_get_group(struct loader *ld, const config_setting_t *root, const char *name, config_setting_t **out);

/*
 * One key of group ("prefix.name"): absent (or group NULL) leaves *value as
 * it is; present, it must have the type and range, else -1 after reporting.
 */
int loader_get_int(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		   long long min, long long max, long long *value);
int loader_get_uint(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		    long long min, long long max, unsigned *value);
int loader_get_string(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      char **value);
int loader_get_bool(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		    bool *value);
/* A string key that must be one of choices; *value becomes its index. */
int loader_get_choice(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      const char *const *choices, const char *expected, int *value);

/*
 * An array or list key: checks its shape and allocates room for its items
 * (one spare, zeroed). Returns the item count, or -1 after reporting.
 */
int loader_begin_list(struct loader *ld, const config_setting_t *list, const char *key, const char *shape,
		      size_t item_size, void **items);
/* Item i of a list as a string; NULL when it is not one. */
const char *loader_list_string(const config_setting_t *list, int i);

/* A relative path in the config is relative to the config file's directory, whatever the cwd. */
int loader_resolve_path(struct loader *ld, const config_setting_t *s, char **path);

/* ---- tokens (config_tokens.c) ---- */
/* `tokens = ( ... )` of root, into c->tokens. */
int config_load_tokens(struct loader *ld, const config_setting_t *root, struct wsg_config *c);
/* `tokens_file`: the same list from a file of its own, which must be private to its owner. */
int config_load_tokens_file(struct loader *ld, const config_setting_t *root, struct wsg_config *c);
/* The tokens sorted by digest, for config_find_token. */
int config_index_tokens(struct loader *ld, struct wsg_config *c);
void config_free_tokens(struct wsg_config *c);

/* ---- history (config_history.c) ---- */
/* `history` and `history_channels`. */
int config_load_history(struct loader *ld, const config_setting_t *root, struct wsg_config *c);
void config_free_history(struct wsg_config *c);

#endif
