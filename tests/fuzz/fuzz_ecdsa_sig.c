/*
 * fuzz_ecdsa_sig.c - fuzz target of the strict ECDSA DER decoder
 * (src/formats/ecdsa_sig.c): what it accepts must encode back to the same
 * bytes (one encoding per signature) and must be what OpenSSL's
 * d2i_ECDSA_SIG reads, with the same r and s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "formats/ecdsa_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t raw[ECDSA_P256_RAW_LEN], der[80], rs[ECDSA_P256_RAW_LEN];
	const unsigned char *p = data;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	size_t dlen = 0;

	if (ecdsa_sig_der_to_raw(data, size, raw) != 0)
		return 0;
	if (ecdsa_sig_raw_to_der(raw, der, sizeof(der), &dlen) != 0 || dlen != size ||
	    memcmp(der, data, size) != 0)
		abort();
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)size)) == NULL || p != data + size)
		abort();
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32 ||
	    memcmp(rs, raw, sizeof(raw)) != 0)
		abort();
	ECDSA_SIG_free(sig);
	return 0;
}
