/*
 * json_min.h - a tiny JSON reader for the unit tests (Wycheproof vector
 * files). Test-only: parses a whole document into a tree of nodes; no
 * writer, numbers as double, strings decoded to UTF-8 (NUL-terminated; a
 * \u0000 escape is rejected).
 */
#ifndef BS_TEST_JSON_MIN_H
#define BS_TEST_JSON_MIN_H

#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_node {
	enum json_type type;
	char *key;                  /* member name inside an object, else NULL */
	char *str;                  /* JSON_STRING */
	size_t str_len;
	double num;                 /* JSON_NUMBER */
	int boolean;                /* JSON_BOOL */
	struct json_node *child;    /* first element or member */
	struct json_node *next;     /* next sibling */
};

/* Parses text (len bytes). Returns 0 and a tree to free with json_free, or -1. */
int json_parse(const char *text, size_t len, struct json_node **out);

/* Reads and parses the file at path. Returns 0 or -1. */
int json_load_file(const char *path, struct json_node **out);

void json_free(struct json_node *n);

/* Member key of obj, or NULL (borrowed). */
const struct json_node *json_get(const struct json_node *obj, const char *key);

/* String member key of obj, or NULL if absent or not a string (borrowed). */
const char *json_get_str(const struct json_node *obj, const char *key);

/* Number of elements/members of an array or object (0 otherwise). */
size_t json_count(const struct json_node *n);

/* Decodes a hex string into a malloc'd buffer (never NULL on success, even
 * for ""). Returns 0 or -1. */
int json_hex_decode(const char *hex, uint8_t **out, size_t *out_len);

#endif
