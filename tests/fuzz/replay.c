/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over every file of
 * its seed corpus (tests/fuzz/corpus/<FUZZ_CORPUS>/, or the files and
 * directories given as arguments), so that make check exercises each target
 * without a fuzzing engine. Prints "N inputs" and exits 0, or 1 if the
 * corpus cannot be read (a crash is a crash).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1 << 20)

static int
run_file(const char *path)
{
	static uint8_t buf[INPUT_MAX];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	/* a copy of exactly n bytes, so that sanitizers see reads past the end */
	{
		uint8_t *p = malloc(n > 0 ? n : 1);

		if (p == NULL)
			return -1;
		memcpy(p, buf, n);
		LLVMFuzzerTestOneInput(p, n);
		free(p);
	}
	return 0;
}

static int
run_path(const char *path, unsigned *count)
{
	struct stat st;
	struct dirent *de;
	char sub[4096];
	DIR *d;

	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (run_path(sub, count) != 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned count = 0;

	if (argc < 2) {
		if (run_path(BS_SRCDIR "/tests/fuzz/corpus/" FUZZ_CORPUS, &count) != 0)
			return 1;
	}
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) != 0)
			return 1;
	printf("%u inputs\n", count);
	return count > 0 ? 0 : 1;
}
