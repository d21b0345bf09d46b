/*
 * fsync_gate.c - test-only interposed fdatasync(2) with a gate on one
 * file; see fsync_gate.h.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsync_gate.h"

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static struct {
	dev_t dev;
	ino_t ino;
	int watching, shut, waiting, fail;
} gate;

int
fdatasync(int fd)
{
	struct stat st;
	int fail = 0;

	if (fstat(fd, &st) == 0) {
		pthread_mutex_lock(&gate_mu);
		if (gate.watching && st.st_dev == gate.dev && st.st_ino == gate.ino) {
			gate.waiting++;
			pthread_cond_broadcast(&gate_cv);
			while (gate.shut)
				pthread_cond_wait(&gate_cv, &gate_mu);
			gate.waiting--;
			if (gate.fail > 0) {
				gate.fail--;
				fail = 1;
			}
		}
		pthread_mutex_unlock(&gate_mu);
	}
	if (fail) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

int
fsync_gate_watch(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	pthread_mutex_lock(&gate_mu);
	memset(&gate, 0, sizeof(gate));
	gate.dev = st.st_dev;
	gate.ino = st.st_ino;
	gate.watching = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	return 0;
}

void
fsync_gate_set(int shut, int fail)
{
	pthread_mutex_lock(&gate_mu);
	gate.shut = shut;
	gate.fail = fail;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

int
fsync_gate_held(void)
{
	int held;

	pthread_mutex_lock(&gate_mu);
	held = gate.waiting > 0;
	pthread_mutex_unlock(&gate_mu);
	return held;
}

int
fsync_gate_wait_held(unsigned seconds)
{
	struct timespec until;
	int held;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)seconds;
	pthread_mutex_lock(&gate_mu);
	while (gate.waiting == 0 && pthread_cond_timedwait(&gate_cv, &gate_mu, &until) == 0)
		;
	held = gate.waiting > 0;
	pthread_mutex_unlock(&gate_mu);
	return held;
}

void
fsync_gate_reset(void)
{
	pthread_mutex_lock(&gate_mu);
	memset(&gate, 0, sizeof(gate));
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}
