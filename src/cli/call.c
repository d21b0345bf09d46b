/*
 * call.c - the `boltseal` CLI's calls to the server: connect once with the
 * resolved settings, then one unary call per request (see call_unary and
 * call_unary_otp in cli.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/output.h"

static int
ensure_connected(struct cli_ctx *x)
{
	struct bs_client_opts o;
	char err[512];

	if (x->client != NULL)
		return 0;
	memset(&o, 0, sizeof(o));
	o.host = x->s.host;
	o.port = x->s.port;
	o.server_name = x->s.server_name;
	o.ca_file = x->s.ca;
	o.cert_file = x->s.cert;
	o.key_file = x->s.key;
	o.timeout_ms = x->s.timeout_ms;
	err[0] = '\0';
	if (bs_client_connect(&o, &x->client, err, sizeof(err)) != 0) {
		out_err(x->cmd, "%s", err[0] ? err : "cannot connect");
		return CLI_EXIT_CONN;
	}
	return 0;
}

/*
 * The call of call_unary and call_unary_otp: with status NULL a non-OK
 * status is printed, else it goes to *status and *msg.
 */
static int
call(struct cli_ctx *x, const char *path, const ProtobufCMessage *req, const char *otp,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp, int *status, char **msg)
{
	struct bs_call_result res;
	struct bs_metadata md = { "x-boltseal-otp", otp };
	uint8_t *buf = NULL;
	size_t len;
	ProtobufCMessage *m;
	int ret, rv;

	memset(&res, 0, sizeof(res));
	if ((ret = ensure_connected(x)) != 0)
		return ret;
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	protobuf_c_message_pack(req, buf);
	rv = bs_client_unary_md(x->client, path, &md, otp != NULL ? 1 : 0, buf, len, &res);
	if (rv == 0 && res.grpc_status != 0 && status != NULL) {
		*status = res.grpc_status;
		*msg = res.grpc_message;
		res.grpc_message = NULL;
		ret = CLI_EXIT_STATUS;
		goto out;
	}
	if ((ret = out_call_status(x->cmd, rv, &res)) != 0)
		goto out;
	if ((m = protobuf_c_message_unpack(rdesc, NULL, res.resp_len, res.resp)) == NULL) {
		out_err(x->cmd, "malformed %s from server", rdesc->short_name);
		ret = CLI_EXIT_CONN;
		goto out;
	}
	*resp = m;
out:
	OPENSSL_clear_free(buf, len ? len : 1);   /* requests may carry secrets (a payload to encrypt) */
	bs_call_result_clear(&res);
	return ret;
}

int
call_unary(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp)
{
	return call(x, path, req, NULL, rdesc, resp, NULL, NULL);
}

int
call_unary_otp(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const char *otp, const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
    int *status, char **msg)
{
	*status = 0;
	*msg = NULL;
	return call(x, path, req, otp, rdesc, resp, status, msg);
}
