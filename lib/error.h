/* error.h - the one error type of flox-runc.
 *
 * Owns: frc_error_t.  Functions that can fail return a negative int and set
 * *err (they never print).  Callers add context with frc_error_wrap() on the
 * way up, and cmd/flox-runc reports the final text once through lib/log.
 * A message names the cause and the fix: "cause: fix".
 */
#ifndef FRC_ERROR_H
#define FRC_ERROR_H

#include <stdlib.h>

struct frc_error_s
{
  int status; /* exit status to use; 1 unless a caller chooses otherwise */
  int code; /* enum frc_error_code: what kind of failure, for callers that recover */
  int errno_; /* errno of the failing call, 0 when none */
  char *msg;
};
typedef struct frc_error_s *frc_error_t;

/* Kinds of failure a caller may act on (e.g. the hub client falls back to
 * its cache when the hub is unreachable).  0 is "other". */
enum frc_error_code
{
  FRC_ECODE_OTHER = 0,
  FRC_ECODE_UNREACHABLE, /* connection refused, DNS, timeout, reset, truncated */
  FRC_ECODE_SERVER, /* the server answered 5xx or with a protocol error */
  FRC_ECODE_AUTH, /* 401/403: credentials refused or missing */
  FRC_ECODE_NOT_FOUND, /* 404, or no such environment or generation */
  FRC_ECODE_TOO_BIG, /* a bound was exceeded */
  FRC_ECODE_DEADLINE, /* the overall deadline passed */
};

/* Sets *err (which must be NULL) and returns -1.  With errno_ != 0 the text
 * of strerror(errno_) is appended after ": ". */
int frc_error_make(frc_error_t *err, int errno_, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to the message of *err; returns -1. */
int frc_error_wrap(frc_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void frc_error_release(frc_error_t *err);
/* Sets the code of *err (when set); returns -1. */
int frc_error_code(frc_error_t *err, int code);
static inline int
frc_error_get_code(frc_error_t err)
{
  return err ? err->code : 0;
}

#define cleanup_error __attribute__((cleanup(frc_error_release)))

#define frc_error(err, ...) frc_error_make(err, 0, __VA_ARGS__)
#define frc_error_errno(err, e, ...) frc_error_make(err, e, __VA_ARGS__)

#endif
