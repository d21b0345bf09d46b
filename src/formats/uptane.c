/*
 * uptane.c - Uptane's rules for targets metadata on top of TUF's (see
 * uptane.h): the Director's ECU identifiers and vehicle identifier, the
 * image repository's release counters and hardware identifiers.
 */
#include <stdio.h>
#include <string.h>

#include "formats/uptane.h"

#define NAME_SHOWN "%.64s"   /* names in messages are cut to 64 bytes */

static int
nonempty_string(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0;
}

/* signed.targets: an object, else BS_ERR_INVALID. */
static const json_t *
targets_of(const json_t *signed_part, char *err, size_t errlen)
{
	const json_t *t = json_object_get(signed_part, "targets");

	if (!json_is_object(t))
		snprintf(err, errlen, "$.targets: missing or not an object");
	return json_is_object(t) ? t : NULL;
}

int
uptane_director_targets_check(const json_t *signed_part, const char *vehicle_id, char *err,
    size_t errlen)
{
	const json_t *targets, *entry, *ecus, *ecu, *custom, *vid, *first;
	const char *name, *ecu_id;
	json_t *seen;                 /* ECU id -> the target that named it first */
	int rc = 0;

	if ((targets = targets_of(signed_part, err, errlen)) == NULL)
		return BS_ERR_INVALID;
	if (json_object_get(signed_part, "delegations") != NULL) {
		snprintf(err, errlen, "$.delegations: a Director does not delegate");
		return BS_ERR_INVALID;
	}
	custom = json_object_get(signed_part, "custom");
	vid = json_object_get(custom, "vehicleId");
	if (vid != NULL && (!json_is_string(vid) || strcmp(json_string_value(vid), vehicle_id) != 0)) {
		snprintf(err, errlen, "$.custom.vehicleId: not the vehicle signed for ('" NAME_SHOWN
		    "')", vehicle_id);
		return BS_ERR_INVALID;
	}
	if (json_object_size(targets) == 0 && vid == NULL) {
		snprintf(err, errlen, "$.custom.vehicleId: required when no target is listed (so the "
		    "metadata cannot be replayed to another vehicle)");
		return BS_ERR_INVALID;
	}
	if ((seen = json_object()) == NULL)
		return BS_ERR_NOMEM;
	json_object_foreach((json_t *)targets, name, entry) {
		ecus = json_object_get(json_object_get(entry, "custom"), "ecuIdentifiers");
		if (!json_is_object(ecus) || json_object_size(ecus) == 0) {
			snprintf(err, errlen, "$.targets[\"" NAME_SHOWN "\"].custom.ecuIdentifiers: "
			    "missing or empty (every Director target names its ECUs)", name);
			rc = BS_ERR_INVALID;
			goto out;
		}
		json_object_foreach((json_t *)ecus, ecu_id, ecu) {
			if (ecu_id[0] == '\0' ||
			    !nonempty_string(json_object_get(ecu, "hardwareId"))) {
				snprintf(err, errlen, "$.targets[\"" NAME_SHOWN "\"].custom.ecuIdentifiers"
				    "[\"" NAME_SHOWN "\"]: needs a non-empty ECU identifier and "
				    "hardwareId", name, ecu_id);
				rc = BS_ERR_INVALID;
				goto out;
			}
			if ((first = json_object_get(seen, ecu_id)) != NULL) {
				snprintf(err, errlen, "ECU '" NAME_SHOWN "' is named by two targets ('"
				    NAME_SHOWN "' and '" NAME_SHOWN "'); an ECU gets one image", ecu_id,
				    json_string_value(first), name);
				rc = BS_ERR_INVALID;
				goto out;
			}
			if (json_object_set_new(seen, ecu_id, json_string(name)) != 0) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
		}
	}
out:
	json_decref(seen);
	return rc;
}

int
uptane_image_targets_check(const json_t *signed_part, char *err, size_t errlen)
{
	const json_t *targets, *entry, *custom, *rc, *hw, *id;
	const char *name;
	size_t i;

	if ((targets = targets_of(signed_part, err, errlen)) == NULL)
		return BS_ERR_INVALID;
	json_object_foreach((json_t *)targets, name, entry) {
		custom = json_object_get(entry, "custom");
		rc = json_object_get(custom, "releaseCounter");
		if (rc != NULL && (!json_is_integer(rc) || json_integer_value(rc) < 0)) {
			snprintf(err, errlen, "$.targets[\"" NAME_SHOWN "\"].custom.releaseCounter: "
			    "must be an integer >= 0", name);
			return BS_ERR_INVALID;
		}
		hw = json_object_get(custom, "hardwareIds");
		if (hw == NULL)
			continue;
		if (!json_is_array(hw) || json_array_size(hw) == 0) {
			snprintf(err, errlen, "$.targets[\"" NAME_SHOWN "\"].custom.hardwareIds: must be "
			    "a non-empty array of strings", name);
			return BS_ERR_INVALID;
		}
		json_array_foreach(hw, i, id) {
			if (!nonempty_string(id)) {
				snprintf(err, errlen, "$.targets[\"" NAME_SHOWN "\"].custom.hardwareIds[%zu]: "
				    "must be a non-empty string", name, i);
				return BS_ERR_INVALID;
			}
		}
	}
	return 0;
}

int
uptane_release_counter(const json_t *target, int64_t *counter)
{
	const json_t *rc = json_object_get(json_object_get(target, "custom"), "releaseCounter");

	if (!json_is_integer(rc))
		return 0;
	*counter = (int64_t)json_integer_value(rc);
	return 1;
}
