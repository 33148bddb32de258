/* NULL-terminated string vectors owned by a context or a launch spec. */
#include "api/strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int strv_count(const char *const *in, size_t max, size_t *out)
{
	size_t n = 0;

	if (in)
		while (in[n]) {
			if (n == max)
				return -E2BIG;
			n++;
		}
	*out = n;
	return 0;
}

char **strv_new(void)
{
	return calloc(1, sizeof(char *));
}

int strv_copy(const char *const *in, size_t max, char ***out)
{
	size_t n, i;
	char **v;
	int ret = strv_count(in, max, &n);

	if (ret)
		return ret;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v[i] = strdup(in[i]);
		if (!v[i]) {
			strv_free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

int strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	char *copy = strdup(s);
	char **grown;

	if (!copy)
		return -ENOMEM;
	grown = realloc(*v, (n + 2) * sizeof(*grown));
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	grown[n] = copy;
	grown[n + 1] = NULL;
	*v = grown;
	return 0;
}

void strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}
