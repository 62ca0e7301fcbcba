/* token.h - the FloxHub token of a pod.
 *
 * Owns: finding the `floxhub-token` secret on the node through the spec's
 * bind mount whose destination is /var/run/secrets/flox.dev (or
 * /run/secrets/flox.dev), reading it while following kubelet's `..data`
 * symlinks only inside that volume directory (openat2 RESOLVE_BENEATH),
 * opened O_PATH and checked to be a regular file before it is reopened
 * through /proc/self/fd (a device node or FIFO planted there is never
 * opened), validating it, and checking a JWT's `exp` before any request.  Tokens are
 * wiped from memory when released and never put into a message.
 */
#ifndef FRC_TOKEN_H
#define FRC_TOKEN_H

#include <stdbool.h>

#include "error.h"
#include "spec.h"

#define FRC_TOKEN_FILE "floxhub-token"
#define FRC_TOKEN_MAX_BYTES 16384

/* *token is NULL when the spec mounts no secret volume or the volume has no
 * floxhub-token file (anonymous access).  A token file that cannot be read
 * safely is an error. */
int frc_token_from_spec(const struct frc_spec *s, char **token, frc_error_t *err);
/* Reads dir/floxhub-token without leaving dir. */
int frc_token_read_dir(const char *dir, char **token, frc_error_t *err);
/* Reads a token file a person names on the command line (node verbs). */
int frc_token_read_file(const char *path, char **token, frc_error_t *err);
/* frc_token_read_file then frc_token_check against the current time. */
int frc_token_load_checked(const char *path, char **token, frc_error_t *err);
/* Checks an already-read token: characters, and for a JWT its expiry against
 * now (seconds since the epoch).  Opaque `flox_` tokens are not inspected. */
int frc_token_check(const char *token, long long now, frc_error_t *err);
/* Wipes and frees. */
void frc_token_free(char **token);
#define cleanup_token __attribute__((cleanup(frc_token_free)))

#endif
