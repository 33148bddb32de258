/* A small, strict, bounded JSON parser (RFC 8259): recursion limited by depth, tokens by count. */
#include "json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	struct json *j;
	size_t pos;
};

static int parse_value(struct parser *p, unsigned int depth);

static void skip_ws(struct parser *p)
{
	while (p->pos < p->j->len) {
		char c = p->j->text[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Next byte, or -1 at the end of input. */
static int peek(const struct parser *p)
{
	return p->pos < p->j->len ? (unsigned char)p->j->text[p->pos] : -1;
}

static int new_tok(struct parser *p, enum json_type type)
{
	struct json *j = p->j;

	if (j->ntoks >= JSON_MAX_TOKENS)
		return -E2BIG;
	if (j->ntoks == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct json_tok *t = realloc(j->toks, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		j->toks = t;
		j->cap = cap;
	}
	j->toks[j->ntoks] = (struct json_tok){ .type = type, .start = (uint32_t)p->pos };
	return (int)j->ntoks++;
}

static void close_tok(struct parser *p, int t)
{
	p->j->toks[t].end = (uint32_t)p->pos;
	p->j->toks[t].next = (uint32_t)p->j->ntoks;
}

static bool is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Checks escapes and control characters; decoding happens on demand. */
static int parse_string(struct parser *p)
{
	p->pos++;       /* opening quote */
	int t = new_tok(p, JSON_STRING);
	if (t < 0)
		return t;
	for (;;) {
		int c = peek(p);
		if (c < 0x20)   /* end of input, or a raw control character */
			return -EINVAL;
		if (c == '"')
			break;
		p->pos++;
		if (c != '\\')
			continue;
		c = peek(p);
		p->pos++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, p->pos++)
				if (!is_hex(peek(p)))
					return -EINVAL;
		} else if (!c || !strchr("\"\\/bfnrt", c)) {
			return -EINVAL;
		}
	}
	close_tok(p, t);
	p->pos++;       /* closing quote */
	return t;
}

static int skip_digits(struct parser *p)
{
	if (!is_digit(peek(p)))
		return -EINVAL;
	while (is_digit(peek(p)))
		p->pos++;
	return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
	int t = new_tok(p, JSON_NUMBER);

	if (t < 0)
		return t;
	if (peek(p) == '-')
		p->pos++;
	if (peek(p) == '0')
		p->pos++;
	else if (skip_digits(p))
		return -EINVAL;
	if (peek(p) == '.') {
		p->pos++;
		if (skip_digits(p))
			return -EINVAL;
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		p->pos++;
		if (peek(p) == '+' || peek(p) == '-')
			p->pos++;
		if (skip_digits(p))
			return -EINVAL;
	}
	close_tok(p, t);
	return t;
}

static int parse_literal(struct parser *p, const char *word, enum json_type type)
{
	size_t n = strlen(word);

	if (p->j->len - p->pos < n || memcmp(p->j->text + p->pos, word, n))
		return -EINVAL;
	int t = new_tok(p, type);
	if (t < 0)
		return t;
	p->pos += n;
	close_tok(p, t);
	return t;
}

/* Parses "[...]" or "{...}"; an object's members are a key string then a value. */
static int parse_container(struct parser *p, unsigned int depth, bool object)
{
	int close = object ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH)
		return -ELOOP;
	int t = new_tok(p, object ? JSON_OBJECT : JSON_ARRAY);
	if (t < 0)
		return t;
	p->pos++;
	skip_ws(p);
	if (peek(p) == close)
		goto done;
	for (;;) {
		int r;
		skip_ws(p);
		if (object) {
			if (peek(p) != '"')
				return -EINVAL;
			if ((r = parse_string(p)) < 0)
				return r;
			skip_ws(p);
			if (peek(p) != ':')
				return -EINVAL;
			p->pos++;
		}
		if ((r = parse_value(p, depth + 1)) < 0)
			return r;
		p->j->toks[t].count++;
		skip_ws(p);
		if (peek(p) == close)
			break;
		if (peek(p) != ',')
			return -EINVAL;
		p->pos++;
	}
done:
	p->pos++;
	close_tok(p, t);
	return t;
}

static int parse_value(struct parser *p, unsigned int depth)
{
	skip_ws(p);
	int c = peek(p);
	switch (c) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", JSON_TRUE);
	case 'f':
		return parse_literal(p, "false", JSON_FALSE);
	case 'n':
		return parse_literal(p, "null", JSON_NULL);
	default:
		if (c == '-' || is_digit(c))
			return parse_number(p);
		return -EINVAL;
	}
}

