/* testdir.h - the unit tests' scratch directories.
 *
 * Owns: making a fresh /tmp/frc-test-<name>-XXXXXX for a test fixture and
 * removing it (with frc_rm_rf, the library's own removal) in its teardown;
 * both fail the test when they cannot.  Each program runs with a /tmp of
 * its own (tests/unit/private-tmp.sh, meson.build), so what a failing test
 * leaves there (its Check child exits before the teardown) is removed when
 * the program ends.
 */
#ifndef FRC_TESTDIR_H
#define FRC_TESTDIR_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* buf: a char array of the size of "/tmp/frc-test-<name>-XXXXXX". */
#define frc_test_dir_make(buf, name) frc_test_dir_make_n((buf), sizeof(buf), (name))

static inline void
frc_test_dir_make_n(char *buf, size_t size, const char *name)
{
  ck_assert_int_lt(snprintf(buf, size, "/tmp/frc-test-%s-XXXXXX", name), (int) size);
  ck_assert_ptr_nonnull(mkdtemp(buf));
}

static inline void
frc_test_dir_remove(const char *dir)
{
  frc_error_t err = NULL;
  int r = frc_rm_rf(dir, &err);
  ck_assert_msg(r == 0, "cannot remove %s: %s", dir, err ? err->msg : "");
}

/* Writes script as <dir>/bin/<name> (0755) and puts <dir>/bin first on
 * PATH: a stand-in for a program the library runs (nix-store).  Returns
 * the PATH before, for frc_test_path_restore in the teardown. */
static inline char *
frc_test_fake_program(const char *dir, const char *name, const char *script)
{
  frc_error_t err = NULL;
  cleanup_free char *bin = xasprintf("%s/bin", dir);
  cleanup_free char *fake = xasprintf("%s/%s", bin, name);
  char *old = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  cleanup_free char *path = xasprintf("%s:%s", bin, old);
  ck_assert_int_eq(mkdir(bin, 0755), 0);
  ck_assert_msg(write_file_atomic(fake, script, strlen(script), 0755, &err) == 0, "%s",
                err ? err->msg : "");
  setenv("PATH", path, 1);
  return old;
}

static inline void
frc_test_path_restore(char *old)
{
  setenv("PATH", old, 1);
  free(old);
}

#endif
