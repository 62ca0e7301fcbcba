/* pktline.h - git's pkt-line framing, over memory.
 *
 * Owns: reading pkt-lines out of a complete response body (4 hex digits of
 * length, 0000 flush, 0001 delim, 0002 response-end, at most 65520 bytes a
 * packet), building request bodies out of pkt-lines, and the side-band
 * demultiplexer that turns band 1 into pack bytes, hands band 2 (progress) to
 * an optional callback and turns band 3 (and ERR packets) into an error that
 * quotes the server.  Nothing here allocates except the output buffers.
 */
#ifndef FRC_PKTLINE_H
#define FRC_PKTLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "util.h" /* struct frc_buf */

#define FRC_PKT_MAX 65520 /* a whole packet, with its 4-byte header */
#define FRC_PKT_DATA_MAX (FRC_PKT_MAX - 4)

enum frc_pkt_kind
{
  FRC_PKT_DATA,
  FRC_PKT_FLUSH, /* 0000 */
  FRC_PKT_DELIM, /* 0001 */
  FRC_PKT_END, /* 0002 response-end */
  FRC_PKT_EOF, /* no more bytes: not a packet */
};

struct frc_pkt
{
  enum frc_pkt_kind kind;
  const char *data; /* points into the reader's buffer; not NUL-terminated */
  size_t len;
};

struct frc_pkt_reader
{
  const char *buf;
  size_t len;
  size_t pos;
};

void frc_pkt_reader_init(struct frc_pkt_reader *r, const void *buf, size_t len);

/* Reads the next packet.  At the end of the buffer returns 0 with kind
 * FRC_PKT_EOF; a malformed or cut packet is an error (FRC_ECODE_SERVER). */
int frc_pkt_read(struct frc_pkt_reader *r, struct frc_pkt *p, frc_error_t *err);

/* Like frc_pkt_read for text lines: one trailing "\n" is dropped, and a data
 * packet "ERR <text>" becomes the error "FloxHub git service error: <text>"
 * (FRC_ECODE_SERVER). */
int frc_pkt_read_line(struct frc_pkt_reader *r, struct frc_pkt *p, frc_error_t *err);

/* True when p is a data packet equal to s (s without its "\n"). */
bool frc_pkt_is(const struct frc_pkt *p, const char *s);
/* True when p is a data packet starting with prefix; *rest (optional) points
 * after it and *rest_len is what is left. */
bool frc_pkt_has_prefix(const struct frc_pkt *p, const char *prefix, const char **rest,
                        size_t *rest_len);

/* Writers.  The request bodies flox-runc builds are its own text, so a packet
 * longer than FRC_PKT_DATA_MAX is a bug: it is refused with -1. */
int frc_pkt_write(struct frc_buf *b, const void *data, size_t len);
int frc_pkt_writef(struct frc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void frc_pkt_flush(struct frc_buf *b);
void frc_pkt_delim(struct frc_buf *b);

/* Progress text from band 2 (one packet's worth, not NUL-terminated). */
typedef void (*frc_pkt_progress_fn)(const char *text, size_t len, void *data);

/* Demultiplexes side-band packets from r up to and including the flush that
 * ends them, appending band 1 to out.  More than max bytes of band 1 is an
 * error (FRC_ECODE_TOO_BIG); band 3 or an ERR packet is the error
 * "FloxHub git service error: <text>" (FRC_ECODE_SERVER); the stream ending
 * without its flush, an unknown band or an empty packet are protocol errors
 * (FRC_ECODE_SERVER).  progress may be NULL. */
int frc_pkt_demux(struct frc_pkt_reader *r, struct frc_buf *out, size_t max,
                  frc_pkt_progress_fn progress, void *progress_data, frc_error_t *err);

/* Sets *err to "FloxHub git service error: <text>" (escaped, bounded, a
 * trailing newline dropped) with FRC_ECODE_SERVER; returns -1. */
int frc_pkt_server_error(frc_error_t *err, const char *text, size_t len);

#endif
