/*
 * test_uptane.c - unit tests for src/formats/uptane.c: Director targets
 * (ECU identifiers with hardware ids on every target, no ECU twice, the
 * vehicle identifier when nothing is listed and never another vehicle's,
 * no delegations) and image repository targets (release counters integers
 * >= 0, hardware ids non-empty strings), each refusal naming its member.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "formats/uptane.h"

static json_t *
parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &e);

	assert_non_null(j);
	return j;
}

/*
 * The Director's check (vehicle "VIN1") or the image repository's of
 * text: accepted (want NULL) or refused with want in the message.
 */
static void
check(int is_director, const char *text, const char *want)
{
	json_t *j = parse(text);
	char err[256] = "";
	int rc = is_director ? uptane_director_targets_check(j, "VIN1", err, sizeof(err)) :
	    uptane_image_targets_check(j, err, sizeof(err));

	if (want == NULL) {
		assert_int_equal(rc, 0);
	} else {
		assert_int_equal(rc, BS_ERR_INVALID);
		if (strstr(err, want) == NULL)
			fail_msg("error '%s' lacks '%s'", err, want);
	}
	json_decref(j);
}

#define director(text, want) check(1, text, want)
#define image(text, want) check(0, text, want)

#define ECU(id, hw) "\"" id "\":{\"hardwareId\":\"" hw "\"}"
#define T(name, ecus) "\"" name "\":{\"length\":1,\"hashes\":{},\"custom\":{\"ecuIdentifiers\":{" ecus "}}}"

static void
test_director_accepts(void **state)
{
	(void)state;
	director("{\"targets\":{" T("a.bin", ECU("ecu-1", "hw-a")) "," T("b.bin", ECU("ecu-2", "hw-b")
	    "," ECU("ecu-3", "hw-b")) "}}", NULL);
	/* nothing to install: the vehicle is named */
	director("{\"targets\":{},\"custom\":{\"vehicleId\":\"VIN1\"}}", NULL);
	director("{\"targets\":{" T("a.bin", ECU("ecu-1", "hw")) "},\"custom\":{\"vehicleId\":\"VIN1\"}}",
	    NULL);
}

static void
test_director_refuses(void **state)
{
	(void)state;
	director("{}", "$.targets: missing");
	director("{\"targets\":[]}", "$.targets: missing or not an object");
	director("{\"targets\":{}}", "$.custom.vehicleId: required when no target is listed");
	director("{\"targets\":{},\"custom\":{\"vehicleId\":\"VIN2\"}}",
	    "$.custom.vehicleId: not the vehicle signed for ('VIN1')");
	director("{\"targets\":{},\"custom\":{\"vehicleId\":7}}", "$.custom.vehicleId: not the vehicle");
	director("{\"targets\":{\"a.bin\":{\"length\":1,\"hashes\":{}}}}",
	    "$.targets[\"a.bin\"].custom.ecuIdentifiers: missing or empty");
	director("{\"targets\":{" T("a.bin", "") "}}", "ecuIdentifiers: missing or empty");
	director("{\"targets\":{" T("a.bin", "\"ecu-1\":{}") "}}",
	    "$.targets[\"a.bin\"].custom.ecuIdentifiers[\"ecu-1\"]: needs a non-empty ECU "
	    "identifier and hardwareId");
	director("{\"targets\":{" T("a.bin", ECU("ecu-1", "")) "}}", "needs a non-empty");
	director("{\"targets\":{" T("a.bin", ECU("", "hw")) "}}", "needs a non-empty");
	director("{\"targets\":{" T("a.bin", ECU("ecu-1", "hw")) "," T("b.bin", ECU("ecu-1", "hw"))
	    "}}", "ECU 'ecu-1' is named by two targets ('a.bin' and 'b.bin')");
	director("{\"targets\":{" T("a.bin", ECU("ecu-1", "hw")) "},\"delegations\":{}}",
	    "$.delegations: a Director does not delegate");
}

static void
test_image_counters(void **state)
{
	json_t *j;
	int64_t c = -1;

	(void)state;
	image("{\"targets\":{\"a\":{\"custom\":{\"releaseCounter\":3,\"hardwareIds\":[\"hw\"]}},"
	    "\"b\":{\"length\":1}}}", NULL);
	image("{\"targets\":{\"a\":{\"custom\":{\"releaseCounter\":-1}}}}",
	    "$.targets[\"a\"].custom.releaseCounter: must be an integer >= 0");
	image("{\"targets\":{\"a\":{\"custom\":{\"releaseCounter\":\"3\"}}}}", "releaseCounter");
	image("{\"targets\":{\"a\":{\"custom\":{\"hardwareIds\":[]}}}}",
	    "$.targets[\"a\"].custom.hardwareIds: must be a non-empty array");
	image("{\"targets\":{\"a\":{\"custom\":{\"hardwareIds\":[\"x\",\"\"]}}}}",
	    "$.targets[\"a\"].custom.hardwareIds[1]: must be a non-empty string");
	image("{\"targets\":7}", "$.targets: missing or not an object");

	j = parse("{\"custom\":{\"releaseCounter\":12}}");
	assert_int_equal(uptane_release_counter(j, &c), 1);
	assert_int_equal(c, 12);
	json_decref(j);
	j = parse("{\"length\":1}");
	assert_int_equal(uptane_release_counter(j, &c), 0);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_director_accepts),
		cmocka_unit_test(test_director_refuses),
		cmocka_unit_test(test_image_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
