/*
 * cmd_ota.c - `boltseal ota ...`: the CI side of a TUF repository whose
 * metadata boltsealed signs with HSM keys (boltseal.v1.OtaService,
 * docs/ota.md). `init` (CreateRepository), `status` (GetRepository),
 * `rotate-root` (RotateRoot) and `sign` (SignMetadata of one file) are one
 * call each; `publish` is the whole CI flow: it hashes the target files
 * here (images never travel to the server, only their lengths and
 * hashes), has targets, snapshot and timestamp metadata signed in that
 * order, each one version above the last the server signed, and writes a
 * consistent-snapshot metadata directory; `refresh-timestamp` signs a new
 * timestamp over the last snapshot, for cron. Every file is written
 * through a temporary file in its directory and rename(2), and
 * timestamp.json last, so that a client never finds a timestamp naming a
 * file that is not there yet. See docs/cli.md.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "boltseal/v1/ota.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "formats/tuf_json.h"

#define OS "/boltseal.v1.OtaService/"
#define META_MAX INPUT_MAX_FILE       /* a metadata file given to `ota sign` */
#define WALK_DEPTH_MAX 64             /* directory levels under --targets */
#define WALK_FILES_MAX 100000         /* files under --targets */
#define IO_CHUNK 65536
#define DAY 86400
#define DELEG_FILE_MAX 192            /* "V.NAME.json" (NAME: 128 bytes at most) */

enum { R_ROOT, R_TARGETS, R_SNAPSHOT, R_TIMESTAMP, NROLES };
static const char *const role_names[NROLES] = { "root", "targets", "snapshot", "timestamp" };

/* ---- small helpers ----------------------------------------------------------------- */

/* An unsigned option in [lo, hi], dflt when absent. Usage error otherwise. */
static int
uint_opt(struct cli_ctx *x, const struct args *a, const char *name, unsigned long lo,
    unsigned long hi, unsigned long dflt, unsigned long *out)
{
	const char *v = args_get(a, name);

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (args_uint(v, lo, hi, out) != 0)
		return out_usage(x->cmd, "--%s must be an integer from %lu to %lu", name, lo, hi);
	return 0;
}

/* A required option's value, or a usage error. */
static int
req_opt(struct cli_ctx *x, const struct args *a, const char *name, const char *what,
    const char **out)
{
	if ((*out = args_get(a, name)) == NULL || (*out)[0] == '\0')
		return out_usage(x->cmd, "--%s %s is required", name, what);
	return 0;
}