int json_parse(struct json *j, const char *text, size_t len)
{
	memset(j, 0, sizeof(*j));
	if (len > JSON_MAX_INPUT)
		return -E2BIG;
	j->text = text;
	j->len = len;

	struct parser p = { .j = j };
	int r = parse_value(&p, 0);
	if (r >= 0) {
		skip_ws(&p);
		r = p.pos == len ? 0 : -EINVAL;
	}
	if (r < 0)
		json_free(j);
	return r < 0 ? r : 0;
}

void json_free(struct json *j)
{
	free(j->toks);
	memset(j, 0, sizeof(*j));
}

int json_is(const struct json *j, int tok, enum json_type type)
{
	return tok >= 0 && (size_t)tok < j->ntoks && j->toks[tok].type == type;
}

static unsigned int hex4(const char *s)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v = v * 16 + (unsigned int)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static size_t put_utf8(char *out, unsigned int cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * \uXXXX at s (validated by the parser), a surrogate pair taking two escapes.
 * Returns the code point and advances *s, or 0 for U+0000 and lone surrogates.
 */
static unsigned int unicode_escape(const char **s, const char *end)
{
	unsigned int cp = hex4(*s + 2);

	*s += 6;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return 0;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (end - *s < 6 || (*s)[0] != '\\' || (*s)[1] != 'u')
			return 0;
		unsigned int lo = hex4(*s + 2);
		if (lo < 0xdc00 || lo > 0xdfff)
			return 0;
		*s += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return cp;
}

/* Decodes string token t into out (at most cap bytes, NUL added). Returns length or -1. */
static long decode(const struct json *j, int t, char *out, size_t cap)
{
	if (!json_is(j, t, JSON_STRING))
		return -1;
	const char *s = j->text + j->toks[t].start, *end = j->text + j->toks[t].end;
	size_t n = 0;
	while (s < end) {
		char tmp[4];
		size_t k = 1;
		if (*s != '\\') {
			tmp[0] = *s++;
		} else if (s[1] == 'u') {
			unsigned int cp = unicode_escape(&s, end);
			if (!cp)
				return -1;
			k = put_utf8(tmp, cp);
		} else {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			tmp[0] = to[strchr(from, s[1]) - from];
			s += 2;
		}
		if (cap - n < k + 1)
			return -1;
		memcpy(out + n, tmp, k);
		n += k;
	}
	out[n] = '\0';
	return (long)n;
}

char *json_strdup(const struct json *j, int tok)
{
	if (!json_is(j, tok, JSON_STRING))
		return NULL;
	/* Decoding never grows the text: the shortest escape (\n) is 2 bytes for 1 out. */
	size_t cap = (size_t)(j->toks[tok].end - j->toks[tok].start) + 1;
	char *s = malloc(cap);
	if (s && decode(j, tok, s, cap) < 0) {
		free(s);
		s = NULL;
	}
	return s;
}

int json_get(const struct json *j, int obj, const char *key)
{
	if (!json_is(j, obj, JSON_OBJECT))
		return -1;
	size_t klen = strlen(key);
	uint32_t t = (uint32_t)obj + 1;
	for (uint32_t i = 0; i < j->toks[obj].count; i++) {
		char buf[256];
		long n = decode(j, (int)t, buf, sizeof(buf));
		uint32_t v = j->toks[t].next;
		if (n >= 0 && (size_t)n == klen && !memcmp(buf, key, klen))
			return (int)v;
		t = j->toks[v].next;
	}
	return -1;
}

int json_index(const struct json *j, int arr, size_t i)
{
	if (!json_is(j, arr, JSON_ARRAY) || i >= j->toks[arr].count)
		return -1;
	uint32_t t = (uint32_t)arr + 1;
	while (i--)
		t = j->toks[t].next;
	return (int)t;
}

int json_int64(const struct json *j, int tok, int64_t *out)
{
	if (!json_is(j, tok, JSON_NUMBER))
		return -EINVAL;
	const char *s = j->text + j->toks[tok].start, *end = j->text + j->toks[tok].end;
	bool neg = *s == '-';
	uint64_t mag = 0;
	for (s += neg; s < end; s++) {
		if (!is_digit(*s))
			return -EINVAL;     /* fraction or exponent */
		if (__builtin_mul_overflow(mag, 10, &mag) ||
		    __builtin_add_overflow(mag, (uint64_t)(*s - '0'), &mag))
			return -ERANGE;
	}
	if (mag > (uint64_t)INT64_MAX + neg)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}
