/* NULL-terminated string vectors: the copies a context keeps of caller arrays. */
#ifndef KRUN_API_STRV_H
#define KRUN_API_STRV_H

#include <stddef.h>

/* Deep copy of a NULL-terminated array of at most `max` strings; NULL in gives an empty vector. */
int strv_copy(const char *const *in, size_t max, char ***out) __attribute__((warn_unused_result));
/* Number of strings in a NULL-terminated array of at most `max` (more: -E2BIG). */
int strv_count(const char *const *in, size_t max, size_t *out) __attribute__((warn_unused_result));
/* Empty vector (just the NULL terminator). */
char **strv_new(void);
/* Appends a copy of s; 0 or -ENOMEM (the vector is unchanged on failure). */
int strv_push(char ***v, const char *s) __attribute__((warn_unused_result));
size_t strv_len(char *const *v);
void strv_free(char **v);

#endif
