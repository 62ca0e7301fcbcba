/* proc.h - running a helper program (the node's nix-store) under a deadline.
 *
 * Owns: fork/exec with a clean set of fds (0-2 only: everything above is
 * closed with close_range, frc_close_fds_from), the child in its own process group
 * and killed with it if flox-runc dies (PR_SET_PDEATHSIG), stdin from a file
 * or a pipe or /dev/null, stdout captured
 * (bounded) or discarded, stderr read line by line and handed to a callback
 * (progress) while the last lines are kept for the error message, and the
 * deadline: when it passes, the whole process group is killed with SIGKILL.
 * And a process detached from the caller, for work off its critical path
 * (frc_proc_detach).
 */
#ifndef FRC_PROC_H
#define FRC_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef void (*frc_proc_line_cb)(const char *line, void *data);

struct frc_proc
{
  const char *const *argv; /* argv[0] is the program path */
  const char *const *extra_env; /* "NAME=value" added to flox-runc's environment (replacing its NAME) */
  long long deadline_ns; /* CLOCK_MONOTONIC, 0: none */
  frc_proc_line_cb on_stderr_line;
  void *cb_data;
  int capture_stdout; /* keep stdout (bounded to 16 MiB) in *out */
  const char *stdin_path; /* a file read as stdin; NULL: /dev/null */
  int stdin_fd; /* > 2: the descriptor the child reads as stdin (a pipe the caller
                 * writes; close-on-exec, kept by the caller); 0: stdin_path */
};

struct frc_proc_result
{
  int status; /* exit status; 128+signal when killed */
  int timed_out;
  char *out; /* captured stdout, NUL-terminated */
  size_t out_len;
  char *last_err; /* the last stderr lines, joined with "; " */
};

/* Closes every descriptor from first up (close_range, else one by one up
 * to the descriptor limit): what a helper must not inherit.  For a child
 * between fork and exec. */
void frc_close_fds_from(int first);

/* Detaches a process for work the caller waits for nothing of: the caller
 * gets 1 once the intermediate child has exited (-1: fork failed), and the
 * detached grandchild gets 0 and must end with _exit.  The grandchild runs
 * in a session of its own, in "/" (it keeps no directory of the caller's
 * busy: a bundle's mount stays unmountable), with every signal's default
 * action and none blocked, /dev/null on 0-2 and no other descriptor but
 * keep[0..n-1] (n <= 8), each moved above 2 (the new numbers written back,
 * close-on-exec). */
int frc_proc_detach(int *keep, size_t n);

/* Runs p to completion.  Returns 0 when it ran (whatever its status), -1
 * when it could not be started. */
int frc_proc_run(const struct frc_proc *p, struct frc_proc_result *r, frc_error_t *err);
/* The same in two steps, for work done while the child runs: start it,
 * then read it to the end and reap it (its output is read only there, so
 * a child writing more than a pipe holds waits until then; the deadline is
 * enforced there).  p must stay valid until finish; finish (0 always) or
 * abort (SIGKILL to its group, then reaped) frees run. */
struct frc_proc_running;
int frc_proc_start(const struct frc_proc *p, struct frc_proc_running **run, frc_error_t *err);
int frc_proc_finish(struct frc_proc_running *run, struct frc_proc_result *r);
/* Reads the child's output (stderr to the callback as finish does) until
 * done(stdout so far) says it is complete: 1 then, with the child maybe
 * still running (frc_proc_finish reads on and reaps it); 0 when both pipes
 * ended or the deadline passed first.  For a child whose answer is all the
 * caller waits for, not its exit. */
int frc_proc_wait_stdout(struct frc_proc_running *run,
                         bool (*done)(const char *out, size_t len, void *data), void *data);
void frc_proc_abort(struct frc_proc_running *run);
/* The child's pid, also its process group's id. */
int frc_proc_pid(const struct frc_proc_running *run);
void frc_proc_result_release(struct frc_proc_result *r);
#define cleanup_proc_result __attribute__((cleanup(frc_proc_result_release)))

#endif
