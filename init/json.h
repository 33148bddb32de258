/* A small, strict, bounded JSON (RFC 8259) parser: a flat token array over the input text. */
#ifndef KRUN_INIT_JSON_H
#define KRUN_INIT_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Bounds: nesting depth (recursion), token count and input size. */
#define JSON_MAX_DEPTH 64
#define JSON_MAX_TOKENS (1u << 20)
#define JSON_MAX_INPUT (16u << 20)

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/*
 * One value. A container's children follow it: an array's elements, an object's
 * key (a JSON_STRING token) then value, pair after pair. next is the index just past
 * this token's subtree, so siblings are reached without walking children.
 */
struct json_tok {
	enum json_type type;
	uint32_t start;         /* string: first byte inside the quotes */
	uint32_t end;           /* one past the last byte (string: before the closing quote) */
	uint32_t count;         /* array elements or object members */
	uint32_t next;
};

struct json {
	const char *text;
	size_t len;
	struct json_tok *toks;
	size_t ntoks;
	size_t cap;
};

/* Parses text[0..len). Returns 0 or -EINVAL (syntax), -ELOOP (too deep), -E2BIG, -ENOMEM. */
int json_parse(struct json *j, const char *text, size_t len);
void json_free(struct json *j);

/* Value of key in object token obj, or -1 (also when obj is not an object). */
int json_get(const struct json *j, int obj, const char *key);
/* Element i of array token arr, or -1. */
int json_index(const struct json *j, int arr, size_t i);
int json_is(const struct json *j, int tok, enum json_type type);

/* Decoded string value in a new heap buffer, NULL if not a string, if it holds U+0000, or on ENOMEM. */
char *json_strdup(const struct json *j, int tok);
/* An integer number (no fraction or exponent). Returns 0, -EINVAL or -ERANGE. */
int json_int64(const struct json *j, int tok, int64_t *out);

#endif
