/* log.h - where flox-runc's messages go.
 *
 * Owns: writing one line per message to runc's `--log` file, in runc's JSON
 * (`{"level","msg","time"}`, time RFC 3339 in UTC) when `--log-format json`
 * and in runc's logrus text form otherwise, and errors also to stderr.
 * Nothing is ever written to stdout: engines parse it (state, ps, features)
 * or it is the container's output.  A log file that cannot be written never
 * changes the outcome of a call.
 *
 * Errors: log file + stderr.  Warnings, info (progress), debug: log file
 * only (debug only with --debug); without a --log file, warnings go to
 * stderr and the rest only with --debug.
 */
#ifndef FRC_LOG_H
#define FRC_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "argv.h"

enum frc_log_level
{
  FRC_LOG_DEBUG,
  FRC_LOG_INFO,
  FRC_LOG_WARNING,
  FRC_LOG_ERROR,
};

struct frc_logger
{
  const char *path; /* --log, NULL when none */
  bool json; /* --log-format json */
  bool debug; /* --debug */
  int stderr_fd; /* normally 2; tests point it elsewhere */
};

void frc_logger_init(struct frc_logger *l, const struct frc_globals *g);
/* A NULL logger logs nothing. */
void frc_log(const struct frc_logger *l, enum frc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats one log line (with trailing newline) into a new string; exposed
 * for the unit tests.  now_ns is nanoseconds since the epoch. */
char *frc_log_format_line(bool json, enum frc_log_level level, const char *msg, long long now_ns);

/* Appends s to out as a JSON string body (no quotes), escaping what JSON
 * requires.  Returns the number of bytes written; out must hold 6*strlen+1. */
size_t frc_json_escape(char *out, const char *s);

#endif
