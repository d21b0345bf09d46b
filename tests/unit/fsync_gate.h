/*
 * fsync_gate.h - test-only: holds or fails the audit writer's fdatasync(2)
 * on one file, so a unit test can fill the audit queue while the log is
 * healthy, or make a write fail. fsync_gate.c defines fdatasync itself:
 * linked into a test program, it wins over the C library's for every
 * caller (the library under test, SQLite); files not watched go straight
 * to the system call.
 */
#ifndef BS_TEST_FSYNC_GATE_H
#define BS_TEST_FSYNC_GATE_H

/* Forgets the previous state and watches path's file (0, or -1: cannot stat it). */
int fsync_gate_watch(const char *path);

/* shut: callers on the watched file wait; fail: the next n calls fail with EIO. */
void fsync_gate_set(int shut, int fail);

/* 1 while a caller waits at the shut gate. */
int fsync_gate_held(void);

/* Waits up to seconds for a caller to reach the shut gate; 1 if one did. */
int fsync_gate_wait_held(unsigned seconds);

/* Opens the gate and stops watching (teardown: a failed test may leave it shut). */
void fsync_gate_reset(void);

#endif
