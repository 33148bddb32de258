/* Host unit tests of the init's parsers: config records, JSON and the OCI/Docker reader. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "config.h"
#include "json.h"
#include "oci.h"

#define REC(s) s, sizeof(s) - 1

static int parse(struct config *c, const char *buf, size_t len)
{
	const char *why;

	config_init(c);
	return config_parse_records(c, buf, len, &why);
}

static void test_records_full(void)
{
	struct config c;
	static const char recs[] = "exec=/bin/sh\0arg=-c\0arg=echo hi\0env=A=1\0env=B=x=y\0"
		"workdir=/w\0rlimit=NOFILE=10:20\0rlimit=6=unlimited:-1\0hostname=h\0"
		"mount=vol0:/mnt/a\0uid=1000\0gid=100\0future=ignored\0\0";

	CHECK_EQ(parse(&c, REC(recs)), 0);
	CHECK(!strcmp(c.exec, "/bin/sh"));
	CHECK_EQ(c.argc, 3);
	CHECK(!strcmp(c.argv[0], "/bin/sh") && !strcmp(c.argv[2], "echo hi") && !c.argv[3]);
	CHECK_EQ(c.envc, 2);
	CHECK(!strcmp(c.env[1], "B=x=y") && !c.env[2]);
	CHECK(!strcmp(c.workdir, "/w") && !strcmp(c.hostname, "h"));
	CHECK_EQ(c.nrlimits, 2);
	CHECK_EQ(c.rlimits[0].resource, RLIMIT_NOFILE);
	CHECK_EQ(c.rlimits[0].cur, 10);
	CHECK_EQ(c.rlimits[0].max, 20);
	CHECK_EQ(c.rlimits[1].resource, 6);
	CHECK(c.rlimits[1].cur == RLIM_INFINITY && c.rlimits[1].max == RLIM_INFINITY);
	CHECK_EQ(c.nmounts, 1);
	CHECK(!strcmp(c.mounts[0].tag, "vol0") && !strcmp(c.mounts[0].path, "/mnt/a"));
	CHECK(c.has_uid && c.uid == 1000 && c.has_gid && c.gid == 100);
	config_free(&c);
}

static void test_records_order(void)
{
	struct config c;

	/* Args before exec keep their order after argv[0]; a repeated limit replaces. */
	CHECK_EQ(parse(&c, REC("arg=1\0exec=/x\0arg=2\0rlimit=RLIMIT_NOFILE=1:2\0"
			       "rlimit=nofile=3:4\0")), 0);
	CHECK(c.argc == 3 && !strcmp(c.argv[0], "/x") && !strcmp(c.argv[1], "1"));
	CHECK(c.nrlimits == 1 && c.rlimits[0].cur == 3);
	config_free(&c);
	CHECK_EQ(parse(&c, "", 0), 0);
	CHECK(!c.exec && !c.argv && !c.has_env);
	config_free(&c);
}

static void test_records_bad(void)
{
	static const struct {
		const char *buf;
		size_t len;
	} bad[] = {
		{ REC("exec=/x\0arg=a") },              /* last record truncated */
		{ REC("arg=a\0") },                     /* args without exec */
		{ REC("noequals\0") },
		{ REC("exec=\0") },
		{ REC("env=NOEQ\0") },
		{ REC("workdir=relative\0") },
		{ REC("rlimit=NOFILE=1\0") },
		{ REC("rlimit=BOGUS=1:2\0") },
		{ REC("rlimit=99=1:2\0") },
		{ REC("rlimit=NOFILE=1:99999999999999999999\0") },
		{ REC("rlimit=NOFILE=-2:3\0") },
		{ REC("mount=tag\0") },
		{ REC("mount=:/p\0") },
		{ REC("mount=tag:rel\0") },
		{ REC("uid=-1\0") },
		{ REC("uid=4294967295\0") },
		{ REC("uid=12a\0") },
		{ REC("gid=\0") },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config c;
		int r = parse(&c, bad[i].buf, bad[i].len);
		config_free(&c);
		if (r >= 0)
			printf("  bad record set %zu accepted\n", i);
		CHECK(r < 0);
	}
}

