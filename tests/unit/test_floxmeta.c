/* FloxHub metadata.json generations (lib/floxmeta.c). */
#include <check.h>
#include <string.h>

#include "floxmeta.h"
#include "util.h"

static int
parse(const char *json, struct frc_generations *g, frc_error_t *err)
{
  return frc_floxmeta_parse(json, strlen(json), g, err);
}

START_TEST(test_v2_live_is_last_entry)
{
  struct frc_generations g;
  frc_error_t err = NULL;
  cleanup_free char *desc = NULL;
  ck_assert_int_eq(
      parse("{\"version\":2,\"total_generations\":3,\"history\":["
            "{\"kind\":\"initialize\",\"current_generation\":\"1\",\"timestamp\":1},"
            "{\"kind\":\"install\",\"current_generation\":\"2\",\"previous_generation\":\"1\"},"
            "{\"kind\":\"edit\",\"current_generation\":\"3\",\"previous_generation\":\"2\"},"
            "{\"kind\":\"switch_generation\",\"current_generation\":\"1\",\"previous_generation\":\"3\"}]}",
            &g, &err),
      0);
  ck_assert_int_eq(g.version, 2);
  ck_assert_uint_eq(g.live, 1);
  ck_assert_uint_eq(g.n, 3);
  ck_assert(frc_generations_has(&g, 3));
  ck_assert(!frc_generations_has(&g, 4));
  desc = frc_generations_describe(&g);
  ck_assert_str_eq(desc, "available generations: 1-3; the live one is 1");
  frc_generations_release(&g);
}
END_TEST

START_TEST(test_v1)
{
  struct frc_generations g;
  frc_error_t err = NULL;
  cleanup_free char *desc = NULL;
  ck_assert_int_eq(parse("{\"version\":1,\"currentGen\":\"2\",\"generations\":{\"1\":{},\"2\":{},"
                         "\"5\":{}}}",
                         &g, &err),
                   0);
  ck_assert_uint_eq(g.live, 2);
  ck_assert_uint_eq(g.n, 3);
  desc = frc_generations_describe(&g);
  ck_assert_str_eq(desc, "available generations: 1-2, 5; the live one is 2");
  frc_generations_release(&g);
}
END_TEST

static const char *const bad[] = {
  "{}",
  "{\"version\":3,\"history\":[]}",
  "{\"version\":2,\"history\":[]}",
  "{\"version\":2,\"history\":[{\"current_generation\":\"0\"}]}",
  "{\"version\":2,\"history\":[{\"current_generation\":\"../1\"}]}",
  "{\"version\":2,\"history\":[{\"kind\":\"install\"}]}",
  "{\"version\":1,\"currentGen\":\"x\"}",
  "{\"version\":1,\"currentGen\":\"1\",\"generations\":{\"a\":{}}}",
  "not json",
  "[]",
};

START_TEST(test_bad)
{
  struct frc_generations g;
  frc_error_t err = NULL;
  ck_assert_int_lt(parse(bad[_i], &g, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "metadata.json"));
  frc_error_release(&err);
  frc_generations_release(&g);
}
END_TEST

START_TEST(test_generation_parse)
{
  ck_assert_uint_eq(frc_generation_parse("1"), 1);
  ck_assert_uint_eq(frc_generation_parse("999999999"), 999999999);
  ck_assert_uint_eq(frc_generation_parse("1000000000"), 0);
  ck_assert_uint_eq(frc_generation_parse("01"), 0);
  ck_assert_uint_eq(frc_generation_parse(""), 0);
  ck_assert_uint_eq(frc_generation_parse("-1"), 0);
  ck_assert_uint_eq(frc_generation_parse(NULL), 0);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("floxmeta");
  TCase *tc = tcase_create("floxmeta");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, test_v2_live_is_last_entry);
  tcase_add_test(tc, test_v1);
  tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
  tcase_add_test(tc, test_generation_parse);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
