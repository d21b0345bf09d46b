/*
 * fuzz_policy.c - fuzz target of the policy parser (src/policy, from a
 * buffer): any bytes as a policy text against a small schema; a policy that
 * parses is mapped and evaluated once, and an error message always names
 * the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = { "s.v1.S/Sign", "s.v1.S/Get", "a.v1.A/Read" };
static const char *const purposes[] = { "generic", "ota" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_schema schema = { methods, 3, purposes, 2 };
	struct policy_request req = { "s.v1.S/Sign", "k1", "generic", NULL, 0, NULL };
	struct policy_verdict v;
	const struct policy_principal *pr;
	struct policy *p = NULL;
	char err[2048];

	if (policy_parse("fuzz", (const char *)data, size, &schema, &p, err, sizeof(err)) != 0) {
		if (err[0] != '\0' && strncmp(err, "fuzz", 4) != 0)
			abort();
		return 0;
	}
	if ((pr = policy_map(p, "spiffe://x/y", NULL)) != NULL)
		(void)policy_evaluate(p, pr, "spiffe://x/y", &req, &v);
	policy_free(p);
	return 0;
}
