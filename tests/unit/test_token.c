/* The FloxHub token: reading it from the secret volume, JWT expiry
 * (lib/token.c). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "spec.h"
#include "token.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-token-XXXXXX";

static void
setup(void)
{
  frc_test_dir_make(dir, "token");
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
}

static void
put(const char *rel, const char *text)
{
  cleanup_free char *p = xasprintf("%s/%s", dir, rel);
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* kubelet's layout: vol/..2026_x/floxhub-token, vol/..data -> ..2026_x,
 * vol/floxhub-token -> ..data/floxhub-token */
static char *
kubelet_volume(const char *token)
{
  char *vol = xasprintf("%s/vol", dir);
  cleanup_free char *ts = xasprintf("%s/..2026_11_23", vol);
  cleanup_free char *data = xasprintf("%s/..data", vol);
  cleanup_free char *link = xasprintf("%s/floxhub-token", vol);
  ck_assert_int_eq(mkdir(vol, 0755), 0);
  ck_assert_int_eq(mkdir(ts, 0755), 0);
  put("vol/..2026_11_23/floxhub-token", token);
  ck_assert_int_eq(symlink("..2026_11_23", data), 0);
  ck_assert_int_eq(symlink("..data/floxhub-token", link), 0);
  return vol;
}

START_TEST(test_kubelet_layout)
{
  cleanup_free char *vol = kubelet_volume("flox_abc123\n");
  cleanup_token char *tok = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_token_read_dir(vol, &tok, &err), 0);
  ck_assert_str_eq(tok, "flox_abc123");
}
END_TEST

