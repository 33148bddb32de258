/* Minimal unit-test harness: each check prints PASS/FAIL lines that tests/run.sh counts. */
#ifndef KRUN_TESTS_HARNESS_H
#define KRUN_TESTS_HARNESS_H

#include <stdio.h>
#include <string.h>

#include "../open_fds.h"

static int harness_failed_checks;
static const char *harness_current;

#define CHECK(cond) do { \
	if (!(cond)) { \
		printf("FAIL %s: %s:%d: %s\n", harness_current, __FILE__, __LINE__, #cond); \
		harness_failed_checks++; \
		return; \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ != check_b_) { \
		printf("FAIL %s: %s:%d: %s == %lld, expected %s == %lld\n", harness_current, \
		       __FILE__, __LINE__, #a, check_a_, #b, check_b_); \
		harness_failed_checks++; \
		return; \
	} \
} while (0)

/* Runs one test function and prints its verdict. */
#define RUN_TEST(fn) do { \
	int before_ = harness_failed_checks; \
	harness_current = #fn; \
	fn(); \
	if (harness_failed_checks == before_) \
		printf("PASS %s\n", #fn); \
} while (0)

#define HARNESS_EXIT() (harness_failed_checks ? 1 : 0)

#endif
