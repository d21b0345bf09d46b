/*
 * json_strict.c - strict JSON reading on top of jansson; see json_strict.h.
 */
#include <stdio.h>
#include <string.h>

#include "formats/json_strict.h"

#define PATH_MAX_SHOWN 160

/* Appends ".key" or "[i]" to path (truncated with "..." past PATH_MAX_SHOWN). */
static void
path_push(char *path, size_t cap, const char *key, size_t index)
{
	size_t n = strlen(path);

	if (n >= PATH_MAX_SHOWN) {
		if (n < cap - 4 && strcmp(path + n - 3, "...") != 0)
			strcat(path, "...");
		return;
	}
	if (key != NULL)
		snprintf(path + n, cap - n, ".%.*s", (int)(PATH_MAX_SHOWN - n), key);
	else
		snprintf(path + n, cap - n, "[%zu]", index);
}

/* 0 if v keeps the limits (no real number, depth, members, keys); else err says where. */
static int
check_tree(const json_t *v, unsigned depth, const struct json_strict_limits *lim, char *path,
    size_t cap, char *err, size_t errlen)
{
	const char *key;
	json_t *child;
	size_t i, n = strlen(path);
	int rc = 0;

	if (depth > lim->max_depth) {
		snprintf(err, errlen, "nested deeper than %u levels at %s", lim->max_depth, path);
		return BS_ERR_INVALID;
	}
	switch (json_typeof(v)) {
	case JSON_REAL:
		snprintf(err, errlen, "floating-point number at %s (integers only)", path);
		return BS_ERR_INVALID;
	case JSON_OBJECT:
		if (lim->max_members > 0 && json_object_size(v) > lim->max_members) {
			snprintf(err, errlen, "the object at %s has more than %zu members", path,
			    lim->max_members);
			return BS_ERR_INVALID;
		}
		json_object_foreach((json_t *)v, key, child) {
			if (lim->max_key > 0 && strlen(key) > lim->max_key) {
				snprintf(err, errlen, "a key of the object at %s is longer than %zu "
				    "bytes", path, lim->max_key);
				return BS_ERR_INVALID;
			}
			path_push(path, cap, key, 0);
			rc = check_tree(child, depth + 1, lim, path, cap, err, errlen);
			path[n] = '\0';
			if (rc != 0)
				return rc;
		}
		return 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, child) {
			path_push(path, cap, NULL, i);
			rc = check_tree(child, depth + 1, lim, path, cap, err, errlen);
			path[n] = '\0';
			if (rc != 0)
				return rc;
		}
		return 0;
	default:
		return 0;
	}
}

int
json_strict_parse(const uint8_t *buf, size_t len, const struct json_strict_limits *lim,
    json_t **out, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v;
	char path[PATH_MAX_SHOWN + 8] = "$";
	int rc;

	*out = NULL;
	if (len > lim->max_len) {
		snprintf(err, errlen, "the document is %zu bytes, more than the limit of %zu", len,
		    lim->max_len);
		return BS_ERR_TOO_BIG;
	}
	v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (v == NULL) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return BS_ERR_NOMEM;
		snprintf(err, errlen, "not valid JSON at line %d, column %d: %s", je.line, je.column,
		    je.text);
		return BS_ERR_INVALID;
	}
	if (lim->object && !json_is_object(v)) {
		snprintf(err, errlen, "not a JSON object");
		json_decref(v);
		return BS_ERR_INVALID;
	}
	if ((rc = check_tree(v, 0, lim, path, sizeof(path), err, errlen)) != 0) {
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
}
