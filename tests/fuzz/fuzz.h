/* fuzz.h - what the libFuzzer harnesses of tests/fuzz share.
 *
 * Each harness calls the library's public functions on the fuzzer's bytes and
 * checks the properties every caller relies on: an error is one line of
 * printable text of bounded length (messages quote hostile input escaped),
 * and what a parser accepted obeys the bounds its header promises.  A broken
 * property aborts, which libFuzzer reports as a crash with its input.
 */
#ifndef FRC_FUZZ_H
#define FRC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                          \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
        {                                                                                          \
          fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond);              \
          abort();                                                                                 \
        }                                                                                          \
    }                                                                                              \
  while (0)

/* Messages may be long for lists, never unbounded. */
#define FUZZ_MESSAGE_MAX 16384

/* Checks (when set) and releases *err: a message, one line, printable. */
static inline void
fuzz_check_error(frc_error_t *err)
{
  if (*err == NULL)
    return;
  FUZZ_ASSERT((*err)->msg != NULL);
  {
    size_t n = strlen((*err)->msg);
    if (n > FUZZ_MESSAGE_MAX)
      {
        fprintf(stderr, "message of %zu bytes: %.200s...\n", n, (*err)->msg);
        FUZZ_ASSERT(n <= FUZZ_MESSAGE_MAX);
      }
    for (size_t i = 0; i < n; i++)
      {
        unsigned char c = (unsigned char) (*err)->msg[i];
        if (c < 0x20 || c == 0x7f)
          {
            fprintf(stderr, "control byte 0x%02x at %zu of: %s\n", c, i, (*err)->msg);
            FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
          }
      }
  }
  frc_error_release(err);
}

/* The input as a NUL-terminated string (cut at its first NUL). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
  return xstrndup((const char *) data, size);
}

#endif