static void test_u64(void)
{
	unsigned long long v;

	CHECK_EQ(config_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ(config_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	CHECK_EQ(config_parse_u64("11", 10, &v), -ERANGE);
	CHECK_EQ(config_parse_u64("", 10, &v), -EINVAL);
	CHECK_EQ(config_parse_u64("+1", 10, &v), -EINVAL);
	CHECK_EQ(config_rlimit_resource("RLIMIT_STACK"), RLIMIT_STACK);
	CHECK_EQ(config_rlimit_resource("rttime"), RLIMIT_RTTIME);
	CHECK_EQ(config_rlimit_resource("16"), -1);
}

static const char sample[] =
	"{ \"a\": [1, -2.5e3, true, false, null, \"s\\n\\u00e9\\ud83d\\ude00\\\"\"],\n"
	"  \"b\": {\"c\": {}, \"d\": []}, \"k\\u0065y\": 7 }";

static void test_json_valid(void)
{
	struct json j;
	int64_t v;

	CHECK_EQ(json_parse(&j, sample, strlen(sample)), 0);
	CHECK(json_is(&j, 0, JSON_OBJECT) && j.toks[0].count == 3);
	int a = json_get(&j, 0, "a");
	CHECK(json_is(&j, a, JSON_ARRAY) && j.toks[a].count == 6);
	CHECK_EQ(json_int64(&j, json_index(&j, a, 0), &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(json_int64(&j, json_index(&j, a, 1), &v), -EINVAL);
	CHECK(json_is(&j, json_index(&j, a, 2), JSON_TRUE));
	CHECK(json_is(&j, json_index(&j, a, 4), JSON_NULL));
	CHECK_EQ(json_index(&j, a, 6), -1);
	char *s = json_strdup(&j, json_index(&j, a, 5));
	CHECK(s && !strcmp(s, "s\n\xc3\xa9\xf0\x9f\x98\x80\""));
	free(s);
	int b = json_get(&j, 0, "b");
	CHECK(json_is(&j, json_get(&j, b, "d"), JSON_ARRAY));
	CHECK(json_is(&j, json_get(&j, b, "c"), JSON_OBJECT));
	CHECK_EQ(json_get(&j, b, "e"), -1);
	CHECK_EQ(json_get(&j, a, "x"), -1);     /* not an object */
	CHECK_EQ(json_int64(&j, json_get(&j, 0, "key"), &v), 0);   /* escaped key */
	CHECK_EQ(v, 7);
	json_free(&j);
}

static void test_json_truncated(void)
{
	/* Every proper prefix of an object is invalid; none may crash or read past len. */
	for (size_t n = 0; n < strlen(sample); n++) {
		char *copy = malloc(n ? n : 1);
		struct json j;
		memcpy(copy, sample, n);
		int r = json_parse(&j, copy, n);
		free(copy);
		if (r != -EINVAL)
			printf("  prefix %zu gave %d\n", n, r);
		CHECK_EQ(r, -EINVAL);
	}
}

static void test_json_invalid(void)
{
	static const char *const bad[] = {
		"", "  ", "01", "1.", "-", "+1", ".5", "1e", "[1,]", "[,1]", "{\"a\"}", "{\"a\":1,}",
		"{a:1}", "nul", "tru", "\"\\x\"", "\"a\nb\"", "\"\\u12g4\"", "{} x", "[1 2]", "'s'",
		"[\"a\",]", "{\"a\":1 \"b\":2}", "\"abc", "[", "]", "}", "\"\\", "NaN", "Infinity",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json j;
		int r = json_parse(&j, bad[i], strlen(bad[i]));
		if (r != -EINVAL)
			printf("  \"%s\" gave %d\n", bad[i], r);
		CHECK_EQ(r, -EINVAL);
	}
	/* A NUL inside the text is not JSON either. */
	struct json j;
	CHECK_EQ(json_parse(&j, "[1,\0 2]", 7), -EINVAL);
}

static void test_json_strings(void)
{
	static const char doc[] = "[\"a\\u0000b\", \"\\udc00\", \"\\ud800x\", \"\\ud800\\u0041\", \"\"]";
	struct json j;

	CHECK_EQ(json_parse(&j, doc, strlen(doc)), 0);
	for (size_t i = 0; i < 4; i++) {
		char *s = json_strdup(&j, json_index(&j, 0, i));
		free(s);
		CHECK(!s);      /* embedded NUL and lone surrogates are refused */
	}
	char *s = json_strdup(&j, json_index(&j, 0, 4));
	CHECK(s && !*s);
	free(s);
	CHECK(!json_strdup(&j, 0));     /* not a string */
	json_free(&j);
}

static void test_json_deep(void)
{
	size_t n = 100000;
	char *doc = malloc(2 * n);
	struct json j;

	for (size_t i = 0; i < n; i++) {
		doc[i] = '[';
		doc[2 * n - 1 - i] = ']';
	}
	CHECK_EQ(json_parse(&j, doc, 2 * n), -ELOOP);
	/* Exactly the limit is fine, one more is not. */
	CHECK_EQ(json_parse(&j, doc + n - JSON_MAX_DEPTH, 2 * JSON_MAX_DEPTH), 0);
	json_free(&j);
	CHECK_EQ(json_parse(&j, doc + n - JSON_MAX_DEPTH - 1, 2 * JSON_MAX_DEPTH + 2), -ELOOP);
	memset(doc, '{', n);
	CHECK_EQ(json_parse(&j, doc, n), -EINVAL);
	free(doc);
}

static void test_json_numbers(void)
{
	static const char doc[] = "[1e999999, 99999999999999999999999, -9223372036854775808, "
		"9223372036854775807, 9223372036854775808, -9223372036854775809, -0, 0.0]";
	struct json j;
	int64_t v;

	CHECK_EQ(json_parse(&j, doc, strlen(doc)), 0);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 0), &v), -EINVAL);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 1), &v), -ERANGE);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 2), &v), 0);
	CHECK(v == INT64_MIN);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 3), &v), 0);
	CHECK(v == INT64_MAX);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 4), &v), -ERANGE);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 5), &v), -ERANGE);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 6), &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(json_int64(&j, json_index(&j, 0, 7), &v), -EINVAL);
	CHECK_EQ(json_int64(&j, 0, &v), -EINVAL);
	json_free(&j);
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static const char crun_config[] =
	"{\"ociVersion\":\"1.0.0\",\"process\":{\"terminal\":false,"
	"\"user\":{\"uid\":1000,\"gid\":100,\"additionalGids\":[10,20]},"
	"\"args\":[\"/bin/echo\",\"hello world\"],"
	"\"env\":[\"PATH=/usr/bin:/bin\",\"TERM=xterm\",\"X=a b\"],\"cwd\":\"/srv\","
	"\"capabilities\":{\"bounding\":[\"CAP_CHOWN\"]},"
	"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":4096,\"soft\":1024},"
	"{\"type\":\"RLIMIT_CORE\",\"hard\":18446744073709551615,\"soft\":-1}],"
	"\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":false},"
	"\"hostname\":\"ctr\",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"}],"
	"\"annotations\":{\"run.oci.handler\":\"krun\"},\"linux\":{\"namespaces\":[]}}";

