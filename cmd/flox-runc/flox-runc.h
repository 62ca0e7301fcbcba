/* flox-runc.h - what the verbs of cmd/flox-runc share.
 *
 * main.c parses argv (lib/argv.h), sets up logging (lib/log.h) and hands
 * the call to one verb: passthrough.c for every runc verb flox-runc does not
 * handle, create.c (create, run and restore), checkpoint.c, exec.c, delete.c, version.c, help.c and
 * the node verbs (config.c, resolve.c, prefetch.c, gc.c, doctor.c,
 * install.c) and bind-closure.c, the createContainer hook create writes.  Each parses its arguments and calls one library function
 * (create, exec and delete: lib/container.h).  A verb returns -1 with *err set on failure; on success it
 * either execs the real runtime (and never returns) or returns 0 after
 * writing its own output.
 */
#ifndef FLOX_RUNC_CMD_H
#define FLOX_RUNC_CMD_H

#include "argv.h"
#include "config.h"
#include "error.h"
#include "log.h"

struct frc_ctx
{
  struct frc_cmdline cl;
  struct frc_logger log;
  struct frc_config config;
  bool config_loaded;
  int exit_status; /* returned when a verb succeeds without exec'ing (delete) */
};

/* Loads the node config once. */
int frc_ctx_config(struct frc_ctx *ctx, frc_error_t *err);
/* Locates the real runtime and execs it with the original argv. */
int frc_cmd_passthrough(struct frc_ctx *ctx, frc_error_t *err);

int frc_cmd_create(struct frc_ctx *ctx, frc_error_t *err); /* create, run and restore */
int frc_cmd_checkpoint(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_exec(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_delete(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_version(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_config(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_resolve(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_gc(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_prefetch(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_doctor(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_install(struct frc_ctx *ctx, frc_error_t *err);
int frc_cmd_bind_closure(struct frc_ctx *ctx, frc_error_t *err); /* the createContainer hook */
int frc_cmd_help(struct frc_ctx *ctx, frc_error_t *err); /* --help without a verb */

#endif
