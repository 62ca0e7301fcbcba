/* Whether a container exists (lib/container.c frc_container_presence): one
 * rule for create, delete and gc.  Stand-in runtimes are scripts answering
 * `state` with a given exit status; the real runc and crun exit 1 for an
 * unknown id (e2e 1c2 checks them and the whole delete/create/gc path). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-container-XXXXXX";

static void
setup(void)
{
  strcpy(dir, "/tmp/frc-test-container-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "/bin/rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* A runtime whose every call records its arguments and then runs body. */
static struct frc_runtime
runtime(const char *body)
{
  struct frc_runtime rt = { 0 };
  FILE *f;
  rt.path = xasprintf("%s/rt", dir);
  rt.script = true;
  f = fopen(rt.path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "#!/bin/sh\necho \"$*\" >%s/args\n%s\n", dir, body);
  fclose(f);
  ck_assert_int_eq(chmod(rt.path, 0755), 0);
  return rt;
}

static char *
args(void)
{
  cleanup_free char *p = xasprintf("%s/args", dir);
  char *text = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(read_file_bounded(p, 4096, &text, NULL, &err), 0);
  return text;
}

START_TEST(test_live_gone_unknown)
{
  static const struct
  {
    const char *body;
    enum frc_presence want;
    int status;
  } cases[] = {
    { "exit 0", FRC_CONTAINER_LIVE, 0 },
    { "echo 'container does not exist' >&2; exit 1", FRC_CONTAINER_GONE, 1 },
    { "exit 2", FRC_CONTAINER_UNKNOWN, 2 },
    { "exit 255", FRC_CONTAINER_UNKNOWN, 255 },
    { "kill -9 $$", FRC_CONTAINER_UNKNOWN, 128 + 9 },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_runtime struct frc_runtime rt = runtime(cases[i].body);
      cleanup_free char *a = NULL;
      int status = -7;
      ck_assert_int_eq(frc_container_presence(&rt, "/run/x", "c1", &status), cases[i].want);
      ck_assert_int_eq(status, cases[i].status);
      a = args();
      ck_assert_str_eq(a, "--root /run/x state c1\n");
    }
}
END_TEST

START_TEST(test_no_root)
{
  cleanup_runtime struct frc_runtime rt = runtime("exit 1");
  cleanup_free char *a = NULL, *b = NULL;
  ck_assert_int_eq(frc_container_presence(&rt, NULL, "c2", NULL), FRC_CONTAINER_GONE);
  a = args();
  ck_assert_str_eq(a, "state c2\n");
  ck_assert_int_eq(frc_container_presence(&rt, "", "c3", NULL), FRC_CONTAINER_GONE);
  b = args();
  ck_assert_str_eq(b, "state c3\n");
}
END_TEST

/* A runtime that cannot be started cannot tell either. */
START_TEST(test_not_started)
{
  struct frc_runtime rt = { 0 };
  int status = 0;
  rt.path = xasprintf("%s/missing", dir);
  ck_assert_int_eq(frc_container_presence(&rt, NULL, "c4", &status), FRC_CONTAINER_UNKNOWN);
  ck_assert_int_ne(status, 0);
  ck_assert_int_ne(status, 1);
  frc_runtime_release(&rt);
}
END_TEST

/* A runtime that hangs on `state` (only a stub can be made to hang on
 * purpose) is killed after FRC_STATE_TIMEOUT_SECONDS: the answer is
 * "cannot tell", and create, delete and gc go on instead of hanging. */
START_TEST(test_state_hangs)
{
  cleanup_runtime struct frc_runtime rt = runtime("exec sleep 300");
  struct timespec t0, t1;
  int status = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(frc_container_presence(&rt, "/run/x", "c5", &status), FRC_CONTAINER_UNKNOWN);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_eq(status, FRC_RUNTIME_TIMED_OUT);
  ck_assert_int_ge(t1.tv_sec - t0.tv_sec, FRC_STATE_TIMEOUT_SECONDS - 1);
  ck_assert_int_le(t1.tv_sec - t0.tv_sec, FRC_STATE_TIMEOUT_SECONDS + 5);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("container");
  TCase *tc = tcase_create("presence");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_live_gone_unknown);
  tcase_add_test(tc, test_no_root);
  tcase_add_test(tc, test_not_started);
  tcase_add_test(tc, test_state_hangs);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
