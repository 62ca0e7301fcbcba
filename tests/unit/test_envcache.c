/* FLOX_ENV_CACHE directories on the node (lib/envcache.c): per pod sandbox
 * and environment, or per container; owner; release; hostile sandbox ids. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envcache.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-envcache-XXXXXX";
static struct frc_config cfg;

static void
setup(void)
{
  strcpy(dir, "/tmp/frc-test-envcache-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  memset(&cfg, 0, sizeof(cfg));
  cfg.state_dir = dir;
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_sandbox)
{
  struct frc_env_cache_request r = { .config = &cfg, .sandbox_id = "sb1", .runtime_root = "/run/x",
                                     .container_key = "k-c1", .owner = "acme", .name = "hello",
                                     .uid = 1000, .gid = 1001 };
  cleanup_free char *d = NULL, *d2 = NULL, *root = NULL, *want = xasprintf("%s/env-cache/sandbox/sb1/acme/hello", dir);
  frc_error_t err = NULL;
  struct stat st;

  ck_assert_msg(frc_env_cache_prepare(&r, &d, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(d, want);
  ck_assert_int_eq(stat(d, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  if (geteuid() == 0) /* given to the container's user */
    {
      ck_assert_int_eq(st.st_uid, 1000);
      ck_assert_int_eq(st.st_gid, 1001);
    }
  root = frc_env_cache_sandbox_root(&cfg, "sb1");
  ck_assert_str_eq(root, "/run/x");
  /* a restarted container (another id, another user) finds it as it was */
  r.container_key = "k-c2";
  r.uid = 2000;
  ck_assert_int_eq(frc_env_cache_prepare(&r, &d2, &err), 0);
  ck_assert_str_eq(d2, d);
  ck_assert_int_eq(stat(d, &st), 0);
  ck_assert_int_eq(st.st_uid, geteuid() == 0 ? 1000 : geteuid());
  ck_assert(frc_env_cache_sandbox_exists(&cfg, "sb1"));
  ck_assert_int_eq(frc_env_cache_release_sandbox(&cfg, "sb1", &err), 0);
  ck_assert(!frc_env_cache_sandbox_exists(&cfg, "sb1"));
  ck_assert_int_eq(access(d, F_OK), -1);
}
END_TEST

START_TEST(test_container)
{
  struct frc_env_cache_request r = { .config = &cfg, .container_key = "abc-c1", .owner = "acme",
                                     .name = "hello" };
  cleanup_free char *d = NULL, *want = xasprintf("%s/env-cache/container/abc-c1/acme/hello", dir);
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_env_cache_prepare(&r, &d, &err), 0);
  ck_assert_str_eq(d, want);
  ck_assert_int_eq(frc_env_cache_release_container(&cfg, "abc-c1", &err), 0);
  ck_assert_int_eq(access(d, F_OK), -1);
}
END_TEST

/* The sandbox id comes from an annotation: never a path that leaves env-cache. */
START_TEST(test_hostile_sandbox_id)
{
  static const char *const ids[] = { "..", "../../etc", "a/b", "", "." };
  frc_error_t err = NULL;
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
    {
      struct frc_env_cache_request r = { .config = &cfg, .sandbox_id = ids[i], .container_key = "k",
                                         .owner = "acme", .name = "hello" };
      cleanup_free char *d = NULL;
      ck_assert_int_lt(frc_env_cache_prepare(&r, &d, &err), 0);
      frc_error_release(&err);
      ck_assert(!frc_env_cache_sandbox_exists(&cfg, ids[i]));
      ck_assert_int_eq(frc_env_cache_release_sandbox(&cfg, ids[i], &err), 0);
    }
  ck_assert_int_eq(access(dir, F_OK), 0);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("envcache");
  TCase *tc = tcase_create("envcache");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_sandbox);
  tcase_add_test(tc, test_container);
  tcase_add_test(tc, test_hostile_sandbox_id);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
