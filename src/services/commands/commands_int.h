/*
 * commands_int.h - what the two halves of CommandService share:
 * commands.c (SignCommand) and inspect.c (InspectCommand, forensics).
 */
#ifndef BS_COMMANDS_INT_H
#define BS_COMMANDS_INT_H

#include <protobuf-c/protobuf-c.h>

#define CMD_NS "commands"
#define CMD_ISSUER "boltseal"
#define CMD_AUDIENCE "boltseal-vehicle"
#define CMD_METHOD_SIGN "boltseal.v1.CommandService/SignCommand"

#include "formats/jose.h"

struct rpc_call;
struct catalog_key;
struct catalog_version;

/* CommandService.InspectCommand (inspect.c). */
void commands_inspect(struct rpc_call *call, const ProtobufCMessage *msg);

/*
 * Loop thread: the RFC 7638 thumbprint of key k's version v, from the
 * service's small cache (the SPKI decode is what SignCommand once spent
 * its time on). 0 or jose_thumbprint's error.
 */
int commands_kid_of(struct rpc_call *call, const struct catalog_key *k,
    const struct catalog_version *v, char kid[JOSE_THUMBPRINT_LEN + 1]);

#endif
