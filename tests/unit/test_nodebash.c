/* The node's static bash in the store (lib/nodebash.c), without Nix:
 * the store path computed as Nix 2.8 names it (known answers printed by
 * `nix-store --add` of flox-runc-bash/bin/bash directories on this
 * project's machine); and, with a stand-in `nix-store` first in PATH that
 * prints the path the node's GC root names when it is called (nothing when
 * there is none, which fails the add): the root is in place before
 * nix-store adds the bash (a concurrent `nix-store --gc` cannot take it in
 * between); a second call runs no nix-store; a lost root, a changed node
 * file or a released root add it again. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodebash.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-nodebash-XXXXXX";
static char *old_path;
static struct frc_config cfg;
static const struct frc_logger quiet = { .path = NULL, .stderr_fd = -1 };

START_TEST(test_store_path_as_nix_names_it)
{
  static const struct
  {
    const char *data, *path;
  } v[] = {
    { "echo hi", "/nix/store/bssgnw32s9sm4xyw6nfj9cdckgifnmbd-flox-runc-bash" },
    { "", "/nix/store/d0y59wmx8wwghvy6jww055d8fmaywxsx-flox-runc-bash" },
    { "0123456", "/nix/store/pc35jcihmvkgflmm3xp6rw2104xfbhz8-flox-runc-bash" },
  };
  frc_error_t err = NULL;
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
    {
      char out[128];
      ck_assert_int_eq(frc_node_bash_store_path(v[i].data, strlen(v[i].data), "flox-runc-bash", out,
                                                sizeof(out), &err),
                       0);
      ck_assert_str_eq(out, v[i].path);
    }
}
END_TEST

/* A static "bash": this machine's ELF header without PT_INTERP is enough
 * for the check; the stand-in nix-store never runs it. */
static void
write_static_elf(const char *path, const char *tail)
{
  cleanup_free char *self = NULL;
  size_t n = 0;
  frc_error_t err = NULL;
  /* the test binary's own header, its program headers dropped */
  ck_assert_int_eq(read_file_bounded("/proc/self/exe", 64u << 20, &self, &n, &err), 0);
  ck_assert_uint_ge(n, 64);
  {
    size_t tl = strlen(tail);
    cleanup_free char *buf = xmalloc0(64 + tl);
    memcpy(buf, self, 64);
    memset(buf + 0x38, 0, 2); /* e_phnum (ELF64) = 0: no PT_INTERP */
    memcpy(buf + 64, tail, tl);
    ck_assert_int_eq(write_file_atomic(path, buf, 64 + tl, 0755, &err), 0);
  }
}

