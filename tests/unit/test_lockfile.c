/* manifest.lock parsing and store-path validation (lib/lockfile.c). */
#include <check.h>
#include <string.h>

#include "lockfile.h"
#include "util.h"

#define H1 "/nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qwr"
#define H2 "/nix/store/7qdc0s9wq2mv3zzp9ls6yvwxcb6xbqj8"
#define H3 "/nix/store/f3q8a9j7zlh2hwnxyv4shh7gr7v9r1aa"

static const char lock[] =
    "{\"lockfile-version\":1,"
    "\"manifest\":{\"version\":1,\"install\":{\"just\":{\"pkg-path\":\"just\"}},"
    "\"vars\":{\"GREETING\":\"hi there\",\"_X1\":\"\"},"
    "\"hook\":{\"on-activate\":\"echo activated\"},\"options\":{\"systems\":[\"x86_64-linux\"]}},"
    "\"packages\":["
    "{\"attr_path\":\"just\",\"install_id\":\"just\",\"pname\":\"just\",\"version\":\"1.42.4\","
    "\"outputs_to_install\":[\"man\",\"out\"],"
    "\"outputs\":{\"man\":\"" H2 "-just-1.42.4-man\",\"out\":\"" H1 "-just-1.42.4\","
    "\"stubs\":\"" H3 "-just-stubs\"},\"system\":\"x86_64-linux\",\"group\":\"toplevel\",\"priority\":5},"
    "{\"attr_path\":\"just\",\"install_id\":\"just\",\"outputs\":{\"out\":\"" H1 "-just-arm\"},"
    "\"system\":\"aarch64-linux\"},"
    "{\"install_id\":\"tool\",\"store_path\":\"" H3 "-tool-1.0\",\"system\":\"x86_64-linux\","
    "\"priority\":3},"
    "{\"install_id\":\"fl\",\"locked_installable\":{\"locked_url\":\"github:x/y\",\"system\":"
    "\"x86_64-linux\",\"outputs\":{\"out\":\"" H2 "-flake-out\"}},\"priority\":7}]}";

START_TEST(test_shapes)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_msg(frc_lockfile_parse(lock, strlen(lock), "x86_64-linux", &l, &err) == 0, "%s",
                err ? err->msg : "");
  ck_assert_int_eq(l.manifest_version, 1);
  ck_assert_uint_eq(l.npkgs, 3);
  ck_assert_str_eq(l.pkgs[0].install_id, "just");
  ck_assert_str_eq(l.pkgs[0].label, "just-1.42.4");
  ck_assert_str_eq(l.pkgs[0].store_paths[0], H2 "-just-1.42.4-man");
  ck_assert_str_eq(l.pkgs[0].store_paths[1], H1 "-just-1.42.4");
  ck_assert_ptr_null(l.pkgs[0].store_paths[2]); /* stubs left out */
  ck_assert_int_eq(l.pkgs[0].priority, 5);
  ck_assert_str_eq(l.pkgs[1].store_paths[0], H3 "-tool-1.0");
  ck_assert_int_eq(l.pkgs[1].priority, 3);
  ck_assert_str_eq(l.pkgs[2].store_paths[0], H2 "-flake-out");
  ck_assert_int_eq(l.pkgs[2].priority, 7);
  ck_assert_uint_eq(l.nvars, 2);
  ck_assert_str_eq(l.var_names[0], "GREETING");
  ck_assert_str_eq(l.var_values[0], "hi there");
  ck_assert_str_eq(l.hook_on_activate, "echo activated");
  ck_assert_str_eq(l.systems[0], "x86_64-linux");
  ck_assert_str_eq(l.systems[1], "aarch64-linux");
  frc_lockfile_release(&l);

  ck_assert_int_eq(frc_lockfile_parse(lock, strlen(lock), "aarch64-linux", &l, &err), 0);
  ck_assert_uint_eq(l.npkgs, 1);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_wrong_system)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_int_lt(frc_lockfile_parse(lock, strlen(lock), "riscv64-linux", &l, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "riscv64-linux"));
  ck_assert_ptr_nonnull(strstr(err->msg, "x86_64-linux, aarch64-linux"));
  ck_assert_int_eq(err->code, FRC_ECODE_NOT_FOUND);
  frc_error_release(&err);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_empty_environment)
{
  const char *t = "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[]}";
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_lockfile_parse(t, strlen(t), "x86_64-linux", &l, &err), 0);
  ck_assert_uint_eq(l.npkgs, 0);
  ck_assert_ptr_null(l.hook_on_activate);
  frc_lockfile_release(&l);
}
END_TEST

static const char *const bad_locks[] = {
  "{\"lockfile-version\":2,\"manifest\":{},\"packages\":[]}",
  "{\"manifest\":{},\"packages\":[]}",
  "{\"lockfile-version\":1,\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{}}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"store_path\":\"/nix/store/../../etc/passwd\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"outputs\":{\"out\":\"/tmp/x\"}}]}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"outputs\":{}}]}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"system\":\"x86_64-linux\",\"store_path\":\"" H1
  "-a\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"install_id\":\"x\",\"store_path\":\"" H1 "-a\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"store_path\":\"" H1 "-a\",\"priority\":\"high\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"vars\":{\"A-B\":\"x\"}},\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{\"vars\":{\"1A\":\"x\"}},\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{\"vars\":{\"A\":1}},\"packages\":[]}",
  "{\"lockfile-version\":1,",
};

START_TEST(test_bad)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_msg(frc_lockfile_parse(bad_locks[_i], strlen(bad_locks[_i]), "x86_64-linux", &l, &err) < 0,
                "accepted %s", bad_locks[_i]);
  ck_assert_ptr_nonnull(strstr(err->msg, "manifest.lock"));
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  frc_error_release(&err);
  frc_lockfile_release(&l);
}
END_TEST

static const struct
{
  const char *path;
  bool ok;
} paths[] = {
  { H1 "-hello-2.12", true },
  { H1 "-a+b_c.d-e?f=g", true },
  { H1 "-", false },
  { H1 "-.hidden", false },
  { H1 "-x/y", false },
  { H1 "-x/../../etc", false },
  { H1 "-x y", false },
  { H1, false },
  { "/nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qw-short", false },
  { "/nix/store/e5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false }, /* 'e' is not nix32 */
  { "/nix/store/I5L66QBWRY5SKVWAC6ZXI81XQ6QA3QWR-x", false },
  { "/nix/storeX/i5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false },
  { "nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false },
  { "", false },
};

START_TEST(test_store_paths)
{
  ck_assert_msg(frc_store_path_valid(paths[_i].path) == paths[_i].ok, "%s", paths[_i].path);
}
END_TEST

START_TEST(test_system)
{
  const char *s = frc_nix_system();
  ck_assert(strcmp(s, "x86_64-linux") == 0 || strcmp(s, "aarch64-linux") == 0);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("lockfile");
  TCase *tc = tcase_create("lockfile");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, test_shapes);
  tcase_add_test(tc, test_wrong_system);
  tcase_add_test(tc, test_empty_environment);
  tcase_add_loop_test(tc, test_bad, 0, sizeof(bad_locks) / sizeof(bad_locks[0]));
  tcase_add_loop_test(tc, test_store_paths, 0, sizeof(paths) / sizeof(paths[0]));
  tcase_add_test(tc, test_system);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
