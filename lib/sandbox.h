/* sandbox.h - untrusted work in an unprivileged child.
 *
 * Owns: the child process flox-runc forks for work on hostile bytes (the
 * FloxHub conversation and the parsing of everything it returns): every
 * descriptor but its reply pipe closed (0-2 are /dev/null), its own mount
 * namespace with an empty /proc, an unprivileged uid/gid with no
 * supplementary groups, every capability cleared through libcap-ng
 * (effective, permitted, inheritable, bounding, ambient), PR_SET_NO_NEW_PRIVS,
 * and a seccomp filter (classic BPF, architecture checked) that kills it on
 * the system calls such work never makes (and refuses signals to any
 * process but itself); the deadline kill, of the reading and of the wait;
 * and the small framed reply format (tag, length, bytes) the root parent
 * reads bounded and validates frame by frame.  What the frames mean is the caller's
 * (lib/hub.c).  docs/security.md says what it covers.
 */
#ifndef FRC_SANDBOX_H
#define FRC_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct frc_sandbox
{
  uid_t uid; /* 0 is refused */
  gid_t gid;
  long long deadline_ns; /* CLOCK_MONOTONIC: the child is killed then; 0: none */
  size_t max_reply; /* the parent reads at most this many bytes */
};

/* The child's work: writes its frames to out (frc_frames_flush) and returns
 * its exit status.  Runs after frc_sandbox_enter. */
typedef int (*frc_sandbox_fn)(void *data, int out);

/* Forks, enters the sandbox in the child and runs fn there; the parent reads
 * the child's reply (at most max_reply bytes) into *reply until the child
 * exits or the deadline passes (then it is killed: FRC_ECODE_DEADLINE).  A
 * child that dies of a signal (SIGSYS from the seccomp filter) or cannot
 * enter the sandbox is an error; *status is its exit status otherwise. */
int frc_sandbox_run(const struct frc_sandbox *s, frc_sandbox_fn fn, void *data, char **reply,
                    size_t *reply_len, int *status, frc_error_t *err);

/* As root: a private mount namespace with an empty /proc.  Then drops the
 * calling process to s->uid/gid with no groups and no
 * capabilities, sets no_new_privs and installs the seccomp filter.  Not
 * reversible: only ever called in a child.  Tests call it directly. */
int frc_sandbox_enter(const struct frc_sandbox *s, frc_error_t *err);
/* Only the seccomp filter (after no_new_privs), for tests. */
int frc_sandbox_seccomp(frc_error_t *err);

/* Frames: 1 tag byte, 4-byte little-endian length, the bytes. */
struct frc_frames
{
  char *buf;
  size_t len;
};
void frc_frames_put(struct frc_frames *f, char tag, const void *data, size_t len);
void frc_frames_put_u32(struct frc_frames *f, char tag, uint32_t v);
int frc_frames_flush(struct frc_frames *f, int fd);
void frc_frames_release(struct frc_frames *f);

/* Reads the frame at *off of buf: false at the end, and also (with *err
 * set) when the frame is truncated or longer than max. */
bool frc_frames_next(const char *buf, size_t len, size_t *off, char *tag, const char **data,
                     size_t *dlen, size_t max, frc_error_t *err);
/* A 4-byte frame's value; false when it has another size. */
bool frc_frame_u32(const char *data, size_t dlen, uint32_t *v);

#endif
