/* pkt-line reading and side-band demultiplexing (lib/pktline.c) on a
 * response body as a git server sends it.  Properties: every packet points
 * inside the buffer and is at most FRC_PKT_DATA_MAX bytes; a packet read
 * writes back to the same bytes; the demultiplexer's output respects its
 * bound. */
#include <ctype.h>

#include "fuzz.h"
#include "pktline.h"

#define DEMUX_MAX (256u << 10)

static void
progress(const char *text, size_t len, void *data)
{
  size_t *total = data;
  FUZZ_ASSERT(text != NULL || len == 0);
  *total += len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct frc_pkt_reader r;
  frc_error_t err = NULL;
  cleanup_buf struct frc_buf again = { NULL, 0, 0 };
  cleanup_buf struct frc_buf out = { NULL, 0, 0 };
  size_t progress_bytes = 0, consumed = 0;

  /* Packets, as frc_pkt_read gives them, written back. */
  frc_pkt_reader_init(&r, data, size);
  for (;;)
    {
      struct frc_pkt p;
      size_t before = r.pos;
      if (frc_pkt_read(&r, &p, &err) < 0)
        break;
      if (p.kind == FRC_PKT_EOF)
        break;
      FUZZ_ASSERT(r.pos > before && r.pos <= size);
      if (p.kind == FRC_PKT_DATA)
        {
          FUZZ_ASSERT(p.len <= FRC_PKT_DATA_MAX);
          FUZZ_ASSERT(p.data >= (const char *) data && p.data + p.len <= (const char *) data + size);
          FUZZ_ASSERT(frc_pkt_write(&again, p.data, p.len) == 0);
        }
      else if (p.kind == FRC_PKT_FLUSH)
        frc_pkt_flush(&again);
      else if (p.kind == FRC_PKT_DELIM)
        frc_pkt_delim(&again);
      else
        frc_buf_add(&again, "0002", 4);
      consumed = r.pos;
    }
  fuzz_check_error(&err);
  /* Byte for byte, but for the case of the hex digits. */
  FUZZ_ASSERT(again.len == consumed);
  for (size_t i = 0; i < consumed; i++)
    FUZZ_ASSERT(tolower((unsigned char) again.data[i]) == tolower(data[i]));

  /* Lines: "ERR " packets become errors, one trailing newline goes. */
  frc_pkt_reader_init(&r, data, size);
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(&r, &p, &err) < 0 || p.kind == FRC_PKT_EOF)
        break;
      (void) frc_pkt_is(&p, "version 2");
      {
        const char *rest = NULL;
        size_t rest_len = 0;
        if (frc_pkt_has_prefix(&p, "want ", &rest, &rest_len))
          FUZZ_ASSERT(rest + rest_len == p.data + p.len);
      }
    }
  fuzz_check_error(&err);

  /* The side-band, from the start. */
  frc_pkt_reader_init(&r, data, size);
  if (frc_pkt_demux(&r, &out, DEMUX_MAX, progress, &progress_bytes, &err) == 0)
    FUZZ_ASSERT(out.len <= DEMUX_MAX && progress_bytes <= size);
  fuzz_check_error(&err);
  return 0;
}
