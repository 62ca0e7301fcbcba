#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *const level_names[] = { "debug", "info", "warning", "error" };

void
frc_logger_init(struct frc_logger *l, const struct frc_globals *g)
{
  memset(l, 0, sizeof(*l));
  l->path = g->log && g->log[0] ? g->log : NULL;
  l->json = g->log_format && strcmp(g->log_format, "json") == 0;
  l->debug = g->debug;
  l->stderr_fd = 2;
}

size_t
frc_json_escape(char *out, const char *s)
{
  char *o = out;
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      switch (*p)
        {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
          if (*p < 0x20 || *p == 0x7f)
            o += sprintf(o, "\\u%04x", *p);
          else
            *o++ = (char) *p;
        }
    }
  *o = '\0';
  return (size_t) (o - out);
}

char *
frc_log_format_line(bool json, enum frc_log_level level, const char *msg, long long now_ns)
{
  char stamp[64];
  time_t secs = (time_t) (now_ns / 1000000000LL);
  struct tm tm;
  cleanup_free char *esc = xmalloc0(strlen(msg) * 6 + 1);

  gmtime_r(&secs, &tm);
  snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now_ns % 1000000000LL);
  frc_json_escape(esc, msg);
  if (json)
    return xasprintf("{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n", level_names[level], esc,
                     stamp);
  /* logrus TextFormatter without a terminal, as runc writes it. */
  return xasprintf("time=\"%s\" level=%s msg=\"%s\"\n", stamp, level_names[level], esc);
}

static void
append_to_file(const char *path, const char *line)
{
  cleanup_close int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd >= 0)
    (void) write_all(fd, line, strlen(line)); /* best effort by contract */
}

void
frc_log(const struct frc_logger *l, enum frc_log_level level, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;
  struct timespec ts;
  bool to_stderr;

  if (l == NULL || (level == FRC_LOG_DEBUG && !l->debug))
    return;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (msg == NULL)
    return;
  /* One line, whatever the message held. */
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';

  clock_gettime(CLOCK_REALTIME, &ts);
  if (l->path)
    {
      cleanup_free char *line = frc_log_format_line(l->json, level, msg,
                                                    (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
      append_to_file(l->path, line);
    }
  to_stderr = level == FRC_LOG_ERROR || (l->path == NULL && (level == FRC_LOG_WARNING || l->debug));
  if (to_stderr && l->stderr_fd >= 0)
    {
      cleanup_free char *line = xasprintf("%s\n", msg);
      (void) write_all(l->stderr_fd, line, strlen(line));
    }
}
