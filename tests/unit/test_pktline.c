/* pkt-line framing and side-band demultiplexing (lib/pktline.c). */
#include <check.h>
#include <string.h>

#include "pktline.h"
#include "util.h"

#define S(lit) lit, sizeof(lit) - 1

static int
read_one(const char *buf, size_t len, struct frc_pkt *p, frc_error_t *err)
{
  struct frc_pkt_reader r;
  frc_pkt_reader_init(&r, buf, len);
  return frc_pkt_read(&r, p, err);
}

START_TEST(test_read_sequence)
{
  static const char in[] = "000eversion 2\n0000000100020004000aabcdef";
  struct frc_pkt_reader r;
  struct frc_pkt p;
  frc_error_t err = NULL;

  frc_pkt_reader_init(&r, in, sizeof(in) - 1);
  ck_assert_int_eq(frc_pkt_read_line(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_DATA);
  ck_assert(frc_pkt_is(&p, "version 2"));
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_FLUSH);
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_DELIM);
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_END);
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_DATA);
  ck_assert_uint_eq(p.len, 0);
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_DATA);
  ck_assert_uint_eq(p.len, 6);
  ck_assert(memcmp(p.data, "abcdef", 6) == 0);
  ck_assert_int_eq(frc_pkt_read(&r, &p, &err), 0);
  ck_assert_int_eq(p.kind, FRC_PKT_EOF);
  ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_uppercase_hex_and_prefix)
{
  struct frc_pkt p;
  const char *rest;
  size_t rest_len;
  frc_error_t err = NULL;
  ck_assert_int_eq(read_one(S("000Cwant abcd"), &p, &err), 0);
  ck_assert(frc_pkt_has_prefix(&p, "want ", &rest, &rest_len));
  ck_assert_uint_eq(rest_len, 3);
  ck_assert(memcmp(rest, "abc", 3) == 0);
  ck_assert(!frc_pkt_has_prefix(&p, "have ", NULL, NULL));
}
END_TEST

static void
expect_bad(const char *buf, size_t len, const char *fragment)
{
  struct frc_pkt p;
  cleanup_error frc_error_t err = NULL;
  ck_assert_int_eq(read_one(buf, len, &p, &err), -1);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(err->code, FRC_ECODE_SERVER);
  ck_assert_msg(strstr(err->msg, fragment) != NULL, "message: %s", err->msg);
}

START_TEST(test_corrupt)
{
  expect_bad(S("00"), "truncated pkt-line length");
  expect_bad(S("0x10abcdefghijkl"), "bad pkt-line length");
  expect_bad(S("00g5a"), "bad pkt-line length");
  expect_bad(S("-001a"), "bad pkt-line length");
  expect_bad(S("0003"), "invalid pkt-line length 3");
  expect_bad(S("0010short"), "truncated pkt-line");
  expect_bad(S("fff1"), "longer than 65520");
  expect_bad(S("ffff"), "longer than 65520");
}
END_TEST

START_TEST(test_max_length)
{
  size_t n = FRC_PKT_MAX;
  cleanup_free char *buf = xmalloc0(n);
  struct frc_pkt p;
  frc_error_t err = NULL;
  memcpy(buf, "fff0", 4);
  memset(buf + 4, 'x', n - 4);
  ck_assert_int_eq(read_one(buf, n, &p, &err), 0);
  ck_assert_uint_eq(p.len, FRC_PKT_DATA_MAX);
  ck_assert_int_eq(read_one(buf, n - 1, &p, &err), -1);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_err_line)
{
  static const char in[] = "0024ERR upload-pack: not our ref \x01\xff\n";
  struct frc_pkt_reader r;
  struct frc_pkt p;
  cleanup_error frc_error_t err = NULL;
  frc_pkt_reader_init(&r, in, sizeof(in) - 1);
  ck_assert_int_eq(frc_pkt_read_line(&r, &p, &err), -1);
  ck_assert_int_eq(err->code, FRC_ECODE_SERVER);
  ck_assert_str_eq(err->msg, "FloxHub git service error: upload-pack: not our ref \\x01\\xff");
}
END_TEST

START_TEST(test_writer)
{
  cleanup_buf struct frc_buf b = { NULL, 0, 0 };
  cleanup_free char *big = xmalloc0(FRC_PKT_DATA_MAX + 2);
  ck_assert_int_eq(frc_pkt_writef(&b, "command=%s\n", "ls-refs"), 0);
  frc_pkt_delim(&b);
  ck_assert_int_eq(frc_pkt_write(&b, "peel", 4), 0);
  frc_pkt_flush(&b);
  ck_assert_uint_eq(b.len, strlen("0014command=ls-refs\n00010008peel0000"));
  ck_assert(memcmp(b.data, "0014command=ls-refs\n00010008peel0000", b.len) == 0);
  ck_assert_int_eq(frc_pkt_write(&b, big, FRC_PKT_DATA_MAX + 1), -1);
  ck_assert_int_eq(frc_pkt_write(&b, big, FRC_PKT_DATA_MAX), 0);
  ck_assert(memcmp(b.data + strlen("0014command=ls-refs\n00010008peel0000"), "fff0", 4) == 0);
}
END_TEST

/* Side-band: builds a stream of banded packets. */
static void
band(struct frc_buf *b, int n, const char *data, size_t len)
{
  cleanup_free char *pkt = xmalloc0(len + 1);
  pkt[0] = (char) n;
  memcpy(pkt + 1, data, len);
  ck_assert_int_eq(frc_pkt_write(b, pkt, len + 1), 0);
}

struct progress_seen
{
  int calls;
  char text[256];
};

