/*
 * registry.c - the services boltseal has: one line per service. The daemon
 * serves those that are not test-only (and those too when the configuration
 * says test_services = on).
 */
#include "services/services.h"

extern const struct rpc_service keyservice_service;
extern const struct rpc_service auditservice_service;
extern const struct rpc_service health_service;
extern const struct rpc_service echo_service;
extern const struct rpc_service ota_service;
extern const struct rpc_service vehicle_service;
extern const struct rpc_service command_service;
extern const struct rpc_service checkpoint_service;
extern const struct rpc_service envelope_service;
extern const struct rpc_service adminservice_service;
extern const struct rpc_service certificate_service;
extern const struct rpc_service telemetry_service;
extern const struct rpc_service reflection_v1_service;
extern const struct rpc_service reflection_v1alpha_service;

const struct rpc_service *const services_all[] = {
	&keyservice_service,
	&auditservice_service,
	&health_service,
	&echo_service,
	&ota_service,
	&vehicle_service,
	&command_service,
	&checkpoint_service,
	&envelope_service,
	&adminservice_service,
	&certificate_service,
	&telemetry_service,
	&reflection_v1_service,
	&reflection_v1alpha_service,
};

const size_t services_count = sizeof(services_all) / sizeof(services_all[0]);
