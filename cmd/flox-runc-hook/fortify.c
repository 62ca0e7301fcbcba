/* fortify.c - glibc's _FORTIFY_SOURCE entry points that Debian's
 * libyajl_s.a (built against glibc, fortified) calls, for its static link
 * with musl, which has none: each checks the destination's size as glibc's
 * does and aborts on an overflow. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__memcpy_chk(void *dst, const void *src, size_t len, size_t dstlen);
int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...);
int __sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...);

void *
__memcpy_chk(void *dst, const void *src, size_t len, size_t dstlen)
{
  if (len > dstlen)
    abort();
  return memcpy(dst, src, len);
}

int
__snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (maxlen > slen)
    abort();
  va_start(ap, fmt);
  n = vsnprintf(s, maxlen, fmt, ap);
  va_end(ap);
  return n;
}

int
__sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (slen == 0)
    abort();
  va_start(ap, fmt);
  n = vsnprintf(s, slen, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t) n >= slen)
    abort();
  return n;
}
