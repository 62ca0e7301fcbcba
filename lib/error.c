#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "util.h"

int
frc_error_make(frc_error_t *err, int errno_, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (errno_ != 0 && msg != NULL)
    {
      char *full = NULL;
      if (asprintf(&full, "%s: %s", msg, strerror(errno_)) >= 0)
        {
          free(msg);
          msg = full;
        }
    }
  if (*err != NULL)
    frc_error_release(err);
  *err = xmalloc0(sizeof(**err));
  (*err)->status = 1;
  (*err)->errno_ = errno_;
  (*err)->msg = msg ? msg : xstrdup("out of memory while formatting an error");
  return -1;
}

int
frc_error_wrap(frc_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *ctx = NULL;
  char *full = NULL;

  if (*err == NULL)
    return -1;
  va_start(ap, fmt);
  if (vasprintf(&ctx, fmt, ap) < 0)
    ctx = NULL;
  va_end(ap);
  if (ctx != NULL && asprintf(&full, "%s: %s", ctx, (*err)->msg) >= 0)
    {
      free((*err)->msg);
      (*err)->msg = full;
    }
  free(ctx);
  return -1;
}

void
frc_error_release(frc_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

int
frc_error_code(frc_error_t *err, int code)
{
  if (*err)
    (*err)->code = code;
  return -1;
}
