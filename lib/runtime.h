/* runtime.h - the real OCI runtime flox-runc hands calls to.
 *
 * Owns: locating it (the node config's `runtime`, an absolute path or a name
 * looked up in PATH; by default `runc` in PATH then the usual sbin/bin
 * directories), refusing flox-runc itself in any disguise (same realpath as
 * /proc/self/exe, or an ELF file carrying flox-runc's build id), guarding
 * against loops through a wrapper script, the final execv with argv[0] set
 * to the runtime's path and everything else untouched, and running it as a
 * child (delete, a foreground run, state) with signals handed on.
 */
#ifndef FRC_RUNTIME_H
#define FRC_RUNTIME_H

#include <stdbool.h>

#include "error.h"

/* Set in the environment of a wrapper *script* flox-runc execs; finding it
 * on entry means the script called flox-runc again (a loop). */
#define FRC_LOOP_GUARD_ENV "FLOX_RUNC_VIA_WRAPPER"

struct frc_runtime
{
  char *path;
  bool script; /* a `#!` wrapper, not a real runtime binary */
};

/* configured: the config's `runtime` or NULL.  Each candidate is opened once
 * to check both that it is not flox-runc and whether it is a script. */
int frc_runtime_locate(const char *configured, struct frc_runtime *rt, frc_error_t *err);
void frc_runtime_release(struct frc_runtime *rt);
#define cleanup_runtime __attribute__((cleanup(frc_runtime_release)))

/* Whether the file at path is this very program (realpath or build id). */
bool frc_runtime_is_self(const char *path);

/* Replaces the process with the runtime: argv[0] = path, argv[1..] as given,
 * same environment (plus the loop guard when path is a script), fds and
 * stdio.  Returns only on failure. */
int frc_runtime_exec(const struct frc_runtime *rt, char **argv, frc_error_t *err);

/* Runs the runtime as a child with argv (argv[0] replaced) and descriptors
 * 0-2 (on /dev/null when quiet) plus the keep_fds after them (run's
 * --preserve-fds); returns its exit status, 128+N when signal N killed it.
 * Meanwhile SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 are handed on to it. */
int frc_runtime_run(const struct frc_runtime *rt, char **argv, bool quiet, int keep_fds,
                    frc_error_t *err);
/* The same, bounded: a runtime still running timeout_ns after it started
 * (0: no bound) is killed (SIGKILL) and FRC_RUNTIME_TIMED_OUT returned. */
#define FRC_RUNTIME_TIMED_OUT (-2)
int frc_runtime_run_timed(const struct frc_runtime *rt, char **argv, bool quiet, int keep_fds,
                          long long timeout_ns, frc_error_t *err);

/* A loop detected on entry (the guard variable is set): an error. */
int frc_runtime_check_loop(frc_error_t *err);

#endif