static void
setup(void)
{
  frc_error_t err = NULL;
  strcpy(dir, "/tmp/frc-test-nodebash-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  /* --add prints what the node's root names at that moment */
  cleanup_free char *script = xasprintf(
      "#!/bin/sh\n"
      "d='%s'\n"
      "case \"$*\" in *--add*) echo add >>\"$d/calls\"; "
      "readlink \"$d/store/nix/var/nix/gcroots/flox-runc/node/bash/0\" || exit 1 ;; esac\n"
      "exit 0\n",
      dir);
  old_path = frc_test_fake_program(dir, "nix-store", script);
  cleanup_free char *bash = xasprintf("%s/bash-static", dir);
  write_static_elf(bash, "one");
  memset(&cfg, 0, sizeof(cfg));
  cleanup_free char *json = xasprintf("{\"store_root\": \"%s/store\", \"state_dir\": \"%s/state\", "
                                      "\"bash\": \"%s\"}",
                                      dir, dir, bash);
  ck_assert_msg(frc_config_parse(&cfg, json, strlen(json), "test", &err) == 0, "%s",
                err ? err->msg : "");
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  frc_test_path_restore(old_path);
  frc_config_release(&cfg);
  ck_assert_int_eq(system(cmd), 0);
}

static int
count_adds(void)
{
  cleanup_free char *p = xasprintf("%s/calls", dir);
  cleanup_free char *text = NULL;
  size_t len = 0;
  frc_error_t err = NULL;
  int n = 0;
  if (read_file_bounded(p, 1 << 20, &text, &len, &err) < 0)
    {
      frc_error_release(&err);
      return 0;
    }
  for (char *s = text; (s = strstr(s, "add")) != NULL; s++)
    n++;
  return n;
}

/* As Nix leaves it: the path in the store. */
static void
make_present(const char *pkg)
{
  frc_error_t err = NULL;
  cleanup_free char *phys = xasprintf("%s/store%s/bin", dir, pkg);
  ck_assert_int_eq(frc_mkdir_p(phys, 0755, &err), 0);
}

static char *
node_bash(bool want_added)
{
  struct frc_store s = { &cfg, &quiet, 0 };
  frc_error_t err = NULL;
  char *pkg = NULL;
  bool added = !want_added;
  ck_assert_msg(frc_node_bash(&s, &pkg, &added, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_eq(added, want_added);
  return pkg;
}

START_TEST(test_rooted_before_added)
{
  cleanup_free char *data = NULL;
  size_t n = 0;
  char want[128];
  frc_error_t err = NULL;

  ck_assert_int_eq(read_file_bounded(cfg.bash, 1 << 20, &data, &n, &err), 0);
  ck_assert_int_eq(frc_node_bash_store_path(data, n, "flox-runc-bash", want, sizeof(want), &err), 0);
  {
    /* the stand-in prints the root's target: the add succeeds only when
     * the root was there, naming the path Nix gives */
    cleanup_free char *pkg = node_bash(true);
    ck_assert_str_eq(pkg, want);
    make_present(pkg);
  }
  ck_assert_int_eq(count_adds(), 1);
  {
    /* found: no nix-store */
    cleanup_free char *pkg = node_bash(false);
    ck_assert_str_eq(pkg, want);
    ck_assert_int_eq(count_adds(), 1);
  }
  /* the root released (an uninstall): added again, rooted again */
  ck_assert_int_eq(frc_node_bash_release(&cfg, &err), 0);
  {
    cleanup_free char *pkg = node_bash(true);
    ck_assert_str_eq(pkg, want);
    ck_assert_int_eq(count_adds(), 2);
  }
  /* a new bash on the node: a new path, the root replaced */
  write_static_elf(cfg.bash, "two");
  {
    cleanup_free char *pkg = node_bash(true);
    ck_assert_str_ne(pkg, want);
    ck_assert_int_eq(count_adds(), 3);
    cleanup_free char *link = frc_gcroot_dir(&cfg, "node", "bash/0");
    char target[256];
    ssize_t len = readlink(link, target, sizeof(target) - 1);
    ck_assert_int_gt(len, 0);
    target[len] = '\0';
    ck_assert_str_eq(target, pkg);
  }
}
END_TEST

/* The path gone from the store while bash.json and the root remain (the
 * store wiped by hand): added again. */
START_TEST(test_missing_path_added_again)
{
  cleanup_free char *pkg = node_bash(true);
  make_present(pkg);
  cleanup_free char *phys = xasprintf("rm -rf '%s/store%s'", dir, pkg);
  ck_assert_int_eq(system(phys), 0);
  cleanup_free char *again = node_bash(true);
  ck_assert_str_eq(again, pkg);
}
END_TEST

START_TEST(test_dynamic_refused)
{
  struct frc_store s = { &cfg, &quiet, 0 };
  frc_error_t err = NULL;
  char *pkg = NULL;
  bool added;
  free(cfg.bash);
  cfg.bash = xstrdup("/proc/self/exe"); /* this test: dynamically linked */
  ck_assert_int_lt(frc_node_bash(&s, &pkg, &added, &err), 0);
  ck_assert_msg(strstr(err->msg, "not a statically linked program"), "%s", err->msg);
  frc_error_release(&err);
  ck_assert_int_eq(count_adds(), 0);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("nodebash");
  TCase *tc = tcase_create("nodebash");
  int failed;
  tcase_add_test(tc, test_store_path_as_nix_names_it);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_rooted_before_added);
  tcase_add_test(tc, test_missing_path_added_again);
  tcase_add_test(tc, test_dynamic_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
