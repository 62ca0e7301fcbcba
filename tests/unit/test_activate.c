/* A process inside a Flox environment (lib/activate.c): the environment of
 * each mode, vars, command lookup through the store's symlinks, the hook
 * wrapper, and applying it twice. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activate.h"
#include "json.h"
#include "spec.h"
#include "util.h"

#define ENV "/nix/var/flox-runc/envs/0123"
#define PKG "/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-1"

static char dir[] = "/tmp/frc-test-activate-XXXXXX";

static void
mk(const char *rel)
{
  cleanup_free char *cmd = xasprintf("mkdir -p '%s%s'", dir, rel);
  ck_assert_int_eq(system(cmd), 0);
}

/* <dir>/nix/store/<pkg>/bin/hello (executable) and the environment's bin ->
 * the package's bin, as lib/envbuild.c collapses it. */
static void
setup(void)
{
  cleanup_free char *hello = NULL, *link = NULL;
  FILE *f;
  strcpy(dir, "/tmp/frc-test-activate-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  mk(PKG "/bin");
  mk(ENV);
  hello = xasprintf("%s%s/bin/hello", dir, PKG);
  f = fopen(hello, "w");
  ck_assert_ptr_nonnull(f);
  fputs("#!/bin/sh\n", f);
  fclose(f);
  ck_assert_int_eq(chmod(hello, 0755), 0);
  link = xasprintf("%s%s/bin", dir, ENV);
  ck_assert_int_eq(symlink(PKG "/bin", link), 0);
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static yajl_val
process(const char *json)
{
  yajl_val v = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_json_parse(json, strlen(json), &v, &err), 0);
  return v;
}

static struct frc_activation
activation(enum frc_mode mode)
{
  static char *names[] = { (char *) "GREETING", NULL };
  static char *values[] = { (char *) "hi 'there'", NULL };
  struct frc_activation a = {
    .env_path = ENV,
    .store_prefix = dir,
    .description = "acme/hello:2",
    .mode = mode,
    .var_names = names,
    .var_values = values,
    .nvars = 1,
  };
  return a;
}

START_TEST(test_run_mode)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\",\"--x\"],\"env\":[\"PATH=/usr/bin:/bin\","
                                    "\"HOME=/root\",\"GREETING=old\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;

  a.disable_metrics = true;
  ck_assert_msg(frc_activate_process(&a, p, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV"), ENV);
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), ENV "/bin:" ENV "/sbin:/usr/bin:/bin");
  ck_assert_str_eq(frc_process_getenv(p, "HOME"), "/root");
  ck_assert_str_eq(frc_process_getenv(p, "GREETING"), "hi 'there'");
  ck_assert_str_eq(frc_process_getenv(p, "INFOPATH"), ENV "/share/info");
  ck_assert_str_eq(frc_process_getenv(p, "XDG_DATA_DIRS"), ENV "/share:/usr/local/share:/usr/share");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_DISABLE_METRICS"), "1");
  ck_assert_ptr_null(frc_process_getenv(p, "CPATH"));
  ck_assert_str_eq(frc_process_arg(p, 0), ENV "/bin/hello"); /* found through bin -> pkg/bin */
  ck_assert_str_eq(frc_process_arg(p, 1), "--x");
  /* twice: the same process */
  {
    cleanup_free char *once = frc_json_serialize(p, NULL);
    cleanup_free char *twice = NULL;
    ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
    twice = frc_json_serialize(p, NULL);
    ck_assert_str_eq(once, twice);
  }
}
END_TEST

START_TEST(test_dev_mode_no_path)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\"]}");
  struct frc_activation a = activation(FRC_MODE_DEV);
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), ENV "/bin:" ENV "/sbin:" FRC_DEFAULT_PATH);
  ck_assert_str_eq(frc_process_getenv(p, "CPATH"), ENV "/include");
  ck_assert_str_eq(frc_process_getenv(p, "LIBRARY_PATH"), ENV "/lib");
  ck_assert_str_eq(frc_process_getenv(p, "PKG_CONFIG_PATH"), ENV "/lib/pkgconfig:" ENV "/share/pkgconfig");
  ck_assert_ptr_null(frc_process_getenv(p, "INFOPATH"));
  ck_assert_ptr_null(frc_process_getenv(p, "FLOX_DISABLE_METRICS"));
}
END_TEST

