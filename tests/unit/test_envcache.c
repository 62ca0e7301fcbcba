/* FLOX_ENV_CACHE directories on the node (lib/envcache.c): per pod sandbox
 * and environment, or per container; owner; release; hostile sandbox ids. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envcache.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-envcache-XXXXXX";
static struct frc_config cfg;

static void
setup(void)
{
  frc_test_dir_make(dir, "envcache");
  memset(&cfg, 0, sizeof(cfg));
  cfg.state_dir = dir;
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
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

/* an owner named like the sandbox's runtime-root file, before or after
 * another environment of the pod: both get their directories, and the
 * sandbox keeps its runtime root; a sandbox an older release made (the
 * file without the dot) still names its root */
START_TEST(test_sandbox_owner_names)
{
  struct frc_env_cache_request r = { .config = &cfg, .sandbox_id = "sb2", .runtime_root = "/run/y",
                                     .container_key = "k-c1", .owner = "acme", .name = "hello" };
  cleanup_free char *legacy_dir = xasprintf("%s/env-cache/sandbox/sb4", dir);
  cleanup_free char *legacy = xasprintf("%s/runtime-root", legacy_dir);
  frc_error_t err = NULL;
  const char *const sandboxes[] = { "sb2", "sb3" };

  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *a = NULL, *b = NULL, *root = NULL;
      r.sandbox_id = sandboxes[i];
      r.owner = i == 0 ? "acme" : "runtime-root";
      ck_assert_msg(frc_env_cache_prepare(&r, &a, &err) == 0, "%s", err ? err->msg : "");
      r.owner = i == 0 ? "runtime-root" : "acme";
      ck_assert_msg(frc_env_cache_prepare(&r, &b, &err) == 0, "%s", err ? err->msg : "");
      ck_assert_str_ne(a, b);
      root = frc_env_cache_sandbox_root(&cfg, sandboxes[i]);
      ck_assert_ptr_nonnull(root);
      ck_assert_str_eq(root, "/run/y");
    }
  ck_assert_int_eq(frc_mkdir_p(legacy_dir, 0700, &err), 0);
  ck_assert_int_eq(write_file_replace(legacy, "/run/old", 8, 0600, &err), 0);
  {
    cleanup_free char *root = frc_env_cache_sandbox_root(&cfg, "sb4");
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(root, "/run/old");
  }
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

/* pip.ini is written as root into a directory the container's user can
 * write: a link planted there, even swapped in while we write (the race a
 * container of the pod can run), must never make root chown or chmod its
 * target. */
START_TEST(test_write_never_follows)
{
  struct frc_env_cache_request r = { .config = &cfg, .sandbox_id = "sb1", .container_key = "k",
                                     .owner = "acme", .name = "hello", .uid = 1000, .gid = 1001 };
  cleanup_free char *d = NULL, *target = xasprintf("%s/node-secret", dir);
  cleanup_free char *ini = NULL, *x = NULL, *text = NULL;
  frc_error_t err = NULL;
  struct stat st;
  pid_t racer;

  ck_assert_int_eq(frc_env_cache_prepare(&r, &d, &err), 0);
  ck_assert_int_eq(write_file_atomic(target, "secret", 6, 0600, &err), 0);
  ini = xasprintf("%s/pip.ini", d);
  x = xasprintf("%s/x", d);
  ck_assert_int_eq(symlink(target, ini), 0);
  racer = fork();
  ck_assert_int_ge(racer, 0);
  if (racer == 0)
    for (;;) /* ln -s target x && mv -T x pip.ini */
      {
        unlink(x);
        if (symlink(target, x) == 0)
          rename(x, ini);
      }
  for (int i = 0; i < 1500; i++)
    {
      frc_error_t e = NULL;
      if (frc_env_cache_write(d, "pip.ini", "[global]\n", 9, 0644, 4242, 4343, &e) < 0)
        frc_error_release(&e); /* losing the race is fine, following the link is not */
    }
  kill(racer, SIGKILL);
  waitpid(racer, NULL, 0);
  ck_assert_int_eq(stat(target, &st), 0);
  ck_assert_int_eq(st.st_uid, geteuid());
  ck_assert_int_eq(st.st_gid, getegid());
  ck_assert_int_eq(st.st_mode & 07777, 0600);
  ck_assert_int_eq(read_file_bounded(target, 64, &text, NULL, &err), 0);
  ck_assert_str_eq(text, "secret");
  /* without a racer: a regular file, the user's, with its mode */
  unlink(ini);
  unlink(x);
  ck_assert_int_eq(symlink(target, ini), 0);
  ck_assert_int_eq(frc_env_cache_write(d, "pip.ini", "[global]\n", 9, 0644, geteuid() == 0 ? 4242 : geteuid(),
                                       geteuid() == 0 ? 4343 : getegid(), &err), 0);
  ck_assert_int_eq(lstat(ini, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_int_eq(st.st_mode & 07777, 0644);
  if (geteuid() == 0)
    ck_assert_int_eq(st.st_uid, 4242);
  ck_assert_int_eq(stat(target, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0600);
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
  tcase_add_test(tc, test_sandbox_owner_names);
  tcase_add_test(tc, test_container);
  tcase_add_test(tc, test_hostile_sandbox_id);
  tcase_add_test(tc, test_write_never_follows);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
