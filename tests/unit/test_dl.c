/* The digests (lib/sha256.c, lib/dl.c): SHA-256 against the FIPS 180-4
 * vectors and against libcrypto on many lengths, with the CPU's SHA
 * instructions where it has them and without; SHA-1 through libcrypto. */
#include <check.h>
#include <openssl/evp.h>
#include <string.h>

#include "dl.h"
#include "util.h"

static void
hex256(const void *data, size_t len, char out[65])
{
  unsigned char d[32];
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_sha256(data, len, d, &err), 0);
  frc_hex(d, 32, out);
}

START_TEST(test_vectors)
{
  char h[65];
  cleanup_free char *million = xmalloc0(1000001);
  hex256("", 0, h);
  ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hex256("abc", 3, h);
  ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hex256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
  ck_assert_str_eq(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  memset(million, 'a', 1000000);
  hex256(million, 1000000, h);
  ck_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_against_libcrypto)
{
  const struct frc_crypto_api *c;
  frc_error_t err = NULL;
  unsigned char buf[300];
  c = frc_dl_crypto(&err);
  ck_assert_ptr_nonnull(c);
  for (size_t i = 0; i < sizeof(buf); i++)
    buf[i] = (unsigned char) (i * 7 + 3);
  for (size_t len = 0; len <= sizeof(buf); len++)
    {
      unsigned char mine[32], theirs[32];
      unsigned int n = 0;
      ck_assert_int_eq(frc_sha256(buf, len, mine, &err), 0);
      ck_assert(c->EVP_Digest(buf, len, theirs, &n, c->EVP_sha256(), NULL));
      ck_assert_msg(memcmp(mine, theirs, 32) == 0, "length %zu", len);
    }
}
END_TEST

/* The portable blocks too, and both on inputs of many blocks (a lockfile):
 * on a CPU with SHA-NI test_against_libcrypto checks only the fast path. */
START_TEST(test_portable_and_accelerated)
{
  const struct frc_crypto_api *c;
  frc_error_t err = NULL;
  size_t big = 150 * 1024 + 37;
  cleanup_free unsigned char *buf = xmalloc0(big);
  static const size_t lens[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096 };
  c = frc_dl_crypto(&err);
  ck_assert_ptr_nonnull(c);
  for (size_t i = 0; i < big; i++)
    buf[i] = (unsigned char) ((i * 2654435761u) >> 13);
  for (size_t j = 0; j <= sizeof(lens) / sizeof(lens[0]); j++)
    {
      size_t len = j < sizeof(lens) / sizeof(lens[0]) ? lens[j] : big;
      unsigned char fast[32], portable[32], theirs[32];
      unsigned int n = 0;
      ck_assert_int_eq(frc_sha256(buf, len, fast, &err), 0);
      frc_sha256_portable(buf, len, portable);
      ck_assert(c->EVP_Digest(buf, len, theirs, &n, c->EVP_sha256(), NULL));
      ck_assert_msg(memcmp(fast, theirs, 32) == 0, "length %zu", len);
      ck_assert_msg(memcmp(portable, theirs, 32) == 0, "portable, length %zu", len);
    }
}
END_TEST

START_TEST(test_sha1)
{
  unsigned char d[20];
  char h[41];
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_sha1("abc", 3, d, &err), 0);
  frc_hex(d, 20, h);
  ck_assert_str_eq(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("dl");
  TCase *tc = tcase_create("digests");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, test_vectors);
  tcase_add_test(tc, test_against_libcrypto);
  tcase_add_test(tc, test_portable_and_accelerated);
  tcase_add_test(tc, test_sha1);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
