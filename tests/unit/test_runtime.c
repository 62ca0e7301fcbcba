/* Locating the real runtime and refusing flox-runc itself (lib/runtime.c).
 * The test binary stands in for flox-runc: /proc/self/exe is the binary under
 * test, so a link or a copy of it must never be chosen as "the real runtime". */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-runtime-XXXXXX";

static void
setup(void)
{
  frc_test_dir_make(dir, "runtime");
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
}

static char *
self_path(void)
{
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  return xstrdup(buf);
}

static char *
make_script(const char *sub, const char *name)
{
  cleanup_free char *d = xasprintf("%s/%s", dir, sub);
  char *p = xasprintf("%s/%s", d, name);
  FILE *f;
  mkdir(d, 0755);
  f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs("#!/bin/sh\nexit 0\n", f);
  fclose(f);
  ck_assert_int_eq(chmod(p, 0755), 0);
  return p;
}

START_TEST(test_configured_absolute)
{
  cleanup_free char *script = make_script("a", "myruntime");
  cleanup_runtime struct frc_runtime out = { 0 };
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_runtime_locate(script, &out, &err), 0);
  ck_assert_str_eq(out.path, script);
  ck_assert(out.script);
}
END_TEST

START_TEST(test_configured_bad)
{
  cleanup_free char *self = self_path();
  cleanup_runtime struct frc_runtime out = { 0 };
  frc_error_t err = NULL;

  ck_assert_int_lt(frc_runtime_locate("/nonexistent/runc", &out, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "not an executable"));
  frc_error_release(&err);
  ck_assert_int_lt(frc_runtime_locate("relative/runc", &out, &err), 0);
  frc_error_release(&err);
  ck_assert_int_lt(frc_runtime_locate(self, &out, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "flox-runc itself"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_search_skips_self)
{
  cleanup_free char *self = self_path();
  cleanup_free char *real = make_script("real", "runc");
  cleanup_free char *linkdir = xasprintf("%s/link", dir);
  cleanup_free char *copydir = xasprintf("%s/copy", dir);
  cleanup_free char *link = xasprintf("%s/runc", linkdir);
  cleanup_free char *copy = xasprintf("%s/runc", copydir);
  cleanup_free char *path = xasprintf("relative:%s:%s:%s/real", linkdir, copydir, dir);
  cleanup_runtime struct frc_runtime out = { 0 };
  cleanup_free char *cmd = NULL;
  frc_error_t err = NULL;

  mkdir(linkdir, 0755);
  mkdir(copydir, 0755);
  ck_assert_int_eq(symlink(self, link), 0);
  cmd = xasprintf("/bin/cp '%s' '%s'", self, copy);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert(frc_runtime_is_self(link));
  ck_assert(frc_runtime_is_self(copy)); /* same build id */
  ck_assert(!frc_runtime_is_self(real));

  setenv("PATH", path, 1);
  ck_assert_int_eq(frc_runtime_locate(NULL, &out, &err), 0);
  ck_assert_str_eq(out.path, real);
  frc_runtime_release(&out);
  /* a configured name is looked up the same way */
  ck_assert_int_eq(frc_runtime_locate("runc", &out, &err), 0);
  ck_assert_str_eq(out.path, real);
  frc_runtime_release(&out);
  ck_assert_int_lt(frc_runtime_locate("no-such-runtime-xyz", &out, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "no-such-runtime-xyz"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_loop_guard)
{
  frc_error_t err = NULL;
  unsetenv(FRC_LOOP_GUARD_ENV);
  ck_assert_int_eq(frc_runtime_check_loop(&err), 0);
  setenv(FRC_LOOP_GUARD_ENV, "/usr/local/bin/wrapper", 1);
  ck_assert_int_lt(frc_runtime_check_loop(&err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "loop"));
  ck_assert_ptr_nonnull(strstr(err->msg, "/usr/local/bin/wrapper"));
  frc_error_release(&err);
  unsetenv(FRC_LOOP_GUARD_ENV);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("runtime");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_configured_absolute);
  tcase_add_test(tc, test_configured_bad);
  tcase_add_test(tc, test_search_skips_self);
  tcase_add_test(tc, test_loop_guard);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