static void test_json_garbage(void)
{
	char buf[512];

	/* Random bytes from JSON's alphabet, then random mutations of a real config. */
	for (int it = 0; it < 20000; it++) {
		static const char alpha[] = "{}[]\",:0123456789-+.eE \\u\"truefalsenull\x01\xff";
		size_t n = rng() % sizeof(buf);
		struct json j;
		for (size_t i = 0; i < n; i++)
			buf[i] = alpha[rng() % (sizeof(alpha) - 1)];
		if (json_parse(&j, buf, n) == 0)
			json_free(&j);
	}
	char *m = malloc(sizeof(crun_config));
	for (int it = 0; it < 20000; it++) {
		struct config c;
		const char *why;
		memcpy(m, crun_config, sizeof(crun_config));
		for (int k = 1 + (int)(rng() % 4); k > 0; k--)
			m[rng() % (sizeof(crun_config) - 1)] = (char)rng();
		config_init(&c);
		oci_load(&c, m, sizeof(crun_config) - 1 - rng() % 8, &why);
		config_free(&c);
	}
	free(m);
}

static void test_oci_crun(void)
{
	struct config c;
	const char *why;

	config_init(&c);
	CHECK_EQ(oci_load(&c, crun_config, strlen(crun_config), &why), 0);
	CHECK(!strcmp(c.exec, "/bin/echo") && c.argc == 2 && !strcmp(c.argv[1], "hello world"));
	CHECK(c.has_env && c.envc == 3 && !strcmp(c.env[2], "X=a b"));
	CHECK(!strcmp(c.workdir, "/srv") && !strcmp(c.hostname, "ctr"));
	CHECK(c.has_uid && c.uid == 1000 && c.has_gid && c.gid == 100);
	CHECK(c.has_groups && c.ngroups == 2 && c.groups[1] == 20);
	CHECK_EQ(c.nrlimits, 2);
	CHECK(c.rlimits[0].resource == RLIMIT_NOFILE && c.rlimits[0].cur == 1024 &&
	      c.rlimits[0].max == 4096);
	CHECK(c.rlimits[1].cur == RLIM_INFINITY && c.rlimits[1].max == RLIM_INFINITY);
	config_free(&c);
}

