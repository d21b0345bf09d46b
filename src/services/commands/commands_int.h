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

struct rpc_call;

/* CommandService.InspectCommand (inspect.c). */
void commands_inspect(struct rpc_call *call, const ProtobufCMessage *msg);

#endif