START_TEST(test_hook)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\",\"a b\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;

  a.has_hook = true;
  ck_assert_int_lt(frc_activate_process(&a, p, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "on-activate hook but no shell"));
  frc_error_release(&err);
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\",\"a b\"]}");
  a.shell = PKG "/bin/sh";
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_uint_eq(frc_process_nargs(p), 6);
  ck_assert_str_eq(frc_process_arg(p, 0), PKG "/bin/sh");
  ck_assert_str_eq(frc_process_arg(p, 1), "-c");
  ck_assert_ptr_nonnull(strstr(frc_process_arg(p, 2), "hook-on-activate\" 1>&2; exec \"$@\""));
  ck_assert_str_eq(frc_process_arg(p, 3), FRC_HOOK_ARGV0);
  ck_assert_str_eq(frc_process_arg(p, 4), ENV "/bin/hello");
  ck_assert_str_eq(frc_process_arg(p, 5), "a b");
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0); /* not wrapped twice */
  ck_assert_uint_eq(frc_process_nargs(p), 6);
}
END_TEST

START_TEST(test_command_lookup)
{
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;
  cleanup_json yajl_val missing = process("{\"args\":[\"nope\"],\"env\":[\"PATH=/bin\"]}");
  cleanup_json yajl_val explicit_path = process("{\"args\":[\"/bin/sh\",\"-c\",\"x\"]}");
  cleanup_json yajl_val none = process("{\"args\":[]}");
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);

  a.rootfs = rootfs; /* an empty image */
  mk("/rootfs/bin");
  ck_assert_int_lt(frc_activate_process(&a, missing, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "command \"nope\" is in neither the environment acme/hello:2 nor the image"));
  frc_error_release(&err);
  ck_assert_int_eq(frc_activate_process(&a, explicit_path, &err), 0);
  ck_assert_str_eq(frc_process_arg(explicit_path, 0), "/bin/sh");
  ck_assert_int_lt(frc_activate_process(&a, none, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "has no command"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_expand_vars)
{
  cleanup_json yajl_val p = process("{\"args\":[\"x\"],\"env\":[\"FLOX_ENV=/e\",\"HOME=/root\"]}");
  const char *cases[][2] = {
    { "$FLOX_ENV/lib", "/e/lib" },
    { "${FLOX_ENV}x:$HOME", "/ex:/root" },
    { "$UNSET-a", "-a" },
    { "\\$HOME", "$HOME" },
    { "$(id) `id` $", "$(id) `id` $" },
    { "${bad-name}", "${bad-name}" },
    { "100%$", "100%$" },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_free char *v = frc_expand_vars(p, cases[i][0]);
      ck_assert_msg(strcmp(v, cases[i][1]) == 0, "%s -> %s", cases[i][0], v);
    }
}
END_TEST

/* Vars built from earlier ones double with each: the expansion is bounded. */
START_TEST(test_expand_vars_bounded)
{
  cleanup_json yajl_val p = process("{\"args\":[\"x\"],\"env\":[]}");
  cleanup_free char *big = xmalloc0(FRC_VAR_EXPANDED_MAX / 2 + 1);
  cleanup_free char *ok = NULL;
  memset(big, 'x', FRC_VAR_EXPANDED_MAX / 2);
  frc_process_setenv(p, "A", big);
  ok = frc_expand_vars(p, "$A${A}");
  ck_assert_uint_eq(strlen(ok), FRC_VAR_EXPANDED_MAX);
  ck_assert_ptr_null(frc_expand_vars(p, "$A$A$A"));
  ck_assert_ptr_null(frc_expand_vars(p, "$A$A-"));
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("activate");
  TCase *tc = tcase_create("activate");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_run_mode);
  tcase_add_test(tc, test_dev_mode_no_path);
  tcase_add_test(tc, test_hook);
  tcase_add_test(tc, test_command_lookup);
  tcase_add_test(tc, test_expand_vars);
  tcase_add_test(tc, test_expand_vars_bounded);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
