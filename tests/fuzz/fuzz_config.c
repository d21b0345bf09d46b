/*
 * fuzz_config.c - fuzz target of boltsealed's configuration reader
 * (src/daemon/config.c, from a buffer via config_parse): any bytes as a
 * configuration file. A rejected file has error text naming the file; an
 * accepted one has every required key set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bs_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bs_config c;
	char *errors = NULL;
	int rc;

	config_defaults(&c);
	rc = config_parse("fuzz.conf", "/fuzz", (const char *)data, size, &c, &errors);
	if (rc == BS_ERR_CONFIG && (errors == NULL || strncmp(errors, "fuzz.conf", 9) != 0))
		abort();
	if (rc == 0 && (errors != NULL || c.listen == NULL || c.tls_cert == NULL ||
	    c.tls_key == NULL || c.tls_client_ca == NULL || c.tls_crl == NULL || c.policy == NULL ||
	    c.pkcs11_module == NULL || c.token_uri == NULL || c.state_dir == NULL ||
	    (c.pin_file == NULL) == (c.pin_fd < 0)))
		abort();
	free(errors);
	config_clear(&c);
	return 0;
}
