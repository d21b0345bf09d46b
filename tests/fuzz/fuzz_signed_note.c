/*
 * fuzz_signed_note.c - fuzz target of the C2SP signed-note decoders
 * (src/formats/signed_note.c): the input as a verifier key, as a checkpoint
 * body, and as a signed note opened with a fixed verifier. A checkpoint body
 * that parses, and whose origin the formatter takes, must format back to the
 * same first three lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/signed_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A verifier for "fuzz.example/log" with a fixed Ed25519 public key. */
static const char vkey[] =
    "fuzz.example/log+b6ecec97+AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct note_verifier v, fixed;
	char origin[256], body[CHECKPOINT_BODY_MAX];
	uint8_t root[32];
	uint64_t tree_size;
	size_t text_len, blen;
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (note_vkey_parse(s, &v) == 0 && !note_name_valid(v.name))
		abort();
	free(s);
	/*
	 * The parser takes origins the formatter refuses (C2SP only says SHOULD
	 * about their characters); where both accept, the lines must agree.
	 */
	if (checkpoint_body_parse(data, size, origin, sizeof(origin), &tree_size, root) == 0 &&
	    checkpoint_body_format(origin, tree_size, root, body, sizeof(body), &blen) == 0 &&
	    (blen > size || memcmp(body, data, blen) != 0))
		abort();
	if (note_vkey_parse(vkey, &fixed) != 0)
		abort();
	if (note_open(data, size, &fixed, 1, &text_len) == 0 && text_len > size)
		abort();
	return 0;
}