/* dir/name into buf. Usage error when too long. */
static int
join(struct cli_ctx *x, char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) {
		out_err(x->cmd, "%s/%s: path too long", dir, name);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SSZ", secs from now. */
static void
expires_in(int64_t secs, char out[32])
{
	time_t t = time(NULL) + (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* 1 if s (NUL-terminated) is valid UTF-8. */
static int
utf8_ok(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), k;

	while (n > 0) {
		if ((k = bs_utf8_decode(p, n, NULL)) == 0)
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

/* ---- files ----------------------------------------------------------------------- */

/* The mode of a new file: 0666 less the umask (mkstemp creates 0600). */
static mode_t
new_file_mode(void)
{
	mode_t m = umask(022);

	umask(m);
	return 0666 & ~m;
}

/* `mkdir -p path`. 0 or CLI_EXIT_USAGE with the error printed. */
static int
make_dirs(struct cli_ctx *x, const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i, n = strlen(path);
	char c;

	if (n == 0 || n >= sizeof(buf)) {
		out_err(x->cmd, "%s: bad directory name", path);
		return CLI_EXIT_USAGE;
	}
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
			out_err(x->cmd, "%s: cannot create directory: %s", buf, strerror(errno));
			return CLI_EXIT_USAGE;
		}
		buf[i] = c;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		out_err(x->cmd, "%s: not a directory", path);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Writes all len bytes to fd; -1 with errno on failure. */
static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Best effort: the rename in path's directory reaches the disk. */
static void
sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* A temporary file next to path ("DIR/.NAME.XXXXXX"), open in *fd, its name in tmp. */
static int
temp_next_to(struct cli_ctx *x, const char *path, char tmp[PATH_MAX], int *fd)
{
	const char *slash = strrchr(path, '/');
	int dlen = slash != NULL ? (int)(slash - path) + 1 : 0;

	if ((size_t)snprintf(tmp, PATH_MAX, "%.*s.%s.XXXXXX", dlen, path, path + dlen) >=
	    PATH_MAX) {
		out_err(x->cmd, "%s: path too long", path);
		return CLI_EXIT_USAGE;
	}
	if ((*fd = mkstemp(tmp)) < 0) {
		out_err(x->cmd, "%s: cannot create a temporary file next to it: %s", path,
		    strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (fchmod(*fd, new_file_mode()) != 0) {
		out_err(x->cmd, "%s: %s", tmp, strerror(errno));
		close(*fd);
		unlink(tmp);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Closes fd after fsync and renames tmp to path. On failure tmp is removed. */
static int
commit_temp(struct cli_ctx *x, int fd, const char *tmp, const char *path)
{
	int bad = fsync(fd) != 0;

	bad |= close(fd) != 0;
	if (bad || rename(tmp, path) != 0) {
		out_err(x->cmd, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return CLI_EXIT_USAGE;
	}
	sync_dir_of(path);
	return 0;
}

/*
 * Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename. 0 or CLI_EXIT_USAGE with the error printed.
 */
static int
write_atomic(struct cli_ctx *x, const char *path, const uint8_t *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if ((ret = temp_next_to(x, path, tmp, &fd)) != 0)
		return ret;
	if (write_all(fd, data, len) != 0) {
		out_err(x->cmd, "%s: write error: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		return CLI_EXIT_USAGE;
	}
	return commit_temp(x, fd, tmp, path);
}

/* write_atomic of dir/name. */
static int
write_in(struct cli_ctx *x, const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char path[PATH_MAX];
	int ret;

	if ((ret = join(x, path, sizeof(path), dir, name)) != 0)
		return ret;
	return write_atomic(x, path, data, len);
}

/* ---- target files ---------------------------------------------------------------- */

struct target {
	char *name;                  /* the TUF target path: relative, '/'-separated */
	char *path;                  /* where it is read */
	uint64_t length;
	uint8_t sha256[32];
	uint8_t sha512[64];
};

struct targets {
	struct target *v;
	size_t n, cap;
};

static void
targets_free(struct targets *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].path);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int
targets_add(struct cli_ctx *x, struct targets *t, const char *name, const char *path)
{
	struct target *nv;

	if (t->n >= WALK_FILES_MAX) {
		out_err(x->cmd, "more than %d files under --targets", WALK_FILES_MAX);
		return CLI_EXIT_USAGE;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		if ((nv = realloc(t->v, t->cap * sizeof(*nv))) == NULL)
			goto nomem;
		t->v = nv;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	if ((t->v[t->n].name = strdup(name)) == NULL || (t->v[t->n].path = strdup(path)) == NULL) {
		free(t->v[t->n].name);
		goto nomem;
	}
	t->n++;
	return 0;
nomem:
	out_err(x->cmd, "out of memory");
	return CLI_EXIT_CONN;
}

/*
 * Collects the regular files under dir (rel: their names' prefix, "" at
 * the top), recursing into directories; symbolic links are not followed
 * and other files are skipped, each with a warning.
 */
static int
walk(struct cli_ctx *x, const char *dir, const char *rel, int depth, struct targets *t)
{
	char path[PATH_MAX], name[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int ret = 0;

	if (depth > WALK_DEPTH_MAX) {
		out_err(x->cmd, "%s: more than %d directory levels", dir, WALK_DEPTH_MAX);
		return CLI_EXIT_USAGE;
	}
	if ((d = opendir(dir)) == NULL) {
		out_err(x->cmd, "%s: %s", dir, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	for (;;) {
		errno = 0;
		if ((e = readdir(d)) == NULL) {
			if (errno != 0) {
				out_err(x->cmd, "%s: %s", dir, strerror(errno));
				ret = CLI_EXIT_USAGE;
			}
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((ret = join(x, path, sizeof(path), dir, e->d_name)) != 0)
			break;
		if ((size_t)snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "",
		    e->d_name) >= sizeof(name)) {
			out_err(x->cmd, "%s: name too long", path);
			ret = CLI_EXIT_USAGE;
			break;
		}
		if (lstat(path, &st) != 0) {
			out_err(x->cmd, "%s: %s", path, strerror(errno));
			ret = CLI_EXIT_USAGE;
			break;
		}
		if (S_ISDIR(st.st_mode))
			ret = walk(x, path, name, depth + 1, t);
		else if (S_ISREG(st.st_mode) && !utf8_ok(name)) {
			out_err(x->cmd, "%s: the name is not valid UTF-8 (TUF target paths are "
			    "JSON strings)", path);
			ret = CLI_EXIT_USAGE;
		} else if (S_ISREG(st.st_mode))
			ret = targets_add(x, t, name, path);
		else
			out_err(x->cmd, "warning: skipping %s: %s", path, S_ISLNK(st.st_mode) ?
			    "a symbolic link (not followed)" : "not a regular file");
		if (ret != 0)
			break;
	}
	closedir(d);
	return ret;
}

/* Length, SHA-256 and SHA-512 of one file (opened without following a link). */
static int
hash_target(struct cli_ctx *x, struct target *t)
{
	EVP_MD_CTX *c256 = EVP_MD_CTX_new(), *c512 = EVP_MD_CTX_new();
	uint8_t *buf = malloc(IO_CHUNK);
	struct stat st;
	ssize_t n;
	int fd = -1, ret = CLI_EXIT_USAGE;

	if (c256 == NULL || c512 == NULL || buf == NULL ||
	    EVP_DigestInit_ex(c256, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(c512, EVP_sha512(), NULL) != 1) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_CONN;
		goto out;
	}
	if ((fd = open(t->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0) {
		out_err(x->cmd, "%s: %s", t->path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		out_err(x->cmd, "%s: not a regular file", t->path);
		goto out;
	}
	t->length = 0;
	for (;;) {
		if ((n = read(fd, buf, IO_CHUNK)) < 0) {
			if (errno == EINTR)
				continue;
			out_err(x->cmd, "%s: read error: %s", t->path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(c256, buf, (size_t)n) != 1 ||
		    EVP_DigestUpdate(c512, buf, (size_t)n) != 1)
			goto crypto;
		t->length += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(c256, t->sha256, NULL) != 1 ||
	    EVP_DigestFinal_ex(c512, t->sha512, NULL) != 1)
		goto crypto;
	ret = 0;
	goto out;
crypto:
	out_err(x->cmd, "%s: hashing failed", t->path);
	ret = CLI_EXIT_CONN;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	EVP_MD_CTX_free(c256);
	EVP_MD_CTX_free(c512);
	return ret;
}

static int
target_cmp(const void *a, const void *b)
{
	return strcmp(((const struct target *)a)->name, ((const struct target *)b)->name);
}

/* Every regular file under dir, sorted by name, hashed. */
static int
collect_targets(struct cli_ctx *x, const char *dir, struct targets *t)
{
	struct stat st;
	size_t i;
	int ret;

	if (stat(dir, &st) != 0) {
		out_err(x->cmd, "--targets %s: %s", dir, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		out_err(x->cmd, "--targets %s: not a directory", dir);
		return CLI_EXIT_USAGE;
	}
	if ((ret = walk(x, dir, "", 0, t)) != 0)
		return ret;
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), target_cmp);
	for (i = 0; i < t->n; i++)
		if ((ret = hash_target(x, &t->v[i])) != 0)
			return ret;
	return 0;
}

/*
 * An output directory must not be inside --targets (nor be it): what is
 * written there would be published as targets the next time.
 */
static int
refuse_inside(struct cli_ctx *x, const char *tdir, const char *opt, const char *dir)
{
	char *t = realpath(tdir, NULL), *d = realpath(dir, NULL);
	size_t n = t != NULL ? strlen(t) : 0;
	int ret = 0;

	if (t == NULL || d == NULL) {
		out_err(x->cmd, "%s: %s", t == NULL ? tdir : dir, strerror(errno));
		ret = CLI_EXIT_USAGE;
	} else if (strncmp(d, t, n) == 0 && (d[n] == '/' || d[n] == '\0' || n == 1)) {
		ret = out_usage(x->cmd, "%s %s is inside --targets %s: its files would become "
		    "targets", opt, dir, tdir);
	}
	free(t);
	free(d);
	return ret;
}

/*
 * Copies src to dst (atomically, in dst's directory), checking on the way
 * that the bytes still hash to sha256 (the file did not change since it was
 * hashed).
 */
static int
copy_checked(struct cli_ctx *x, const char *src, const char *dst, const uint8_t sha256[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t *buf = malloc(IO_CHUNK), got[32];
	char tmp[PATH_MAX];
	int in = -1, out = -1, ret = CLI_EXIT_USAGE;
	ssize_t n;

	if (c == NULL || buf == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_CONN;
		goto done;
	}
	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0) {
		out_err(x->cmd, "%s: %s", src, strerror(errno));
		goto done;
	}
	if ((ret = temp_next_to(x, dst, tmp, &out)) != 0)
		goto done;
	ret = CLI_EXIT_USAGE;
	for (;;) {
		if ((n = read(in, buf, IO_CHUNK)) < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			out_err(x->cmd, "%s: read error: %s", src, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(c, buf, (size_t)n) != 1 ||
		    write_all(out, buf, (size_t)n) != 0) {
			out_err(x->cmd, "%s: write error: %s", dst, strerror(errno));
			goto fail;
		}
	}
	if (EVP_DigestFinal_ex(c, got, NULL) != 1 || memcmp(got, sha256, sizeof(got)) != 0) {
		out_err(x->cmd, "%s: changed while it was being published", src);
		goto fail;
	}
	ret = commit_temp(x, out, tmp, dst);
	out = -1;
	goto done;
fail:
	close(out);
	out = -1;
	unlink(tmp);
done:
	if (in >= 0)
		close(in);
	free(buf);
	EVP_MD_CTX_free(c);
	return ret;
}

/*
 * 1 if path holds t's content (a regular file of its length and SHA-256):
 * a copy already in place, or a link just made (the source may have
 * changed since it was hashed). A file under the name with other content
 * is 0, and is replaced.
 */
static int
holds(struct cli_ctx *x, const char *path, const struct target *t)
{
	struct target got;
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != t->length)
		return 0;
	memset(&got, 0, sizeof(got));
	got.path = (char *)path;
	return hash_target(x, &got) == 0 && got.length == t->length &&
	    memcmp(got.sha256, t->sha256, sizeof(got.sha256)) == 0;
}

/* dst as a hard link of src holding t's content, else a checked copy of src. */
static int
link_or_copy(struct cli_ctx *x, const char *src, const char *dst, const struct target *t)
{
	if (holds(x, dst, t))
		return 0;
	if (link(src, dst) == 0) {
		if (holds(x, dst, t))
			return 0;
		(void)unlink(dst);
		out_err(x->cmd, "%s: changed while it was being published", t->path);
		return CLI_EXIT_USAGE;
	}
	/* the link failed (EXDEV, EPERM, or a wrong file under the name): a copy, renamed over */
	return copy_checked(x, src, dst, t->sha256);
}

/*
 * The consistent-snapshot copies of one target (TUF 5.7.3): under outdir,
 * DIRPART/SHA256HEX.BASENAME and DIRPART/SHA512HEX.BASENAME, hard links of
 * the file where the file system allows, else copies; each checked against
 * the hash published. A copy already there with that content is kept.
 */
static int
place_target(struct cli_ctx *x, const char *outdir, const struct target *t)
{
	char dir[PATH_MAX], dst256[PATH_MAX], dst512[PATH_MAX], h256[BS_HEX_LEN(32)],
	    h512[BS_HEX_LEN(64)];
	const char *slash = strrchr(t->name, '/'), *base = slash != NULL ? slash + 1 : t->name;
	int ret;

	bs_hex_encode(t->sha256, 32, h256);
	bs_hex_encode(t->sha512, 64, h512);
	if ((size_t)snprintf(dir, sizeof(dir), "%s%s%.*s", outdir, slash != NULL ? "/" : "",
	    slash != NULL ? (int)(slash - t->name) : 0, t->name) >= sizeof(dir) ||
	    (size_t)snprintf(dst256, sizeof(dst256), "%s/%s.%s", dir, h256, base) >=
	    sizeof(dst256) ||
	    (size_t)snprintf(dst512, sizeof(dst512), "%s/%s.%s", dir, h512, base) >=
	    sizeof(dst512)) {
		out_err(x->cmd, "%s: path too long under --targets-out", t->name);
		return CLI_EXIT_USAGE;
	}
	if ((ret = make_dirs(x, dir)) != 0)
		return ret;
	if ((ret = link_or_copy(x, t->path, dst256, t)) != 0)
		return ret;
	return link_or_copy(x, dst256, dst512, t);
}

/* ---- JSON -------------------------------------------------------------------------- */

/* obj[name] = v (stolen); 0 or -1 (v released). */
static int
jset(json_t *obj, const char *name, json_t *v)
{
	return v == NULL || json_object_set_new(obj, name, v) != 0 ? -1 : 0;
}

/*
 * The "_type" of a role's metadata in the repository's dialect: aktualizr
 * capitalises it ("Targets").
 */
static const char *
role_type(const Boltseal__V1__GetRepositoryResponse *r, const char *role)
{
	static const char *const plain[] = { "targets", "snapshot", "timestamp" };
	static const char *const akt[] = { "Targets", "Snapshot", "Timestamp" };
	size_t i;

	for (i = 0; i < 3; i++)
		if (strcmp(role, plain[i]) == 0)
			return r->dialect == BOLTSEAL__V1__METADATA_DIALECT__AKTUALIZR ? akt[i] : plain[i];
	return role;
}

/* A top-level role's signed part without its role-specific member. NULL if out of memory. */
static json_t *
signed_base(const char *type, const char *spec, uint64_t version, const char *expires)
{
	json_t *sp = json_object();

	if (sp == NULL || jset(sp, "_type", json_string(type)) != 0 ||
	    jset(sp, "spec_version", json_string(spec)) != 0 ||
	    jset(sp, "version", json_integer((json_int_t)version)) != 0 ||
	    jset(sp, "expires", json_string(expires)) != 0) {
		json_decref(sp);
		return NULL;
	}
	return sp;
}

/* {"length":L,"hashes":{"sha256":HEX[,"sha512":HEX]}}; NULL if out of memory. */
static json_t *
file_info(uint64_t length, const uint8_t sha256[32], const uint8_t *sha512)
{
	char h256[BS_HEX_LEN(32)], h512[BS_HEX_LEN(64)];
	json_t *o = json_object(), *h = json_object();

	bs_hex_encode(sha256, 32, h256);
	if (o == NULL || h == NULL || jset(h, "sha256", json_string(h256)) != 0)
		goto fail;
	if (sha512 != NULL) {
		bs_hex_encode(sha512, 64, h512);
		if (jset(h, "sha512", json_string(h512)) != 0)
			goto fail;
	}
	if (jset(o, "length", json_integer((json_int_t)length)) != 0)
		goto fail;
	if (jset(o, "hashes", h) != 0) {
		h = NULL;
		goto fail;
	}
	return o;
fail:
	json_decref(h);
	json_decref(o);
	return NULL;
}

/*
 * Parses a metadata file the server returned and checks signed._type and
 * (when version != 0) signed.version. 0 and *doc (json_decref it), or
 * CLI_EXIT_CONN with the error printed: the server answered something
 * else than asked.
 */
static int
meta_parse(struct cli_ctx *x, const char *what, const uint8_t *data, size_t len,
    const char *type, uint64_t version, json_t **doc)
{
	json_t *d = NULL, *sp;
	const char *t;
	char err[256];

	if (tuf_json_parse(data, len, len + 1, &d, err, sizeof(err)) != 0) {
		out_err(x->cmd, "the server returned %s that is not valid JSON: %s", what, err);
		return CLI_EXIT_CONN;
	}
	sp = json_object_get(d, "signed");
	t = json_string_value(json_object_get(sp, "_type"));
	/* "root" or "Root": the server holds each repository to its dialect */
	if (!json_is_array(json_object_get(d, "signatures")) || t == NULL || strcasecmp(t, type) != 0 ||
	    !json_is_integer(json_object_get(sp, "version")) || (version != 0 &&
	    (uint64_t)json_integer_value(json_object_get(sp, "version")) != version)) {
		json_decref(d);
		if (version != 0)
			out_err(x->cmd, "the server returned %s that is not %s metadata "
			    "version %llu", what, type, (unsigned long long)version);
		else
			out_err(x->cmd, "the server returned %s that is not %s metadata", what,
			    type);
		return CLI_EXIT_CONN;
	}
	*doc = d;
	return 0;
}

/* 1 if a and b have the same canonical form. */
static int
same_canonical(const json_t *a, const json_t *b)
{
	char *ca = NULL, *cb = NULL;
	size_t la = 0, lb = 0;
	int same;

	same = tuf_json_canonical(a, TUF_CANON_OLPC, &ca, &la) == 0 &&
	    tuf_json_canonical(b, TUF_CANON_OLPC, &cb, &lb) == 0 && la == lb &&
	    memcmp(ca, cb, la) == 0;
	free(ca);
	free(cb);
	return same;
}

/* ---- calls ------------------------------------------------------------------------- */

/* GetRepository of name: 0 and *out (protobuf_c_message_free_unpacked), or as call_unary. */
static int
get_repo(struct cli_ctx *x, const char *name, Boltseal__V1__GetRepositoryResponse **out)
{
	Boltseal__V1__GetRepositoryRequest req = BOLTSEAL__V1__GET_REPOSITORY_REQUEST__INIT;

	req.name = (char *)name;
	return call_unary(x, OS "GetRepository", &req.base,
	    &boltseal__v1__get_repository_response__descriptor, (ProtobufCMessage **)out);
}

/* The state of one role in a GetRepository answer; CLI_EXIT_CONN if it is missing. */
static int
role_state(struct cli_ctx *x, const Boltseal__V1__GetRepositoryResponse *r, int role,
    const Boltseal__V1__RoleState **out)
{
	size_t i;

	for (i = 0; i < r->n_roles; i++)
		if (strcmp(r->roles[i]->role, role_names[role]) == 0) {
			*out = r->roles[i];
			return 0;
		}
	out_err(x->cmd, "the server's answer lacks the %s role", role_names[role]);
	return CLI_EXIT_CONN;
}

/* The next version of a role: its last + 1. */
static int
next_version(struct cli_ctx *x, const Boltseal__V1__RoleState *s, uint64_t *out)
{
	if (s->version >= (uint64_t)INT64_MAX) {
		out_err(x->cmd, "%s version %llu cannot grow", s->role,
		    (unsigned long long)s->version);
		return CLI_EXIT_CONN;
	}
	*out = s->version + 1;
	return 0;
}

/*
 * Every root version of a GetRepository answer, parsed and checked to be
 * versions 1..n in order; *spec gets the spec_version of the latest (the
 * server's, which the other roles' metadata repeat). docs[] json_decref'd
 * by the caller (roots_free).
 */
static int
roots_parse(struct cli_ctx *x, const Boltseal__V1__GetRepositoryResponse *r, json_t ***docs,
    const char **spec)
{
	json_t **d;
	const char *s;
	char what[48];
	size_t i;
	int ret;

	if (r->n_roots == 0) {
		out_err(x->cmd, "the server returned no root metadata");
		return CLI_EXIT_CONN;
	}
	if ((d = calloc(r->n_roots, sizeof(*d))) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	*docs = d;
	for (i = 0; i < r->n_roots; i++) {
		snprintf(what, sizeof(what), "root %zu", i + 1);
		if ((ret = meta_parse(x, what, r->roots[i].data, r->roots[i].len, "root", i + 1,
		    &d[i])) != 0)
			return ret;
	}
	s = json_string_value(json_object_get(json_object_get(d[r->n_roots - 1], "signed"),
	    "spec_version"));
	if (s == NULL) {
		out_err(x->cmd, "the server's root metadata has no spec_version");
		return CLI_EXIT_CONN;
	}
	*spec = s;
	return 0;
}

static void
roots_free(json_t **docs, size_t n)
{
	size_t i;

	for (i = 0; docs != NULL && i < n; i++)
		json_decref(docs[i]);
	free(docs);
}

/*
 * SignMetadata of sp as role of repo; body is what is sent (sp's JSON when
 * NULL). Checks the file returned carries sp (same canonical bytes) at
 * the version asked. 0 and *out, or an exit status with the error printed.
 */
static int
sign_part(struct cli_ctx *x, const char *repo, const char *role, const char *vehicle,
    const json_t *sp, const uint8_t *body, size_t body_len,
    Boltseal__V1__SignMetadataResponse **out)
{
	Boltseal__V1__SignMetadataRequest req = BOLTSEAL__V1__SIGN_METADATA_REQUEST__INIT;
	Boltseal__V1__SignMetadataResponse *resp = NULL;
	json_t *doc = NULL;
	char *dump = NULL;
	int ret;

	if (body == NULL) {
		if ((dump = json_dumps(sp, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		body = (const uint8_t *)dump;
		body_len = strlen(dump);
	}
	req.repository = (char *)repo;
	req.role = (char *)role;
	if (vehicle != NULL)
		req.vehicle_id = (char *)vehicle;
	req.signed_.data = (uint8_t *)body;
	req.signed_.len = body_len;
	ret = call_unary(x, OS "SignMetadata", &req.base,
	    &boltseal__v1__sign_metadata_response__descriptor, (ProtobufCMessage **)&resp);
	free(dump);
	if (ret != 0)
		return ret;
	if ((ret = meta_parse(x, role, resp->metadata.data, resp->metadata.len,
	    json_string_value(json_object_get(sp, "_type")), resp->version, &doc)) != 0)
		goto out;
	if (!same_canonical(json_object_get(doc, "signed"), sp)) {
		out_err(x->cmd, "the server returned %s metadata for other content than sent",
		    role);
		ret = CLI_EXIT_CONN;
		goto out;
	}
	*out = resp;
	resp = NULL;
out:
	json_decref(doc);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* ---- role options (init, rotate-root) -------------------------------------------- */

struct role_opts {
	Boltseal__V1__RoleKeys rk[NROLES];
	Boltseal__V1__RoleKeys *rkp[NROLES];  /* the roles given, in order, for the request */
	size_t n;
	char *copy[NROLES];       /* the key list the names point into */
	int keys[NROLES];         /* --ROLE given */
	int threshold[NROLES];    /* --ROLE-threshold given */
};

static void
role_opts_free(struct role_opts *r)
{
	size_t i;

	for (i = 0; i < NROLES; i++) {
		free(r->rk[i].key_names);
		free(r->copy[i]);
	}
	memset(r, 0, sizeof(*r));
}

/*
 * Splits "A,B,..." (spaces around items ignored) given to --opt: *copy
 * (the buffer the items point into) and *items (n of them); both malloc'd,
 * freed by the caller even on error. An empty item is a usage error.
 */
static int
split_list(struct cli_ctx *x, const char *opt, const char *val, char **copy, char ***items,
    size_t *n)
{
	char *p, *q, *e;
	size_t cap = 1;

	*n = 0;
	for (p = (char *)val; *p != '\0'; p++)
		cap += *p == ',';
	if ((*copy = strdup(val)) == NULL || (*items = calloc(cap, sizeof(**items))) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	for (p = *copy; p != NULL; p = q) {
		if ((q = strchr(p, ',')) != NULL)
			*q++ = '\0';
		while (*p == ' ')
			p++;
		for (e = p + strlen(p); e > p && e[-1] == ' '; )
			*--e = '\0';
		if (*p == '\0')
			return out_usage(x->cmd, "--%s: an empty item in '%s'", opt, val);
		(*items)[(*n)++] = p;
	}
	return 0;
}

/* Role i's key names from --ROLE "K1,K2,...". */
static int
key_list(struct cli_ctx *x, struct role_opts *r, int i, const char *val)
{
	free(r->rk[i].key_names);
	free(r->copy[i]);
	r->rk[i].key_names = NULL;
	r->copy[i] = NULL;
	return split_list(x, role_names[i], val, &r->copy[i], &r->rk[i].key_names,
	    &r->rk[i].n_key_names);
}

/* Reads --ROLE and --ROLE-threshold of each role. */
static int
role_opts_parse(struct cli_ctx *x, const struct args *a, struct role_opts *r)
{
	char opt[32];
	unsigned long th;
	const char *v;
	int i, ret;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < NROLES; i++) {
		boltseal__v1__role_keys__init(&r->rk[i]);
		r->rk[i].role = (char *)role_names[i];
		if ((v = args_get(a, role_names[i])) != NULL) {
			if ((ret = key_list(x, r, i, v)) != 0)
				return ret;
			r->keys[i] = 1;
		}
		snprintf(opt, sizeof(opt), "%s-threshold", role_names[i]);
		if (args_get(a, opt) != NULL) {
			if ((ret = uint_opt(x, a, opt, 1, 255, 1, &th)) != 0)
				return ret;
			r->rk[i].threshold = (uint32_t)th;
			r->threshold[i] = 1;
		}
	}
	return 0;
}

/* Adds role i to the request, its threshold checked against its keys. */
static int
role_opts_use(struct cli_ctx *x, struct role_opts *r, int i)
{
	if (r->rk[i].threshold > r->rk[i].n_key_names)
		return out_usage(x->cmd, "--%s-threshold %u is more than the %zu %s key(s)",
		    role_names[i], r->rk[i].threshold, r->rk[i].n_key_names, role_names[i]);
	r->rkp[r->n++] = &r->rk[i];
	return 0;
}

/* The root file of version v written as DIR/v.root.json and DIR/root.json. */
static int
write_root(struct cli_ctx *x, const char *dir, uint64_t v, const uint8_t *data, size_t len)
{
	char name[48];
	int ret;

	snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)v);
	if ((ret = write_in(x, dir, name, data, len)) != 0)
		return ret;
	return write_in(x, dir, "root.json", data, len);
}

/* Prints {"repository":..,"root_version":N} or a line. */
static void
print_root_written(struct cli_ctx *x, const char *what, const char *repo, uint64_t v,
    const char *dir)
{
	struct out_json j;

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "repository", repo);
		out_json_uint(&j, "root_version", v);
		out_json_close(&j);
		return;
	}
	printf("%s repository %s: root version %llu written to %s/%llu.root.json and "
	    "%s/root.json\n", what, repo, (unsigned long long)v, dir, (unsigned long long)v, dir);
}

/* ---- the commands ------------------------------------------------------------------ */

/* init's --kind and --dialect into req (defaults: plain TUF, the TUF dialect). */
static int
init_kind(struct cli_ctx *x, const struct args *a, Boltseal__V1__CreateRepositoryRequest *req)
{
	const char *kind = args_get(a, "kind"), *dialect = args_get(a, "dialect");

	if (kind == NULL || strcmp(kind, "tuf") == 0)
		req->kind = BOLTSEAL__V1__REPOSITORY_KIND__TUF;
	else if (strcmp(kind, "uptane-image") == 0)
		req->kind = BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_IMAGE;
	else if (strcmp(kind, "uptane-director") == 0)
		req->kind = BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_DIRECTOR;
	else
		return out_usage(x->cmd, "--kind: tuf, uptane-image or uptane-director, not '%s'",
		    kind);
	if (dialect == NULL || strcmp(dialect, "tuf") == 0)
		req->dialect = BOLTSEAL__V1__METADATA_DIALECT__TUF_STANDARD;
	else if (strcmp(dialect, "aktualizr") == 0)
		req->dialect = BOLTSEAL__V1__METADATA_DIALECT__AKTUALIZR;
	else
		return out_usage(x->cmd, "--dialect: tuf or aktualizr, not '%s'", dialect);
	return 0;
}

static int
cmd_init(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateRepositoryRequest req = BOLTSEAL__V1__CREATE_REPOSITORY_REQUEST__INIT;
	Boltseal__V1__CreateRepositoryResponse *resp = NULL;
	struct role_opts r;
	const char *dir;
	unsigned long days;
	json_t *doc = NULL;
	int i, ret;

	if ((ret = role_opts_parse(x, a, &r)) != 0)
		goto out;
	for (i = 0; i < NROLES; i++) {
		if (!r.keys[i]) {
			ret = out_usage(x->cmd, "--%s K[,K...] is required (the %s keys)",
			    role_names[i], role_names[i]);
			goto out;
		}
		if (!r.threshold[i])
			r.rk[i].threshold = 1;
		if ((ret = role_opts_use(x, &r, i)) != 0)
			goto out;
	}
	if ((ret = uint_opt(x, a, "root-expires-days", 1, 3650, 0, &days)) != 0 ||
	    (ret = init_kind(x, a, &req)) != 0 ||
	    (ret = req_opt(x, a, "out", "DIR", &dir)) != 0 || (ret = make_dirs(x, dir)) != 0)
		goto out;
	req.name = (char *)a->pos[0];
	req.roles = r.rkp;
	req.n_roles = r.n;
	req.root_expires_days = (uint32_t)days;
	if ((ret = call_unary(x, OS "CreateRepository", &req.base,
	    &boltseal__v1__create_repository_response__descriptor,
	    (ProtobufCMessage **)&resp)) != 0)
		goto out;
	if ((ret = meta_parse(x, "root", resp->root.data, resp->root.len, "root", 1, &doc)) != 0 ||
	    (ret = write_root(x, dir, 1, resp->root.data, resp->root.len)) != 0)
		goto out;
	print_root_written(x, "created", req.name, 1, dir);
out:
	json_decref(doc);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	role_opts_free(&r);
	return ret;
}

static int
cmd_status(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetRepositoryResponse *resp = NULL;
	const Boltseal__V1__RoleState *s;
	struct out_json j;
	size_t k;
	int i, ret;

	if ((ret = get_repo(x, a->pos[0], &resp)) != 0)
		return ret;
	for (i = 0; i < NROLES; i++)
		if ((ret = role_state(x, resp, i, &s)) != 0)
			goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "repository", resp->name);
		out_json_array(&j, "roles");
		for (i = 0; i < NROLES; i++) {
			(void)!role_state(x, resp, i, &s);
			out_json_object(&j, NULL);
			out_json_str(&j, "role", s->role);
			out_json_uint(&j, "version", s->version);
			out_json_uint(&j, "threshold", s->threshold);
			out_json_array(&j, "keys");
			for (k = 0; k < s->n_key_names; k++)
				out_json_str(&j, NULL, s->key_names[k]);
			out_json_close(&j);
			out_json_close(&j);
		}
		out_json_close(&j);
		out_json_uint(&j, "root_versions", resp->n_roots);
		out_json_close(&j);
		goto out;
	}
	fputs("repository: ", stdout);
	out_safe(stdout, resp->name);
	printf("\n%-10s %-8s %-9s %s\n", "ROLE", "VERSION", "THRESHOLD", "KEYS");
	for (i = 0; i < NROLES; i++) {
		(void)!role_state(x, resp, i, &s);
		if (s->version == 0)
			printf("%-10s %-8s ", s->role, "-");
		else
			printf("%-10s %-8llu ", s->role, (unsigned long long)s->version);
		printf("%u of %-4zu ", s->threshold, s->n_key_names);
		for (k = 0; k < s->n_key_names; k++) {
			fputs(k > 0 ? "," : "", stdout);
			out_safe(stdout, s->key_names[k]);
		}
		putchar('\n');
	}
	printf("root versions: %zu\n", resp->n_roots);
out:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_rotate_root(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RotateRootRequest req = BOLTSEAL__V1__ROTATE_ROOT_REQUEST__INIT;
	Boltseal__V1__RotateRootResponse *resp = NULL;
	Boltseal__V1__GetRepositoryResponse *cur = NULL;
	const Boltseal__V1__RoleState *s;
	struct role_opts r;
	const char *dir;
	unsigned long days, version;
	json_t *doc = NULL;
	int i, ret;

	if ((ret = role_opts_parse(x, a, &r)) != 0 ||
	    (ret = uint_opt(x, a, "expires-days", 1, 3650, 0, &days)) != 0 ||
	    (ret = uint_opt(x, a, "version", 2, ULONG_MAX, 0, &version)) != 0 ||
	    (ret = req_opt(x, a, "out", "DIR", &dir)) != 0 || (ret = make_dirs(x, dir)) != 0)
		goto out;
	for (i = 0; i < NROLES; i++) {
		if (!r.keys[i] && !r.threshold[i])
			continue;
		if (!r.keys[i] && r.threshold[i]) {
			/* no key names: the server keeps the role's keys (at their versions) */
			r.rkp[r.n++] = &r.rk[i];
			continue;
		}
		if (!r.threshold[i]) {
			/* the threshold stays as it is */
			if ((cur == NULL && (ret = get_repo(x, a->pos[0], &cur)) != 0) ||
			    (ret = role_state(x, cur, i, &s)) != 0)
				goto out;
			r.rk[i].threshold = s->threshold;
		}
		if ((ret = role_opts_use(x, &r, i)) != 0)
			goto out;
	}
	req.repository = (char *)a->pos[0];
	req.roles = r.rkp;
	req.n_roles = r.n;
	req.expires_days = (uint32_t)days;
	req.version = version;
	if ((ret = call_unary(x, OS "RotateRoot", &req.base,
	    &boltseal__v1__rotate_root_response__descriptor, (ProtobufCMessage **)&resp)) != 0)
		goto out;
	if ((ret = meta_parse(x, "root", resp->root.data, resp->root.len, "root", resp->version,
	    &doc)) != 0 ||
	    (ret = write_root(x, dir, resp->version, resp->root.data, resp->root.len)) != 0)
		goto out;
	print_root_written(x, "rotated", req.repository, resp->version, dir);
out:
	json_decref(doc);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (cur != NULL)
		protobuf_c_message_free_unpacked(&cur->base, NULL);
	role_opts_free(&r);
	return ret;
}

static int
cmd_sign(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SignMetadataResponse *resp = NULL;
	const char *file = a->npos == 3 ? a->pos[2] : "-";
	const char *out = args_get(a, "out");
	const uint8_t *body = NULL;
	json_t *doc = NULL, *sp;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct out_json j;
	char err[256];
	int ret;

	if (x->json && out != NULL && strcmp(out, "-") == 0)
		return out_usage(x->cmd, "--out - and --json would both write to standard output");
	if ((ret = input_read_file(x->cmd, file, META_MAX, &buf, &len)) != 0)
		return ret;
	if (tuf_json_parse(buf, len, META_MAX, &doc, err, sizeof(err)) != 0) {
		out_err(x->cmd, "%s: %s", file, err);
		ret = CLI_EXIT_USAGE;
		goto done;
	}
	if ((sp = json_object_get(doc, "signed")) == NULL) {
		sp = doc;
		body = buf;       /* the signed part itself: sent as written */
	}
	if (!json_is_object(sp)) {
		out_err(x->cmd, "%s: not a JSON object (the \"signed\" part, or a metadata file "
		    "with a \"signed\" member)", file);
		ret = CLI_EXIT_USAGE;
		goto done;
	}
	if (!json_is_string(json_object_get(sp, "_type"))) {
		out_err(x->cmd, "%s: the signed part has no \"_type\"", file);
		ret = CLI_EXIT_USAGE;
		goto done;
	}
	if ((ret = sign_part(x, a->pos[0], a->pos[1], args_get(a, "vehicle"), sp, body, len,
	    &resp)) != 0)
		goto done;
	if (out != NULL &&
	    (ret = strcmp(out, "-") == 0 ? out_write_file(x->cmd, out, resp->metadata.data,
	    resp->metadata.len) : write_atomic(x, out, resp->metadata.data,
	    resp->metadata.len)) != 0)
		goto done;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "role", a->pos[1]);
		out_json_uint(&j, "version", resp->version);
		out_json_bool(&j, "repeated", resp->repeated);
		out_json_b64(&j, "metadata", resp->metadata.data, resp->metadata.len);
		out_json_close(&j);
	} else if (out == NULL) {
		ret = out_write_file(x->cmd, "-", resp->metadata.data, resp->metadata.len);
	} else if (strcmp(out, "-") != 0) {
		printf("%s version %llu%s written to %s\n", a->pos[1],
		    (unsigned long long)resp->version, resp->repeated ?
		    " (signed before with this content: the same file)" : "", out);
	}
done:
	json_decref(doc);
	free(buf);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* What publish and refresh-timestamp produced. */
struct published {
	uint64_t root, targets, snapshot, timestamp;
	size_t ntargets;
};

/* targets signed part of version v: every file's length, SHA-256 and SHA-512. */
static json_t *
targets_part(const char *type, const struct targets *t, const char *spec, uint64_t v,
    const char *expires)
{
	json_t *sp = signed_base(type, spec, v, expires), *m = json_object();
	size_t i;

	if (sp == NULL || m == NULL)
		goto fail;
	for (i = 0; i < t->n; i++)
		if (jset(m, t->v[i].name, file_info(t->v[i].length, t->v[i].sha256,
		    t->v[i].sha512)) != 0)
			goto fail;
	if (jset(sp, "targets", m) == 0)
		return sp;
	m = NULL;
fail:
	json_decref(m);
	json_decref(sp);
	return NULL;
}

/* snapshot (listing targets.json version tv) or timestamp (listing the snapshot file). */
static json_t *
listing_part(const char *type, const char *spec, uint64_t v, const char *expires,
    const char *file, uint64_t fv, const uint8_t *data, size_t len)
{
	json_t *sp = signed_base(type, spec, v, expires), *m = json_object(), *info = NULL;
	uint8_t sha[32];
	int ret;

	if (sp == NULL || m == NULL)
		goto fail;
	if (data != NULL) {
		if (EVP_Digest(data, len, sha, NULL, EVP_sha256(), NULL) != 1 ||
		    (info = file_info(len, sha, NULL)) == NULL)
			goto fail;
	} else if ((info = json_object()) == NULL) {
		goto fail;
	}
	if (jset(info, "version", json_integer((json_int_t)fv)) != 0)
		goto fail;
	ret = jset(m, file, info);
	info = NULL;          /* m's, or released */
	if (ret != 0)
		goto fail;
	ret = jset(sp, "meta", m);
	m = NULL;             /* sp's, or released */
	if (ret == 0)
		return sp;
fail:
	json_decref(info);
	json_decref(m);
	json_decref(sp);
	return NULL;
}

/*
 * The repository's delegated roles in what publish builds: the delegations
 * object in the targets (tp), each delegated role signed so far in the
 * snapshot's meta (sp). Either may be NULL. Out of memory or a bad answer:
 * CLI_EXIT_CONN.
 */
static int
add_delegations(struct cli_ctx *x, const Boltseal__V1__GetRepositoryResponse *r, json_t *tp,
    json_t *sp)
{
	json_t *d = NULL, *meta = sp != NULL ? json_object_get(sp, "meta") : NULL;
	char err[256] = "", file[DELEG_FILE_MAX];
	size_t i;

	if (tp != NULL && r->delegations.len > 0) {
		if (tuf_json_parse(r->delegations.data, r->delegations.len, r->delegations.len + 1,
		    &d, err, sizeof(err)) != 0 || jset(tp, "delegations", d) != 0) {
			out_err(x->cmd, "the server's delegations cannot be read: %s", err);
			return CLI_EXIT_CONN;
		}
	}
	for (i = 0; meta != NULL && i < r->n_delegated; i++) {
		if (r->delegated[i]->version == 0)
			continue;
		snprintf(file, sizeof(file), "%s.json", r->delegated[i]->role);
		if (jset(meta, file, json_pack("{s:I}", "version",
		    (json_int_t)r->delegated[i]->version)) != 0) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
	}
	return 0;
}

/*
 * Writes each delegated role's last file as DIR/V.NAME.json (the server
 * allows no '/' in the names). A file the server did not keep (over
 * 64 KiB) is left to the caller, with a warning.
 */
static int
write_delegated(struct cli_ctx *x, const Boltseal__V1__GetRepositoryResponse *r, const char *dir)
{
	char file[DELEG_FILE_MAX];
	size_t i;
	int ret;

	for (i = 0; i < r->n_delegated; i++) {
		const Boltseal__V1__RoleState *d = r->delegated[i];

		if (d->version == 0)
			continue;
		if (d->metadata.len == 0) {
			fprintf(stderr, "boltseal: %s: warning: version %llu of %s was not kept by the "
			    "server; write it yourself\n", x->cmd, (unsigned long long)d->version,
			    d->role);
			continue;
		}
		if (strchr(d->role, '/') != NULL) {
			out_err(x->cmd, "the server returned a delegated role name with '/': %s",
			    d->role);
			return CLI_EXIT_CONN;
		}
		snprintf(file, sizeof(file), "%llu.%s.json", (unsigned long long)d->version, d->role);
		if ((ret = write_in(x, dir, file, d->metadata.data, d->metadata.len)) != 0)
			return ret;
	}
	return 0;
}

/* Signs sp (NULL: out of memory) as role; the file and its version in *resp. */
static int
sign_new(struct cli_ctx *x, const char *repo, const char *role, json_t *sp,
    Boltseal__V1__SignMetadataResponse **resp)
{
	int ret;

	if (sp == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	ret = sign_part(x, repo, role, NULL, sp, NULL, 0, resp);
	json_decref(sp);
	return ret;
}

static void
print_published(struct cli_ctx *x, const struct published *p, const char *dir, int publish)
{
	struct out_json j;

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		if (publish) {
			out_json_uint(&j, "root_version", p->root);
			out_json_uint(&j, "targets_version", p->targets);
		}
		out_json_uint(&j, "snapshot_version", p->snapshot);
		out_json_uint(&j, "timestamp_version", p->timestamp);
		if (publish)
			out_json_uint(&j, "targets", p->ntargets);
		out_json_close(&j);
		return;
	}
	if (publish)
		printf("root version:      %llu\ntargets version:   %llu (%zu targets)\n",
		    (unsigned long long)p->root, (unsigned long long)p->targets, p->ntargets);
	printf("snapshot version:  %llu\ntimestamp version: %llu\nwritten to:        %s\n",
	    (unsigned long long)p->snapshot, (unsigned long long)p->timestamp, dir);
}

/* --timestamp-hours N (default 24) as seconds. */
static int
timestamp_life(struct cli_ctx *x, const struct args *a, int64_t *secs)
{
	unsigned long h;
	int ret;

	if ((ret = uint_opt(x, a, "timestamp-hours", 1, 8760, 24, &h)) != 0)
		return ret;
	*secs = (int64_t)h * 3600;
	return 0;
}

static int
cmd_publish(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetRepositoryResponse *repo = NULL;
	Boltseal__V1__SignMetadataResponse *tr = NULL, *sr = NULL, *tsr = NULL;
	const Boltseal__V1__RoleState *ts, *ss, *tss;
	const char *tdir, *mdir, *tout = args_get(a, "targets-out"), *spec = NULL;
	const char *name = a->pos[0];
	struct targets t;
	struct published p;
	unsigned long tdays, sdays;
	int64_t tslife;
	json_t **roots = NULL, *part;
	char expiry[32], fname[48];
	size_t i;
	int ret;

	memset(&t, 0, sizeof(t));
	memset(&p, 0, sizeof(p));
	if ((ret = req_opt(x, a, "targets", "DIR", &tdir)) != 0 ||
	    (ret = req_opt(x, a, "out", "METADATA_DIR", &mdir)) != 0 ||
	    (ret = uint_opt(x, a, "targets-days", 1, 3650, 30, &tdays)) != 0 ||
	    (ret = uint_opt(x, a, "snapshot-days", 1, 3650, 7, &sdays)) != 0 ||
	    (ret = timestamp_life(x, a, &tslife)) != 0)
		return ret;
	/* everything local first: the files, their hashes, the output directories */
	if ((ret = collect_targets(x, tdir, &t)) != 0 || (ret = make_dirs(x, mdir)) != 0 ||
	    (ret = refuse_inside(x, tdir, "--out", mdir)) != 0 ||
	    (tout != NULL && ((ret = make_dirs(x, tout)) != 0 ||
	    (ret = refuse_inside(x, tdir, "--targets-out", tout)) != 0)))
		goto out;
	for (i = 0; tout != NULL && i < t.n; i++)
		if ((ret = place_target(x, tout, &t.v[i])) != 0)
			goto out;
	if ((ret = get_repo(x, name, &repo)) != 0 ||
	    (ret = role_state(x, repo, R_TARGETS, &ts)) != 0 ||
	    (ret = role_state(x, repo, R_SNAPSHOT, &ss)) != 0 ||
	    (ret = role_state(x, repo, R_TIMESTAMP, &tss)) != 0 ||
	    (ret = roots_parse(x, repo, &roots, &spec)) != 0 ||
	    (ret = next_version(x, ts, &p.targets)) != 0 ||
	    (ret = next_version(x, ss, &p.snapshot)) != 0 ||
	    (ret = next_version(x, tss, &p.timestamp)) != 0)
		goto out;
	if (repo->kind == BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_DIRECTOR) {
		ret = out_usage(x->cmd, "%s is an Uptane Director, whose metadata is signed per "
		    "vehicle: use ota sign --vehicle", name);
		goto out;
	}
	p.root = repo->n_roots;
	p.ntargets = t.n;
	expires_in((int64_t)tdays * DAY, expiry);
	part = targets_part(role_type(repo, "targets"), &t, spec, p.targets, expiry);
	if (part != NULL && (ret = add_delegations(x, repo, part, NULL)) != 0) {
		json_decref(part);
		goto out;
	}
	if ((ret = sign_new(x, name, "targets", part, &tr)) != 0)
		goto out;
	expires_in((int64_t)sdays * DAY, expiry);
	part = listing_part(role_type(repo, "snapshot"), spec, p.snapshot, expiry, "targets.json",
	    p.targets, NULL, 0);
	if (part != NULL && (ret = add_delegations(x, repo, NULL, part)) != 0) {
		json_decref(part);
		goto out;
	}
	if ((ret = sign_new(x, name, "snapshot", part, &sr)) != 0)
		goto out;
	expires_in(tslife, expiry);
	part = listing_part(role_type(repo, "timestamp"), spec, p.timestamp, expiry,
	    "snapshot.json", p.snapshot, sr->metadata.data, sr->metadata.len);
	if ((ret = sign_new(x, name, "timestamp", part, &tsr)) != 0)
		goto out;
	/* the files a timestamp leads to, then the timestamp */
	snprintf(fname, sizeof(fname), "%llu.targets.json", (unsigned long long)p.targets);
	if ((ret = write_in(x, mdir, fname, tr->metadata.data, tr->metadata.len)) != 0)
		goto out;
	snprintf(fname, sizeof(fname), "%llu.snapshot.json", (unsigned long long)p.snapshot);
	if ((ret = write_in(x, mdir, fname, sr->metadata.data, sr->metadata.len)) != 0 ||
	    (ret = write_delegated(x, repo, mdir)) != 0)
		goto out;
	for (i = 0; i < repo->n_roots; i++) {
		snprintf(fname, sizeof(fname), "%zu.root.json", i + 1);
		if ((ret = write_in(x, mdir, fname, repo->roots[i].data, repo->roots[i].len)) != 0)
			goto out;
	}
	if ((ret = write_in(x, mdir, "root.json", repo->roots[repo->n_roots - 1].data,
	    repo->roots[repo->n_roots - 1].len)) != 0 ||
	    (ret = write_in(x, mdir, "timestamp.json", tsr->metadata.data,
	    tsr->metadata.len)) != 0)
		goto out;
	print_published(x, &p, mdir, 1);
out:
	if (repo != NULL) {
		roots_free(roots, repo->n_roots);
		protobuf_c_message_free_unpacked(&repo->base, NULL);
	}
	if (tr != NULL)
		protobuf_c_message_free_unpacked(&tr->base, NULL);
	if (sr != NULL)
		protobuf_c_message_free_unpacked(&sr->base, NULL);
	if (tsr != NULL)
		protobuf_c_message_free_unpacked(&tsr->base, NULL);
	targets_free(&t);
	return ret;
}

static int
cmd_delegate(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetDelegationRequest req = BOLTSEAL__V1__SET_DELEGATION_REQUEST__INIT;
	Boltseal__V1__SetDelegationResponse *resp = NULL;
	char *kcopy = NULL, *pcopy = NULL, **keys = NULL, **paths = NULL;
	size_t nk = 0, np = 0;
	const char *kv, *pv;
	unsigned long th;
	struct out_json j;
	int ret;

	if ((ret = req_opt(x, a, "keys", "K[,K...]", &kv)) != 0 ||
	    (ret = req_opt(x, a, "paths", "PATTERN[,PATTERN...]", &pv)) != 0 ||
	    (ret = split_list(x, "keys", kv, &kcopy, &keys, &nk)) != 0 ||
	    (ret = split_list(x, "paths", pv, &pcopy, &paths, &np)) != 0 ||
	    (ret = uint_opt(x, a, "threshold", 1, 255, 1, &th)) != 0)
		goto out;
	req.repository = (char *)a->pos[0];
	req.name = (char *)a->pos[1];
	req.key_names = keys;
	req.n_key_names = nk;
	req.threshold = (uint32_t)th;
	req.paths = paths;
	req.n_paths = np;
	req.terminating = args_get(a, "terminating") != NULL;
	if ((ret = call_unary(x, OS "SetDelegation", &req.base,
	    &boltseal__v1__set_delegation_response__descriptor, (ProtobufCMessage **)&resp)) != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "repository", req.repository);
		out_json_str(&j, "role", req.name);
		out_json_uint(&j, "keys", nk);
		out_json_uint(&j, "threshold", th);
		out_json_close(&j);
	} else {
		printf("repository %s delegates to %s: %zu key(s), threshold %lu; the next "
		    "`ota publish` puts it in the targets\n", req.repository, req.name, nk, th);
	}
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(kcopy);
	free(pcopy);
	free(keys);
	free(paths);
	return ret;
}

static int
cmd_refresh_timestamp(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetRepositoryResponse *repo = NULL;
	Boltseal__V1__SignMetadataResponse *tsr = NULL;
	const Boltseal__V1__RoleState *ss, *tss;
	const char *mdir, *spec = NULL, *name = a->pos[0];
	struct published p;
	int64_t tslife;
	json_t **roots = NULL, *snap = NULL;
	char expiry[32], fname[48];
	int ret;

	memset(&p, 0, sizeof(p));
	if ((ret = req_opt(x, a, "out", "METADATA_DIR", &mdir)) != 0 ||
	    (ret = timestamp_life(x, a, &tslife)) != 0 || (ret = make_dirs(x, mdir)) != 0)
		return ret;
	if ((ret = get_repo(x, name, &repo)) != 0 ||
	    (ret = role_state(x, repo, R_SNAPSHOT, &ss)) != 0 ||
	    (ret = role_state(x, repo, R_TIMESTAMP, &tss)) != 0 ||
	    (ret = roots_parse(x, repo, &roots, &spec)) != 0 ||
	    (ret = next_version(x, tss, &p.timestamp)) != 0)
		goto out;
	if (ss->version == 0) {
		out_err(x->cmd, "repository %s has no snapshot yet: run 'boltseal ota publish' "
		    "first", name);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if (ss->metadata.len == 0) {
		out_err(x->cmd, "the server did not return snapshot version %llu",
		    (unsigned long long)ss->version);
		ret = CLI_EXIT_CONN;
		goto out;
	}
	if ((ret = meta_parse(x, "the snapshot", ss->metadata.data, ss->metadata.len, "snapshot",
	    ss->version, &snap)) != 0)
		goto out;
	p.snapshot = ss->version;
	expires_in(tslife, expiry);
	if ((ret = sign_new(x, name, "timestamp", listing_part(role_type(repo, "timestamp"), spec,
	    p.timestamp, expiry, "snapshot.json", p.snapshot, ss->metadata.data,
	    ss->metadata.len), &tsr)) != 0)
		goto out;
	/* the snapshot the timestamp names (the same bytes as published), then the timestamp */
	snprintf(fname, sizeof(fname), "%llu.snapshot.json", (unsigned long long)p.snapshot);
	if ((ret = write_in(x, mdir, fname, ss->metadata.data, ss->metadata.len)) != 0 ||
	    (ret = write_in(x, mdir, "timestamp.json", tsr->metadata.data,
	    tsr->metadata.len)) != 0)
		goto out;
	print_published(x, &p, mdir, 0);
out:
	json_decref(snap);
	if (repo != NULL) {
		roots_free(roots, repo->n_roots);
		protobuf_c_message_free_unpacked(&repo->base, NULL);
	}
	if (tsr != NULL)
		protobuf_c_message_free_unpacked(&tsr->base, NULL);
	return ret;
}

/* ---- the table ------------------------------------------------------------------- */

#define ROLE_OPTS \
	{ "root", 0, ARGS_VALUE }, { "root-threshold", 0, ARGS_VALUE }, \
	{ "targets", 0, ARGS_VALUE }, { "targets-threshold", 0, ARGS_VALUE }, \
	{ "snapshot", 0, ARGS_VALUE }, { "snapshot-threshold", 0, ARGS_VALUE }, \
	{ "timestamp", 0, ARGS_VALUE }, { "timestamp-threshold", 0, ARGS_VALUE }

static const struct args_opt init_opts[] = {
	ROLE_OPTS, { "root-expires-days", 0, ARGS_VALUE }, { "out", 0, ARGS_VALUE },
	{ "kind", 0, ARGS_VALUE }, { "dialect", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt rotate_opts[] = {
	ROLE_OPTS, { "expires-days", 0, ARGS_VALUE }, { "version", 0, ARGS_VALUE },
	{ "out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt sign_opts[] = {
	{ "out", 0, ARGS_VALUE }, { "vehicle", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt publish_opts[] = {
	{ "targets", 0, ARGS_VALUE }, { "out", 0, ARGS_VALUE }, { "targets-out", 0, ARGS_VALUE },
	{ "targets-days", 0, ARGS_VALUE }, { "snapshot-days", 0, ARGS_VALUE },
	{ "timestamp-hours", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt delegate_opts[] = {
	{ "keys", 0, ARGS_VALUE }, { "threshold", 0, ARGS_VALUE }, { "paths", 0, ARGS_VALUE },
	{ "terminating", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt refresh_opts[] = {
	{ "out", 0, ARGS_VALUE }, { "timestamp-hours", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd ota_cmds[] = {
	{ .name = "init", .run = cmd_init,
	  .summary = "create a repository; write its root metadata (CreateRepository)",
	  .usage = "NAME --root K[,K...] [--root-threshold N] --targets K[,K...]\n"
	      "[--targets-threshold N] --snapshot K[,K...] [--snapshot-threshold N]\n"
	      "--timestamp K[,K...] [--timestamp-threshold N] [--root-expires-days N]\n"
	      "[--kind tuf|uptane-image|uptane-director] [--dialect tuf|aktualizr] --out DIR",
	  .spec = { init_opts, 1, 1 } },
	{ .name = "status", .run = cmd_status,
	  .summary = "print each role's keys, threshold and last version (GetRepository)",
	  .usage = "NAME", .spec = { NULL, 1, 1 } },
	{ .name = "rotate-root", .run = cmd_rotate_root,
	  .summary = "sign the next root version, with roles' keys or thresholds changed "
	      "(RotateRoot)",
	  .usage = "NAME [--root K[,K...]] [--root-threshold N] [--targets K[,K...]]\n"
	      "[--targets-threshold N] [--snapshot ...] [--snapshot-threshold N]\n"
	      "[--timestamp ...] [--timestamp-threshold N] [--expires-days N]\n"
	      "[--version N] --out DIR",
	  .spec = { rotate_opts, 1, 1 } },
	{ .name = "sign", .run = cmd_sign,
	  .summary = "sign one targets, snapshot or timestamp file (SignMetadata)",
	  .usage = "NAME ROLE [FILE] [--out FILE] [--vehicle ID]", .spec = { sign_opts, 2, 3 } },
	{ .name = "publish", .run = cmd_publish,
	  .summary = "hash the files of DIR here, sign targets, snapshot and timestamp, write "
	      "the metadata",
	  .usage = "NAME --targets DIR --out METADATA_DIR [--targets-out DIR]\n"
	      "[--targets-days N] [--snapshot-days N] [--timestamp-hours N]",
	  .spec = { publish_opts, 1, 1 } },
	{ .name = "delegate", .run = cmd_delegate,
	  .summary = "register or replace a delegated targets role (SetDelegation)",
	  .usage = "NAME ROLE --keys K[,K...] [--threshold N] --paths PATTERN[,PATTERN...]\n"
	      "[--terminating]",
	  .spec = { delegate_opts, 2, 2 } },
	{ .name = "refresh-timestamp", .run = cmd_refresh_timestamp,
	  .summary = "sign a new timestamp over the last snapshot (for cron)",
	  .usage = "NAME --out METADATA_DIR [--timestamp-hours N]",
	  .spec = { refresh_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_ota_cmd = {
	.name = "ota",
	.summary = "TUF repositories signed in the HSM: init, publish, refresh-timestamp "
	    "(boltseal.v1.OtaService)",
	.usage = "COMMAND [ARGS]",
	.sub = ota_cmds,
};
