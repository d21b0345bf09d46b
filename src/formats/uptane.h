/*
 * uptane.h - the rules Uptane (uptane.org, Uptane Standard 2.x, section
 * 5.2) adds to TUF targets metadata, checked on the "signed" part before
 * boltseal signs it:
 *
 *   Director targets (signed per vehicle, online keys): every target names
 *   the ECUs it is for, each with its hardware identifier, and no ECU
 *   appears in two targets; metadata that lists no image still names the
 *   vehicle, so that it cannot be replayed to another vehicle; a Director
 *   does not delegate.
 *
 *   Image repository targets: a target's release counter, when present,
 *   is an integer >= 0 (the service refuses one lower than the last it
 *   signed for the same target name); hardware identifiers, when present,
 *   are non-empty strings.
 *
 * Field names are those of aktualizr / OTA-Connect, the deployed Uptane
 * implementation (the Standard leaves the encoding open):
 *
 *   signed.targets[NAME].custom.ecuIdentifiers = {ECU_ID: {"hardwareId": HWID}}
 *   signed.targets[NAME].custom.hardwareIds    = [HWID, ...]
 *   signed.targets[NAME].custom.releaseCounter = INTEGER
 *   signed.custom.vehicleId                    = VEHICLE_ID  (Director)
 *
 * Errors name the member at fault ($.targets["fw.bin"].custom...).
 */
#ifndef BS_UPTANE_H
#define BS_UPTANE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"

/*
 * Checks a Director's targets signed part for vehicle_id (non-empty): 0,
 * or BS_ERR_INVALID with the reason in err.
 */
int uptane_director_targets_check(const json_t *signed_part, const char *vehicle_id, char *err,
    size_t errlen) BS_WUR;

/*
 * Checks an image repository's targets signed part (release counters and
 * hardware identifiers well-formed): 0, or BS_ERR_INVALID with the reason.
 */
int uptane_image_targets_check(const json_t *signed_part, char *err, size_t errlen) BS_WUR;

/*
 * The release counter of one target entry ({"length", "hashes", "custom"}):
 * 1 and *counter when it has one, 0 when it has none. The entry must have
 * passed uptane_image_targets_check.
 */
int uptane_release_counter(const json_t *target, int64_t *counter);

#endif