static void test_oci_docker(void)
{
	static const char top[] = "{\"Entrypoint\":[\"/bin/x\",\"-a\"],\"Cmd\":[\"sh\"],"
		"\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\",\"User\":\"1000:100\"}";
	static const char nested[] = "{\"architecture\":\"amd64\",\"config\":{\"Entrypoint\":null,"
		"\"Cmd\":\"/bin/sh\",\"WorkingDir\":\"\",\"User\":\"nobody\"}}";
	struct config c;
	const char *why;

	config_init(&c);
	CHECK_EQ(oci_load(&c, top, strlen(top), &why), 0);
	CHECK(c.argc == 3 && !strcmp(c.exec, "/bin/x") && !strcmp(c.argv[2], "sh"));
	CHECK(c.envc == 1 && !strcmp(c.workdir, "/w"));
	CHECK(c.has_uid && c.uid == 1000 && c.has_gid && c.gid == 100);
	config_free(&c);
	CHECK_EQ(oci_load(&c, nested, strlen(nested), &why), 0);
	CHECK(c.argc == 1 && !strcmp(c.exec, "/bin/sh"));
	CHECK(!c.workdir && !c.has_uid && !c.has_env);
	config_free(&c);
}

static void test_oci_bad(void)
{
	static const char *const bad[] = {
		"[]", "{}", "{\"process\":{\"args\":[]}}", "{\"process\":{\"args\":[1]}}",
		"{\"process\":{\"args\":[\"\"]}}", "{\"process\":{\"args\":\"/bin/sh\",\"env\":[\"NOEQ\"]}}",
		"{\"process\":{\"args\":[\"/x\"],\"user\":{\"uid\":-1}}}",
		"{\"process\":{\"args\":[\"/x\"],\"user\":{\"uid\":1.5}}}",
		"{\"process\":{\"args\":[\"/x\"],\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"hard\":1,\"soft\":1}]}}",
		"{\"process\":{\"args\":[\"/x\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\"}]}}",
		"{\"process\":{\"args\":[\"/x\"]},\"hostname\":5}",
		"{\"process\":{\"args\":[\"/x\\u0000y\"]}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config c;
		const char *why = NULL;
		config_init(&c);
		int r = oci_load(&c, bad[i], strlen(bad[i]), &why);
		config_free(&c);
		if (r >= 0)
			printf("  accepted %s\n", bad[i]);
		CHECK(r < 0 && why);
	}
}

static void test_merge(void)
{
	struct config rec, oci;
	const char *why;

	CHECK_EQ(parse(&rec, REC("workdir=/r\0rlimit=NOFILE=5:6\0mount=t:/m\0")), 0);
	config_init(&oci);
	CHECK_EQ(oci_load(&oci, crun_config, strlen(crun_config), &why), 0);
	config_merge(&rec, &oci);
	config_free(&oci);
	CHECK(!strcmp(rec.exec, "/bin/echo") && rec.argc == 2 && rec.envc == 3);
	CHECK(!strcmp(rec.workdir, "/r") && rec.nmounts == 1 && rec.uid == 1000);
	CHECK_EQ(rec.nrlimits, 2);
	CHECK(rec.rlimits[0].resource == RLIMIT_NOFILE && rec.rlimits[0].cur == 5);
	config_free(&rec);
}

int main(void)
{
	RUN_TEST(test_records_full);
	RUN_TEST(test_records_order);
	RUN_TEST(test_records_bad);
	RUN_TEST(test_u64);
	RUN_TEST(test_json_valid);
	RUN_TEST(test_json_truncated);
	RUN_TEST(test_json_invalid);
	RUN_TEST(test_json_strings);
	RUN_TEST(test_json_deep);
	RUN_TEST(test_json_numbers);
	RUN_TEST(test_json_garbage);
	RUN_TEST(test_oci_crun);
	RUN_TEST(test_oci_docker);
	RUN_TEST(test_oci_bad);
	RUN_TEST(test_merge);
	return HARNESS_EXIT();
}
