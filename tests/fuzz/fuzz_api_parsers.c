/* libFuzzer target: API string parsers (rlimits, ports, volumes) and the init's config/JSON/OCI. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ctx.h"
#include "libkrun.h"
#include "util/log.h"

#include "config.h"     /* init/: the guest init's parsers, built for the host */
#include "json.h"
#include "oci.h"

/*
 * Input: a selector byte, then the text. For the API parsers the text is split at NULs
 * into a NULL-terminated string array; the init parsers get it as is (records are
 * NUL-separated anyway). Rlimits the API accepts must read back the same in the init.
 */
#define MAX_STRINGS 64

static int32_t ctx = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	ctx = krun_create_ctx();
	if (ctx < 0)
		abort();
	return 0;
}

/* Split text at NULs; the strings point into buf (a NUL-terminated copy). */
static size_t split(char *buf, size_t len, const char **v)
{
	size_t n = 0, at = 0;

	while (at < len && n < MAX_STRINGS) {
		v[n++] = buf + at;
		at += strlen(buf + at) + 1;
	}
	v[n] = NULL;
	return n;
}

/* Every normalized rlimit the API stored must parse in the init to the same numbers. */
static void check_rlimits_roundtrip(void)
{
	struct krun_ctx *c = ctx_lock((uint32_t)ctx);
	char rec[128];

	if (!c)
		abort();
	for (char **r = c->rlimits; r && *r; r++) {
		struct config cfg;
		const char *why = NULL;
		unsigned long long res, cur, max;
		int len = snprintf(rec, sizeof(rec), "rlimit=%s", *r);

		if (len < 0 || (size_t)len >= sizeof(rec) || sscanf(*r, "%llu=%llu:%llu", &res, &cur, &max) != 3)
			abort();
		config_init(&cfg);
		if (config_parse_records(&cfg, rec, (size_t)len + 1, &why) || cfg.nrlimits != 1 ||
		    (unsigned long long)cfg.rlimits[0].resource != res || cfg.rlimits[0].cur != cur ||
		    cfg.rlimits[0].max != max) {
			fprintf(stderr, "fuzz_api_parsers: API stored rlimit \"%s\" the init reads as %s\n",
				*r, why ? why : "different values");
			abort();
		}
		config_free(&cfg);
	}
	ctx_unlock();
}

/* Walk every token through the accessors, then read the text as an OCI config. */
static void json_and_oci(const char *text, size_t len)
{
	struct json j;
	struct config cfg;
	const char *why = NULL;

	if (json_parse(&j, text, len) == 0) {
		for (size_t t = 0; t < j.ntoks; t++) {
			int64_t v;
			char *s = json_strdup(&j, (int)t);

			free(s);
			(void)json_int64(&j, (int)t, &v);
			(void)json_index(&j, (int)t, 0);
			(void)json_get(&j, (int)t, "args");
			if (j.toks[t].next > j.ntoks || j.toks[t].next <= t)
				abort();
		}
		json_free(&j);
	}
	config_init(&cfg);
	(void)oci_load(&cfg, text, len, &why);
	config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v[MAX_STRINGS + 1];
	struct config cfg;
	const char *why = NULL;
	char *buf;

	if (size < 1 || size > (1u << 16))
		return 0;
	buf = malloc(size);     /* exactly the text plus a NUL: ASan sees any overrun */
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = 0;
	switch (data[0] % 5) {
	case 0:
		split(buf, size - 1, v);
		if (krun_set_rlimits((uint32_t)ctx, v) == 0)
			check_rlimits_roundtrip();
		break;
	case 1:
		split(buf, size - 1, v);
		(void)krun_set_port_map((uint32_t)ctx, v);
		break;
	case 2:
		split(buf, size - 1, v);
		(void)krun_set_mapped_volumes((uint32_t)ctx, v);
		break;
	case 3:
		config_init(&cfg);
		(void)config_parse_records(&cfg, buf, size - 1, &why);
		config_free(&cfg);
		break;
	default:
		json_and_oci(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}
