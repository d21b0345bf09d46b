/*
 * sign-example.c - a program built against an INSTALLED libboltseal
 * (`cc sign-example.c $(pkg-config --cflags --libs boltseal)`), as a user
 * of the client library would write it: connect with mutual TLS, call
 * boltseal.v1.KeyService/Sign with a SignRequest encoded here (it has two
 * fields), print the signature's bytes in hex. Used by
 * tests/integration/test_install.py.
 *
 * Usage: sign-example HOST PORT CA CERT KEY KEY_NAME MESSAGE
 * Exit 0 and the hex signature on stdout; else 1 and why on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <boltseal/client.h>

/* Appends a length-delimited protobuf field (wire type 2, lengths < 128). */
static size_t
put_bytes(uint8_t *out, size_t at, unsigned field, const void *p, size_t len)
{
	out[at++] = (uint8_t)(field << 3 | 2);
	out[at++] = (uint8_t)len;
	memcpy(out + at, p, len);
	return at + len;
}

int
main(int argc, char **argv)
{
	struct bs_client_opts o;
	struct bs_call_result res;
	bs_client *c = NULL;
	uint8_t req[300];
	size_t n = 0, i;
	char err[256];

	if (argc != 8 || strlen(argv[6]) > 100 || strlen(argv[7]) > 100) {
		fprintf(stderr, "usage: sign-example HOST PORT CA CERT KEY KEY_NAME MESSAGE\n");
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.host = argv[1];
	o.port = argv[2];
	o.server_name = "localhost";
	o.ca_file = argv[3];
	o.cert_file = argv[4];
	o.key_file = argv[5];
	if (bs_client_connect(&o, &c, err, sizeof(err)) != BS_CLIENT_OK) {
		fprintf(stderr, "connect: %s\n", err);
		return 1;
	}
	n = put_bytes(req, n, 1, argv[6], strlen(argv[6]));   /* key_name */
	n = put_bytes(req, n, 2, argv[7], strlen(argv[7]));   /* message */
	memset(&res, 0, sizeof(res));
	if (bs_client_unary(c, "/boltseal.v1.KeyService/Sign", req, n, &res) != BS_CLIENT_OK ||
	    res.grpc_status != 0) {
		fprintf(stderr, "Sign: status %d: %s\n", res.grpc_status,
		    res.grpc_message != NULL ? res.grpc_message : "no answer");
		bs_call_result_clear(&res);
		bs_client_free(c);
		return 1;
	}
	/* SignResponse field 1 (signature) comes first: tag 0x0a, one length byte */
	if (res.resp_len < 2 || res.resp[0] != 0x0a || res.resp[1] > res.resp_len - 2) {
		fprintf(stderr, "unexpected SignResponse\n");
		bs_call_result_clear(&res);
		bs_client_free(c);
		return 1;
	}
	for (i = 0; i < res.resp[1]; i++)
		printf("%02x", res.resp[2 + i]);
	printf("\n");
	bs_call_result_clear(&res);
	bs_client_free(c);
	return 0;
}