static void
on_progress(const char *text, size_t len, void *data)
{
  struct progress_seen *s = data;
  size_t have = strlen(s->text);
  s->calls++;
  if (have + len < sizeof(s->text))
    memcpy(s->text + have, text, len);
}

START_TEST(test_demux)
{
  cleanup_buf struct frc_buf in = { NULL, 0, 0 };
  cleanup_buf struct frc_buf out = { NULL, 0, 0 };
  struct progress_seen seen = { 0, { 0 } };
  struct frc_pkt_reader r;
  frc_error_t err = NULL;

  band(&in, 1, S("PACK"));
  band(&in, 2, S("Counting objects: 3\r"));
  band(&in, 1, S("\0\0\0\2"));
  frc_pkt_flush(&in);
  frc_buf_add(&in, "trailing", 8);
  frc_pkt_reader_init(&r, in.data, in.len);
  ck_assert_int_eq(frc_pkt_demux(&r, &out, 100, on_progress, &seen, &err), 0);
  ck_assert_uint_eq(out.len, 8);
  ck_assert(memcmp(out.data, "PACK\0\0\0\2", 8) == 0);
  ck_assert_int_eq(seen.calls, 1);
  ck_assert_str_eq(seen.text, "Counting objects: 3\r");
  /* It stops right after the flush. */
  ck_assert_uint_eq(r.len - r.pos, 8);
}
END_TEST

static void
demux_fails(struct frc_buf *in, size_t max, int code, const char *msg)
{
  cleanup_buf struct frc_buf out = { NULL, 0, 0 };
  cleanup_error frc_error_t err = NULL;
  struct frc_pkt_reader r;
  frc_pkt_reader_init(&r, in->data, in->len);
  ck_assert_int_eq(frc_pkt_demux(&r, &out, max, NULL, NULL, &err), -1);
  ck_assert_int_eq(err->code, code);
  ck_assert_msg(strstr(err->msg, msg) != NULL, "message: %s", err->msg);
}

START_TEST(test_demux_band3)
{
  cleanup_buf struct frc_buf in = { NULL, 0, 0 };
  cleanup_buf struct frc_buf out = { NULL, 0, 0 };
  cleanup_error frc_error_t err = NULL;
  struct frc_pkt_reader r;
  band(&in, 1, S("PACK"));
  band(&in, 3, S("fatal: pack-objects died \"badly\"\n"));
  frc_pkt_flush(&in);
  frc_pkt_reader_init(&r, in.data, in.len);
  ck_assert_int_eq(frc_pkt_demux(&r, &out, 100, NULL, NULL, &err), -1);
  ck_assert_int_eq(err->code, FRC_ECODE_SERVER);
  ck_assert_str_eq(err->msg, "FloxHub git service error: fatal: pack-objects died \\\"badly\\\"");
}
END_TEST

START_TEST(test_demux_errors)
{
  cleanup_buf struct frc_buf a = { NULL, 0, 0 };
  cleanup_buf struct frc_buf b = { NULL, 0, 0 };
  cleanup_buf struct frc_buf c = { NULL, 0, 0 };
  cleanup_buf struct frc_buf d = { NULL, 0, 0 };
  cleanup_buf struct frc_buf e = { NULL, 0, 0 };
  cleanup_buf struct frc_buf f = { NULL, 0, 0 };

  /* Over the bound. */
  band(&a, 1, S("0123456789"));
  band(&a, 1, S("0123456789"));
  frc_pkt_flush(&a);
  demux_fails(&a, 15, FRC_ECODE_TOO_BIG, "more than 15 bytes");
  /* Exactly the bound is fine. */
  {
    cleanup_buf struct frc_buf out = { NULL, 0, 0 };
    frc_error_t err = NULL;
    struct frc_pkt_reader r;
    frc_pkt_reader_init(&r, a.data, a.len);
    ck_assert_int_eq(frc_pkt_demux(&r, &out, 20, NULL, NULL, &err), 0);
  }
  /* No flush at the end: cut. */
  band(&b, 1, S("PACK"));
  demux_fails(&b, 100, FRC_ECODE_SERVER, "without a flush");
  /* Unknown band. */
  band(&c, 4, S("x"));
  frc_pkt_flush(&c);
  demux_fails(&c, 100, FRC_ECODE_SERVER, "unknown side-band");
  /* Empty packet. */
  frc_pkt_write(&d, "", 0);
  frc_pkt_flush(&d);
  demux_fails(&d, 100, FRC_ECODE_SERVER, "without a band");
  /* ERR packet in place of a band. */
  frc_pkt_writef(&e, "ERR access denied\n");
  demux_fails(&e, 100, FRC_ECODE_SERVER, "FloxHub git service error: access denied");
  /* A packet cut in the middle. */
  band(&f, 1, S("PACKDATA"));
  f.len -= 3;
  demux_fails(&f, 100, FRC_ECODE_SERVER, "truncated pkt-line");
}
END_TEST

static Suite *
suite(void)
{
  Suite *s = suite_create("pktline");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_read_sequence);
  tcase_add_test(tc, test_uppercase_hex_and_prefix);
  tcase_add_test(tc, test_corrupt);
  tcase_add_test(tc, test_max_length);
  tcase_add_test(tc, test_err_line);
  tcase_add_test(tc, test_writer);
  tcase_add_test(tc, test_demux);
  tcase_add_test(tc, test_demux_band3);
  tcase_add_test(tc, test_demux_errors);
  suite_add_tcase(s, tc);
  return s;
}

int
main(void)
{
  SRunner *sr = srunner_create(suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
