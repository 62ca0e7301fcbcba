/* JSON parsing (lib/json.c): the bounds the header promises. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* Found by tests/fuzz/fuzz_json.c: yajl read up to a NUL, not len bytes, so
 * a buffer without a NUL after it was read past its end, and bytes after len
 * were parsed. */
START_TEST(test_parse_exactly_len)
{
  cleanup_json yajl_val v = NULL;
  frc_error_t err = NULL;
  char *exact = malloc(2); /* no NUL after it: ASan sees a read past it */
  memcpy(exact, "{}", 2);
  ck_assert_int_eq(frc_json_parse(exact, 2, &v, &err), 0);
  ck_assert_int_eq(v->type, yajl_t_object);
  free(exact);
  frc_json_freep(&v);
  ck_assert_int_eq(frc_json_parse("{} trailing garbage", 2, &v, &err), 0);
  frc_json_freep(&v);
  ck_assert_int_eq(frc_json_parse("[1,2] x", 3, &v, &err), -1); /* "[1," */
  frc_error_release(&err);
}
END_TEST

/* yajl quotes the input in its message: control bytes come out escaped. */
START_TEST(test_error_escaped)
{
  cleanup_json yajl_val v = NULL;
  frc_error_t err = NULL;
  const char *text = "{\"a\":\x01\x02}";
  ck_assert_int_eq(frc_json_parse(text, strlen(text), &v, &err), -1);
  for (const char *c = err->msg; *c; c++)
    ck_assert_msg((unsigned char) *c >= 0x20, "control byte in: %s", err->msg);
  frc_error_release(&err);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("json");
  TCase *tc = tcase_create("parse");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_parse_exactly_len);
  tcase_add_test(tc, test_error_escaped);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