START_TEST(test_escape_refused)
{
  cleanup_free char *vol = xasprintf("%s/vol", dir);
  cleanup_free char *link = xasprintf("%s/floxhub-token", vol);
  cleanup_token char *tok = NULL;
  frc_error_t err = NULL;
  put("outside", "secret-of-the-node");
  ck_assert_int_eq(mkdir(vol, 0755), 0);
  ck_assert_int_eq(symlink("../outside", link), 0);
  ck_assert_int_lt(frc_token_read_dir(vol, &tok, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "outside its secret volume"));
  ck_assert_ptr_null(strstr(err->msg, "secret-of-the-node"));
  ck_assert_ptr_null(tok);
  frc_error_release(&err);
  unlink(link);
  ck_assert_int_eq(symlink("/etc/hostname", link), 0);
  ck_assert_int_lt(frc_token_read_dir(vol, &tok, &err), 0);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_absent_and_empty)
{
  cleanup_free char *vol = xasprintf("%s/vol", dir);
  cleanup_token char *tok = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(mkdir(vol, 0755), 0);
  ck_assert_int_eq(frc_token_read_dir(vol, &tok, &err), 0);
  ck_assert_ptr_null(tok);
  put("vol/floxhub-token", " \n");
  ck_assert_int_eq(frc_token_read_dir(vol, &tok, &err), 0);
  ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(test_too_big)
{
  cleanup_free char *vol = xasprintf("%s/vol", dir);
  cleanup_free char *big = xmalloc0(FRC_TOKEN_MAX_BYTES + 10);
  cleanup_token char *tok = NULL;
  frc_error_t err = NULL;
  memset(big, 'a', FRC_TOKEN_MAX_BYTES + 5);
  ck_assert_int_eq(mkdir(vol, 0755), 0);
  put("vol/floxhub-token", big);
  ck_assert_int_lt(frc_token_read_dir(vol, &tok, &err), 0);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_from_spec)
{
  cleanup_free char *vol = kubelet_volume("tok-from-spec");
  cleanup_free char *cfg = xasprintf("{\"mounts\":[{\"destination\":\"/proc\",\"source\":\"proc\"},"
                                     "{\"destination\":\"/var/run/secrets/flox.dev/\",\"type\":\"bind\","
                                     "\"source\":\"%s\",\"options\":[\"rbind\",\"ro\"]}]}",
                                     vol);
  cleanup_token char *tok = NULL;
  struct frc_spec s;
  frc_error_t err = NULL;
  put("config.json", cfg);
  ck_assert_int_eq(frc_spec_load(&s, dir, &err), 0);
  ck_assert_int_eq(frc_token_from_spec(&s, &tok, &err), 0);
  ck_assert_str_eq(tok, "tok-from-spec");
  frc_spec_release(&s);
  frc_token_free(&tok);

  put("config.json", "{\"mounts\":[{\"destination\":\"/var/run/secrets/kubernetes.io/serviceaccount\","
                     "\"source\":\"/x\"}]}");
  ck_assert_int_eq(frc_spec_load(&s, dir, &err), 0);
  ck_assert_int_eq(frc_token_from_spec(&s, &tok, &err), 0);
  ck_assert_ptr_null(tok);
  frc_spec_release(&s);
}
END_TEST

/* A FIFO or a device node a pod planted at the token path is refused
 * without being opened: nothing blocks, no driver runs. */
static void
expect_special_refused(const char *what)
{
  cleanup_free char *vol = xasprintf("%s/vol", dir);
  cleanup_free char *file = xasprintf("%s/floxhub-token", vol);
  cleanup_token char *tok = NULL;
  frc_error_t err = NULL;
  char want[64];

  snprintf(want, sizeof(want), "not a regular file (it is a %s)", what);
  ck_assert_int_lt(frc_token_read_dir(vol, &tok, &err), 0);
  ck_assert_msg(strstr(err->msg, want) != NULL, "%s", err->msg);
  ck_assert_ptr_null(tok);
  frc_error_release(&err);
  /* `doctor --token-file` opened the path without O_NONBLOCK: a FIFO hung. */
  ck_assert_int_lt(frc_token_read_file(file, &tok, &err), 0);
  ck_assert_msg(strstr(err->msg, want) != NULL, "%s", err->msg);
  frc_error_release(&err);
  ck_assert_int_eq(unlink(file), 0);
}

START_TEST(test_special_files_refused)
{
  cleanup_free char *vol = xasprintf("%s/vol", dir);
  cleanup_free char *file = xasprintf("%s/floxhub-token", vol);
  ck_assert_int_eq(mkdir(vol, 0755), 0);
  ck_assert_int_eq(mkfifo(file, 0644), 0);
  expect_special_refused("FIFO");
  /* /dev/null's numbers: opening it would succeed, so only the message tells. */
  ck_assert_int_eq(mknod(file, S_IFCHR | 0644, makedev(1, 3)), 0);
  expect_special_refused("character device");
  /* A major no driver has: open() failed with ENXIO before the check ran. */
  ck_assert_int_eq(mknod(file, S_IFCHR | 0644, makedev(4095, 0)), 0);
  expect_special_refused("character device");
  ck_assert_int_eq(mknod(file, S_IFBLK | 0644, makedev(4095, 0)), 0);
  expect_special_refused("block device");
}
END_TEST

/* header {"alg":"none"} . payload . sig */
static char *
jwt(const char *payload_b64url)
{
  return xasprintf("eyJhbGciOiJub25lIn0.%s.c2ln", payload_b64url);
}

START_TEST(test_jwt_expiry)
{
  /* {"exp":1700000000,"sub":"x"} */
  cleanup_free char *expired = jwt("eyJleHAiOjE3MDAwMDAwMDAsInN1YiI6IngifQ");
  /* {"exp":4102444800} (2100) */
  cleanup_free char *valid = jwt("eyJleHAiOjQxMDI0NDQ4MDB9");
  frc_error_t err = NULL;

  ck_assert_int_eq(frc_token_check(valid, 1795000000, &err), 0);
  ck_assert_int_lt(frc_token_check(expired, 1795000000, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "expired at 2023-11-14T22:13:20Z"));
  ck_assert_ptr_nonnull(strstr(err->msg, "flox auth token | kubectl create secret"));
  ck_assert_ptr_null(strstr(err->msg, "eyJ"));
  ck_assert_int_eq(err->code, FRC_ECODE_AUTH);
  frc_error_release(&err);
  ck_assert_int_eq(frc_token_check("flox_opaque.token.value", 1795000000, &err), 0);
  ck_assert_int_eq(frc_token_check("opaque", 1795000000, &err), 0);
  ck_assert_int_lt(frc_token_check("eyJhbGciOiJub25lIn0.!!!.x", 1795000000, &err), 0);
  frc_error_release(&err);
  ck_assert_int_lt(frc_token_check("has space", 1795000000, &err), 0);
  frc_error_release(&err);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("token");
  TCase *tc = tcase_create("token");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_kubelet_layout);
  tcase_add_test(tc, test_escape_refused);
  tcase_add_test(tc, test_absent_and_empty);
  tcase_add_test(tc, test_too_big);
  tcase_add_test(tc, test_from_spec);
  tcase_add_test(tc, test_special_files_refused);
  tcase_add_test(tc, test_jwt_expiry);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
