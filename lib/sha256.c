/* SHA-256 (FIPS 180-4), in-tree so that a warm create, which hashes cache
 * keys, never loads libcrypto (1.2 ms of dlopen on every call).  On x86-64
 * CPUs with the SHA extensions (SHA-NI: Intel since Goldmont/Ice Lake, every
 * AMD Zen) the blocks go through those instructions: a 150 KiB lockfile
 * hashes in ~0.06 ms instead of ~0.47 ms, on every warm create.  Both paths
 * are checked against the standard test vectors and libcrypto in
 * tests/unit/test_dl.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#if defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
#endif
#endif
#define FRC_SHA_NI 1
#endif

#include "dl.h"

static const uint32_t k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
block(uint32_t h[8], const unsigned char *p)
{
  uint32_t w[64], a, b, c, d, e, f, g, hh;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 | (uint32_t) p[4 * i + 2] << 8
           | p[4 * i + 3];
  for (int i = 16; i < 64; i++)
    {
      uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
  a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++)
    {
      uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void
blocks_portable(uint32_t h[8], const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    block(h, p + 64 * i);
}

#ifdef FRC_SHA_NI
/* Four rounds per step with the message schedule kept in four registers,
 * as in Intel's SHA extensions reference: the state is held as ABEF and
 * CDGH, the words byte-swapped on load. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
blocks_sha_ni(uint32_t h[8], const unsigned char *p, size_t n)
{
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i_u *) &h[0]), 0xB1); /* CDAB */
  __m128i st1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i_u *) &h[4]), 0x1B); /* EFGH */
  __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
  st1 = _mm_blend_epi16(st1, tmp, 0xF0); /* CDGH */

  for (; n > 0; n--, p += 64)
    {
      __m128i save0 = st0, save1 = st1, w[4];
      for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i_u *) (p + 16 * i)), swap);
      for (int r = 0; r < 16; r++)
        {
          __m128i m = _mm_add_epi32(w[r & 3], _mm_loadu_si128((const __m128i_u *) &k[4 * r]));
          st1 = _mm_sha256rnds2_epu32(st1, st0, m);
          st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(m, 0x0E));
          if (r < 12)
            {
              /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at once */
              __m128i t = _mm_sha256msg1_epu32(w[r & 3], w[(r + 1) & 3]);
              t = _mm_add_epi32(t, _mm_alignr_epi8(w[(r + 3) & 3], w[(r + 2) & 3], 4));
              w[r & 3] = _mm_sha256msg2_epu32(t, w[(r + 3) & 3]);
            }
        }
      st0 = _mm_add_epi32(st0, save0);
      st1 = _mm_add_epi32(st1, save1);
    }
  tmp = _mm_shuffle_epi32(st0, 0x1B); /* FEBA */
  st1 = _mm_shuffle_epi32(st1, 0xB1); /* DCHG */
  _mm_storeu_si128((__m128i_u *) &h[0], _mm_blend_epi16(tmp, st1, 0xF0)); /* A B C D */
  _mm_storeu_si128((__m128i_u *) &h[4], _mm_alignr_epi8(st1, tmp, 8)); /* E F G H */
}

/* Asked once per process; the answer cannot change while it runs.  glibc
 * has asked the CPU at start-up already: its answer costs nothing, where
 * two cpuid leave a VM (~19 µs on the benchmark machine, every warm create
 * paid them at its first hash). */
static bool
have_sha_ni(void)
{
  static int known = -1;
  if (known < 0)
    {
#if defined(__GLIBC__) && defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#define FRC_SHA_NI_GLIBC 1
      known = CPU_FEATURE_ACTIVE(SSSE3) && CPU_FEATURE_ACTIVE(SSE4_1) && CPU_FEATURE_ACTIVE(SHA);
#endif
#endif
#ifndef FRC_SHA_NI_GLIBC
      unsigned a, b, c, d;
      known = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1)
              && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
#endif
    }
  return known;
}
#endif

static void
digest(const void *data, size_t len, unsigned char out[32],
       void (*blocks)(uint32_t h[8], const unsigned char *p, size_t n))
{
  uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  const unsigned char *p = data;
  unsigned char tail[128] = { 0 };
  size_t full = len / 64 * 64, rest = len - full, tail_len;
  uint64_t bits = (uint64_t) len * 8;

  blocks(h, p, full / 64);
  memcpy(tail, p + full, rest);
  tail[rest] = 0x80;
  tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  for (int i = 0; i < 8; i++)
    tail[tail_len - 1 - i] = (unsigned char) (bits >> (8 * i));
  blocks(h, tail, tail_len / 64);
  for (int i = 0; i < 8; i++)
    {
      out[4 * i] = (unsigned char) (h[i] >> 24);
      out[4 * i + 1] = (unsigned char) (h[i] >> 16);
      out[4 * i + 2] = (unsigned char) (h[i] >> 8);
      out[4 * i + 3] = (unsigned char) h[i];
    }
}

void
frc_sha256_portable(const void *data, size_t len, unsigned char out[32])
{
  digest(data, len, out, blocks_portable);
}

int
frc_sha256(const void *data, size_t len, unsigned char out[32], frc_error_t *err)
{
  (void) err;
#ifdef FRC_SHA_NI
  if (have_sha_ni())
    {
      digest(data, len, out, blocks_sha_ni);
      return 0;
    }
#endif
  digest(data, len, out, blocks_portable);
  return 0;
}
