/*
 * The config loader's primitives: one key read with its type and range
 * checked, unknown keys refused, and every error written as FILE:LINE naming
 * the key, the way nginx -t does. Private to app/config*.c (config_loader.h).
 */
#define _GNU_SOURCE /* asprintf */
#include "config_loader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loader_fail_at(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->file, line > 0 ? line : 1);

	if (n < 0 || (size_t)n >= ld->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	/* one line, whatever a quoted value holds (libconfig strings may span lines) */
	for (char *p = ld->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

static bool is_one_of(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(name, *names))
			return true;
	return false;
}

/* Unknown keys are errors: a misspelt key silently ignored is a bug in production. */
int loader_check_known_keys(struct loader *ld, const config_setting_t *group, const char *prefix,
			    const char *const *known)
{
	int count = config_setting_length(group);

	for (int i = 0; i < count; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);

		if (!is_one_of(name, known))
			return prefix ? loader_fail_at(ld, line_of(s), "unknown key '%s.%s'", prefix, name)
				      : loader_fail_at(ld, line_of(s), "unknown key '%s'", name);
	}
	return 0;
}

/* The group at root.name, NULL when absent (all defaults), or an error when not a group. */
int loader_get_group(struct loader *ld, const config_setting_t *root, const char *name, config_setting_t **out)
{
	config_setting_t *s = config_setting_get_member(root, name);

	*out = NULL;
	if (!s)
		return 0;
	if (!config_setting_is_group(s))
		return loader_fail_at(ld, line_of(s), "key '%s' must be a group { ... }", name);
	*out = s;
	return 0;
}

int loader_get_int(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		   long long min, long long max, long long *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	long long v;

	if (!s)
		return 0;
	int type = config_setting_type(s);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
		return loader_fail_at(ld, line_of(s), "key '%s.%s' must be an integer between %lld and %lld", prefix,
				      name, min, max);
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return loader_fail_at(ld, line_of(s), "key '%s.%s' must be an integer between %lld and %lld, not %lld",
				      prefix, name, min, max, v);
	*value = v;
	return 0;
}

int loader_get_uint(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		    long long min, long long max, unsigned *value)
{
	long long v = *value;

	if (loader_get_int(ld, group, prefix, name, min, max, &v))
		return -1;
	*value = (unsigned)v;
	return 0;
}

int loader_get_string(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      char **value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return loader_fail_at(ld, line_of(s), "key '%s.%s' must be a string", prefix, name);
	char *copy = strdup(config_setting_get_string(s));
	if (!copy)
		return loader_fail_at(ld, line_of(s), "out of memory");
	free(*value);
	*value = copy;
	return 0;
}

int loader_get_bool(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name, bool *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return loader_fail_at(ld, line_of(s), "key '%s.%s' must be true or false", prefix, name);
	*value = config_setting_get_bool(s);
	return 0;
}

/* A string key that must be one of choices; *value becomes its index. */
int loader_get_choice(struct loader *ld, const config_setting_t *group, const char *prefix, const char *name,
		      const char *const *choices, const char *expected, int *value)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
	for (int i = 0; v && choices[i]; i++) {
		if (!strcmp(v, choices[i])) {
			*value = i;
			return 0;
		}
	}
	return loader_fail_at(ld, line_of(s), "key '%s.%s' must be %s", prefix, name, expected);
}

/*
 * An array or list key: checks its shape and allocates room for its items
 * (one spare, zeroed). Returns the item count, or -1 after reporting.
 */
int loader_begin_list(struct loader *ld, const config_setting_t *list, const char *key, const char *shape,
		      size_t item_size, void **items)
{
	if (!config_setting_is_array(list) && !config_setting_is_list(list)) {
		loader_fail_at(ld, line_of(list), "key '%s' must be %s", key, shape);
		return -1; /* not loader_fail_at's value: clang-tidy's analyzer cannot see into a variadic function */
	}
	int count = config_setting_length(list);
	*items = calloc((size_t)count + 1, item_size);
	if (!*items)
		return loader_fail_at(ld, line_of(list), "out of memory");
	return count;
}

/* Item i of a list as a string; NULL when it is not one. */
const char *loader_list_string(const config_setting_t *list, int i)
{
	const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);

	return config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
}

/* A relative path in the config is relative to the config file's directory, whatever the cwd. */
int loader_resolve_path(struct loader *ld, const config_setting_t *s, char **path)
{
	const char *slash = strrchr(ld->file, '/');
	char *joined;

	if (!*path || (*path)[0] == '/' || !slash)
		return 0;
	int dirlen = (int)(slash - ld->file);
	if (asprintf(&joined, "%.*s/%s", dirlen, ld->file, *path) < 0)
		return loader_fail_at(ld, line_of(s), "out of memory");
	free(*path);
	*path = joined;
	return 0;
}
