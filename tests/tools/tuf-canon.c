/*
 * tuf-canon.c - a test tool around src/formats/tuf_json.c, for comparing
 * with other implementations (tests/integration/test_tuf_json.py runs it
 * against securesystemslib): reads one JSON document from stdin, parses it
 * strictly and writes to stdout, per its one argument,
 *   olpc        the OLPC canonical form (what TUF signs)
 *   aktualizr   the aktualizr dialect's canonical form
 *   keyid       the TUF key id of the document (a key object)
 *   keyobj      stdin is a DER SubjectPublicKeyInfo: its TUF key object's
 *               canonical form, a newline, and its key id
 * Exit 0; 1 with the parser's message on stderr when the input is refused;
 * 2 on usage errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/tuf_json.h"
#include "formats/tuf_meta.h"

#define INPUT_MAX (4 * 1024 * 1024)

int
main(int argc, char **argv)
{
	static uint8_t in[INPUT_MAX + 1];
	char err[512], *out = NULL, keyid[TUF_KEYID_HEX_LEN + 1];
	size_t n, len;
	json_t *v = NULL;
	int rc;

	if (argc != 2 || (strcmp(argv[1], "olpc") != 0 && strcmp(argv[1], "aktualizr") != 0 &&
	    strcmp(argv[1], "keyid") != 0 && strcmp(argv[1], "keyobj") != 0)) {
		fprintf(stderr, "usage: tuf-canon olpc|aktualizr|keyid|keyobj < INPUT\n");
		return 2;
	}
	n = fread(in, 1, sizeof(in), stdin);
	if (strcmp(argv[1], "keyobj") == 0) {
		if ((rc = tuf_key_object(in, n, TUF_CANON_OLPC, &v, keyid, err, sizeof(err))) != 0 ||
		    (rc = tuf_json_canonical(v, TUF_CANON_OLPC, &out, &len)) != 0) {
			fprintf(stderr, "tuf-canon: %s\n", rc == BS_ERR_NOMEM ? "out of memory" : err);
			json_decref(v);
			return 1;
		}
		printf("%s\n%s\n", out, keyid);
		free(out);
		json_decref(v);
		return 0;
	}
	if ((rc = tuf_json_parse(in, n, INPUT_MAX, &v, err, sizeof(err))) != 0) {
		fprintf(stderr, "tuf-canon: %s\n", err);
		return 1;
	}
	if (strcmp(argv[1], "keyid") == 0) {
		rc = tuf_json_keyid(v, keyid);
		if (rc == 0)
			printf("%s\n", keyid);
	} else {
		rc = tuf_json_canonical(v, strcmp(argv[1], "olpc") == 0 ? TUF_CANON_OLPC :
		    TUF_CANON_AKTUALIZR, &out, &len);
		if (rc == 0)
			fwrite(out, 1, len, stdout);
	}
	free(out);
	json_decref(v);
	if (rc != 0) {
		fprintf(stderr, "tuf-canon: error %d\n", rc);
		return 1;
	}
	return 0;
}
