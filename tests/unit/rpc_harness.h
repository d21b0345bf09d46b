/*
 * rpc_harness.h - what the RPC layer's and the services' unit tests share:
 * a fake transport that records the answer of a call (no sockets), a
 * policy written from text, and bounded loop pumping.
 */
#ifndef BS_TEST_RPC_HARNESS_H
#define BS_TEST_RPC_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

struct audit_log;
struct event_base;
struct policy;
struct rpc_registry;

/* One stream of the fake transport: its last answer (copied). */
struct fake_stream {
	int answers;
	struct rpc_answer a;
	char message[RPC_MESSAGE_MAX];
	uint8_t msg[8192];
	uint64_t records_at_answer;        /* durable records of harness_audit_log then */
	int detach_on_answer;              /* the transport drops the stream at once */
	int sent;                          /* streamed messages (rpc_call_send_pb) */
	size_t sent_len;                   /* the last one's length */
	struct rpc_call *call;
};

extern const struct rpc_transport fake_transport;
/* The log whose size each answer notes (NULL: none). */
extern struct audit_log *harness_audit_log;

/* A new call from uri on d, answering into fs (reset). */
struct rpc_call *harness_begin(struct rpc_dispatcher *d, const char *uri, struct fake_stream *fs);

/* Admits path and hands msg over (if admitted). */
void harness_send(struct rpc_call *call, const char *path, const uint8_t *msg, size_t len);

/* Runs base until *flag is nonzero (bounded: 10 s). Returns *flag. */
int harness_pump(struct event_base *base, const int *flag);

/* Runs base until d has no call left (bounded as above). */
void harness_pump_idle(struct event_base *base, struct rpc_dispatcher *d);

/*
 * Writes text to dir/policy.conf and loads it against the methods of reg
 * and every purpose. Fails the test on error.
 */
struct policy *harness_policy(const char *dir, const char *text, const struct rpc_registry *reg);

/* A fresh temporary directory (mkdtemp) and its recursive removal. */
void harness_tmpdir(char *buf, size_t len);
void harness_rmdir(const char *dir);

#endif
