/*
 * call.c - the `boltseal` CLI's calls to the server: connect once with the
 * resolved settings, then one unary call per request (see call_unary in
 * cli.h).
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

int
call_unary(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp)
{
	struct bs_call_result res;
	uint8_t *buf = NULL;
	size_t len;
	ProtobufCMessage *m;
	int ret;

	memset(&res, 0, sizeof(res));
	if ((ret = ensure_connected(x)) != 0)
		return ret;
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	protobuf_c_message_pack(req, buf);
	ret = out_call_status(x->cmd, bs_client_unary(x->client, path, buf, len, &res), &res);
	if (ret != 0)
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
