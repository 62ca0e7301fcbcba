#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pktline.h"
#include "util.h"

#define SERVER_TEXT_MAX 512

void
frc_pkt_reader_init(struct frc_pkt_reader *r, const void *buf, size_t len)
{
  r->buf = buf;
  r->len = len;
  r->pos = 0;
}

static int
protocol_error(frc_error_t *err, const char *what, size_t pos)
{
  frc_error(err, "FloxHub git service sent a malformed response (%s at byte %zu): retry later, "
                 "or check that floxhub_git_url names a git smart HTTP service", what, pos);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

int
frc_pkt_read(struct frc_pkt_reader *r, struct frc_pkt *p, frc_error_t *err)
{
  size_t n = 0;

  p->data = NULL;
  p->len = 0;
  if (r->pos == r->len)
    {
      p->kind = FRC_PKT_EOF;
      return 0;
    }
  if (r->len - r->pos < 4)
    return protocol_error(err, "truncated pkt-line length", r->pos);
  for (size_t i = 0; i < 4; i++)
    {
      int v = frc_hex_digit(r->buf[r->pos + i]);
      if (v < 0)
        return protocol_error(err, "bad pkt-line length", r->pos);
      n = n * 16 + (size_t) v;
    }
  switch (n)
    {
    case 0: p->kind = FRC_PKT_FLUSH; r->pos += 4; return 0;
    case 1: p->kind = FRC_PKT_DELIM; r->pos += 4; return 0;
    case 2: p->kind = FRC_PKT_END; r->pos += 4; return 0;
    case 3: return protocol_error(err, "invalid pkt-line length 3", r->pos);
    default: break;
    }
  if (n > FRC_PKT_MAX)
    return protocol_error(err, "pkt-line longer than 65520 bytes", r->pos);
  if (r->len - r->pos < n)
    return protocol_error(err, "truncated pkt-line", r->pos);
  p->kind = FRC_PKT_DATA;
  p->data = r->buf + r->pos + 4;
  p->len = n - 4;
  r->pos += n;
  return 0;
}

int
frc_pkt_server_error(frc_error_t *err, const char *text, size_t len)
{
  cleanup_free char *esc = NULL;
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
    len--;
  esc = escape_for_message(text, len, SERVER_TEXT_MAX);
  frc_error(err, "FloxHub git service error: %s", esc);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

int
frc_pkt_read_line(struct frc_pkt_reader *r, struct frc_pkt *p, frc_error_t *err)
{
  if (frc_pkt_read(r, p, err) < 0)
    return -1;
  if (p->kind != FRC_PKT_DATA)
    return 0;
  if (p->len > 0 && p->data[p->len - 1] == '\n')
    p->len--;
  if (p->len >= 4 && memcmp(p->data, "ERR ", 4) == 0)
    return frc_pkt_server_error(err, p->data + 4, p->len - 4);
  return 0;
}

bool
frc_pkt_is(const struct frc_pkt *p, const char *s)
{
  size_t n = strlen(s);
  return p->kind == FRC_PKT_DATA && p->len == n && memcmp(p->data, s, n) == 0;
}

bool
frc_pkt_has_prefix(const struct frc_pkt *p, const char *prefix, const char **rest,
                   size_t *rest_len)
{
  size_t n = strlen(prefix);
  if (p->kind != FRC_PKT_DATA || p->len < n || memcmp(p->data, prefix, n) != 0)
    return false;
  if (rest)
    *rest = p->data + n;
  if (rest_len)
    *rest_len = p->len - n;
  return true;
}

int
frc_pkt_write(struct frc_buf *b, const void *data, size_t len)
{
  char hdr[5];
  if (len > FRC_PKT_DATA_MAX)
    return -1;
  snprintf(hdr, sizeof(hdr), "%04zx", len + 4);
  frc_buf_add(b, hdr, 4);
  frc_buf_add(b, data, len);
  return 0;
}

int
frc_pkt_writef(struct frc_buf *b, const char *fmt, ...)
{
  cleanup_free char *s = NULL;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    {
      s = NULL;
      return -1;
    }
  return frc_pkt_write(b, s, (size_t) n);
}

void
frc_pkt_flush(struct frc_buf *b)
{
  frc_buf_add(b, "0000", 4);
}

void
frc_pkt_delim(struct frc_buf *b)
{
  frc_buf_add(b, "0001", 4);
}

int
frc_pkt_demux(struct frc_pkt_reader *r, struct frc_buf *out, size_t max,
              frc_pkt_progress_fn progress, void *progress_data, frc_error_t *err)
{
  for (;;)
    {
      struct frc_pkt p;
      size_t at = r->pos;
      if (frc_pkt_read(r, &p, err) < 0)
        return -1;
      switch (p.kind)
        {
        case FRC_PKT_FLUSH: return 0;
        case FRC_PKT_EOF: return protocol_error(err, "pack stream ends without a flush", at);
        case FRC_PKT_DELIM:
        case FRC_PKT_END:
          return protocol_error(err, "unexpected special packet in pack stream", at);
        case FRC_PKT_DATA: break;
        }
      if (p.len == 0)
        return protocol_error(err, "side-band packet without a band", at);
      if (p.len >= 4 && memcmp(p.data, "ERR ", 4) == 0)
        return frc_pkt_server_error(err, p.data + 4, p.len - 4);
      switch (p.data[0])
        {
        case 1:
          if (out->len + (p.len - 1) > max || out->len + (p.len - 1) < out->len)
            {
              frc_error(err, "FloxHub sent more than %zu bytes of git pack data: the environment's "
                             "repository is larger than flox-runc accepts", max);
              return frc_error_code(err, FRC_ECODE_TOO_BIG);
            }
          frc_buf_add(out, p.data + 1, p.len - 1);
          break;
        case 2:
          if (progress)
            progress(p.data + 1, p.len - 1, progress_data);
          break;
        case 3: return frc_pkt_server_error(err, p.data + 1, p.len - 1);
        default: return protocol_error(err, "unknown side-band band", at);
        }
    }
}
