/*
 * jwe-encrypt.c - a test tool around src/formats/jwe.c, for checking it
 * against other implementations (tests/integration/test_jwe_interop.py
 * decrypts its output with jwcrypto):
 *   jwe-encrypt [-k KID] [-c CTY] KEYFILE HEX
 * encrypts the bytes HEX (hex digits, possibly none) to the P-256 public
 * key in KEYFILE, a PEM "PUBLIC KEY" or a DER SubjectPublicKeyInfo (given
 * to the module as it is), and writes the compact JWE and a newline to
 * stdout. Exit 0; 1 with the error on stderr when the module refuses;
 * 2 on usage errors and unreadable input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "formats/jwe.h"

#define KEYFILE_MAX 16384

static void
usage(void)
{
	fprintf(stderr, "usage: jwe-encrypt [-k KID] [-c CTY] KEYFILE HEX\n");
}

/* The DER SPKI in path (PEM converted, DER as read) into *der (malloc'd). 0 or -1. */
static int
read_spki(const char *path, uint8_t **der, size_t *der_len)
{
	static uint8_t buf[KEYFILE_MAX];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == 0 || n == sizeof(buf))
		return -1;
	if (n > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		BIO *b = BIO_new_mem_buf(buf, (int)n);
		EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
		uint8_t *p = NULL;
		int len = pk ? i2d_PUBKEY(pk, &p) : -1;

		BIO_free(b);
		EVP_PKEY_free(pk);
		if (len <= 0)
			return -1;
		if ((*der = malloc((size_t)len)) != NULL)
			memcpy(*der, p, (size_t)len);
		OPENSSL_free(p);
		*der_len = (size_t)len;
		return *der != NULL ? 0 : -1;
	}
	if ((*der = malloc(n)) == NULL)
		return -1;
	memcpy(*der, buf, n);
	*der_len = n;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *kid = NULL, *cty = NULL, *hex;
	uint8_t *der = NULL, *pt = NULL;
	size_t der_len = 0, hex_len, pt_len;
	char *jwe = NULL;
	int c, rc;

	while ((c = getopt(argc, argv, "k:c:")) != -1) {
		switch (c) {
		case 'k':
			kid = optarg;
			break;
		case 'c':
			cty = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage();
		return 2;
	}
	hex = argv[optind + 1];
	hex_len = strlen(hex);
	pt_len = hex_len / 2;
	if (hex_len % 2 != 0 || (pt = malloc(pt_len + 1)) == NULL ||
	    bs_hex_decode(hex, hex_len, pt, pt_len, 0) != 0) {
		fprintf(stderr, "jwe-encrypt: HEX is not an even number of hex digits\n");
		free(pt);
		return 2;
	}
	if (read_spki(argv[optind], &der, &der_len) != 0) {
		fprintf(stderr, "jwe-encrypt: cannot read a key from %s\n", argv[optind]);
		free(pt);
		return 2;
	}
	rc = jwe_encrypt_ecdh_es_a256kw(der, der_len, kid, cty, pt, pt_len, &jwe);
	free(der);
	free(pt);
	if (rc != 0) {
		fprintf(stderr, "jwe-encrypt: %s\n", bs_strerror(rc));
		return 1;
	}
	printf("%s\n", jwe);
	free(jwe);
	return 0;
}
