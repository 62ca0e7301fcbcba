/* The merged environment tree (lib/envbuild.c), over fake stores:
 * <tmp>/root/nix/store/<32 nix32 chars>-name/... */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envbuild.h"
#include "linkpool.h"
#include "lockfile.h"
#include "propagate.h"
#include "util.h"

static char tmp[] = "/tmp/frc-test-envbuild-XXXXXX";
static char *root; /* the store root */
static char *out; /* where the environment is built */

static void
mkdirs(const char *path)
{
  cleanup_free char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/')
      {
        *s = '\0';
        ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
        *s = '/';
      }
  ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void
setup(void)
{
  cleanup_free char *store = NULL;
  strcpy(tmp, "/tmp/frc-test-envbuild-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp));
  root = xasprintf("%s/root", tmp);
  out = xasprintf("%s/out", tmp);
  store = xasprintf("%s/nix/store", root);
  mkdirs(store);
  mkdirs(out);
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("chmod -R u+w '%s' && rm -rf '%s'", tmp, tmp);
  ck_assert_int_eq(system(cmd), 0);
  free(root);
  free(out);
  root = out = NULL;
}

/* Empties the store and the output, keeping their names. */
static void
reset(void)
{
  cleanup_free char *cmd
      = xasprintf("cd '%s' && chmod -R u+w . && rm -rf root out out2 out3 out4 pool l1 l2 l3 entry", tmp);
  cleanup_free char *store = xasprintf("%s/nix/store", root);
  ck_assert_int_eq(system(cmd), 0);
  mkdirs(store);
  mkdirs(out);
}

/* A logical store path whose hash part is derived from name. */
static char *
store_path(const char *name)
{
  static const char nix32[] = "0123456789abcdfghijklmnpqrsvwxyz";
  char h[33];
  unsigned long x = 5381;
  for (const char *c = name; *c; c++)
    x = x * 33 + (unsigned char) *c;
  for (int i = 0; i < 32; i++)
    {
      x = x * 6364136223846793005UL + 1442695040888963407UL;
      h[i] = nix32[(x >> 59) & 31];
    }
  h[32] = '\0';
  return xasprintf("/nix/store/%s-%s", h, name);
}

/* A store path that is a directory. */
static char *
sp(const char *name)
{
  char *p = store_path(name);
  cleanup_free char *phys = xasprintf("%s%s", root, p);
  mkdirs(phys);
  return p;
}

static void
put(const char *sp_, const char *rel, const char *text)
{
  cleanup_free char *p = rel ? xasprintf("%s%s/%s", root, sp_, rel) : xasprintf("%s%s", root, sp_);
  cleanup_free char *dir = xstrdup(p);
  FILE *f;
  *strrchr(dir, '/') = '\0';
  mkdirs(dir);
  f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text ? text : p, f);
  fclose(f);
}

static void
lnk(const char *sp_, const char *rel, const char *target)
{
  cleanup_free char *p = xasprintf("%s%s/%s", root, sp_, rel);
  cleanup_free char *dir = xstrdup(p);
  *strrchr(dir, '/') = '\0';
  mkdirs(dir);
  ck_assert_int_eq(symlink(target, p), 0);
}

/* The target of the symlink out/rel, NULL when it is not a symlink. */
static char *
rl(const char *rel)
{
  cleanup_free char *p = xasprintf("%s/%s", out, rel);
  char buf[PATH_MAX];
  ssize_t n = readlink(p, buf, sizeof(buf) - 1);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  return xstrdup(buf);
}

static bool
is_dir(const char *rel)
{
  cleanup_free char *p = xasprintf("%s/%s", out, rel);
  struct stat st;
  return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
exists(const char *rel)
{
  cleanup_free char *p = xasprintf("%s/%s", out, rel);
  struct stat st;
  return lstat(p, &st) == 0;
}

static char *
slurp(const char *rel)
{
  cleanup_free char *p = xasprintf("%s/%s", out, rel);
  char *text = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(read_file_bounded(p, 1 << 20, &text, NULL, &err), 0);
  return text;
}

#define assert_link(rel, sp_, sub)                                                                 \
  do                                                                                               \
    {                                                                                              \
      cleanup_free char *_t = rl(rel);                                                             \
      cleanup_free char *_e = xasprintf("%s/%s", sp_, sub);                                        \
      ck_assert_msg(_t != NULL, "%s is not a symlink", rel);                                       \
      ck_assert_str_eq(_t, _e);                                                                    \
    }                                                                                              \
  while (0)

static const char lockfile[] = "{\"lockfile-version\":1}\n";

static struct frc_envbuild_input
input(const struct frc_envbuild_pkg *pkgs, size_t n)
{
  struct frc_envbuild_input in = {
    .store_root = root,
    .mode = FRC_ENVBUILD_RUN,
    .pkgs = pkgs,
    .npkgs = n,
    .lockfile = lockfile,
    .lockfile_len = sizeof(lockfile) - 1,
    .expand_all = true, /* the merge itself; test_collapse covers the default */
  };
  return in;
}

static int
build(const struct frc_envbuild_input *in, struct frc_envbuild_stats *st, frc_error_t *err)
{
  return frc_envbuild(in, out, st, err);
}

/* The default: a directory only one package provides, unchanged, is one
 * symlink to that package's directory; merged ones are real directories. */
START_TEST(test_collapse)
{
  cleanup_free char *a = sp("hello-2.12");
  cleanup_free char *b = sp("jq-1.7");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "hello", 5, pa, false }, { "jq", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;

  in.expand_all = false;
  put(a, "bin/hello", NULL);
  put(a, "share/man/man1/hello.1", NULL);
  put(a, "lib/x/nix-support/keep", NULL);
  put(a, "info/dir", "");
  put(a, "info/hello.info", NULL);
  put(b, "bin/jq", NULL);
  put(b, "share/doc/jq/README", NULL);
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(is_dir("bin")); /* two packages */
  assert_link("bin/hello", a, "bin/hello");
  assert_link("bin/jq", b, "bin/jq");
  ck_assert(is_dir("share"));
  assert_link("share/man", a, "share/man"); /* one package: one link */
  assert_link("share/doc", b, "share/doc");
  assert_link("lib", a, "lib");
  /* one package's info, linked whole as buildEnv links it: info/dir with it
   * (builder.pl findFiles skips it only in a directory it merges) */
  assert_link("info", a, "info");
  ck_assert(is_dir("activate.d"));
}
END_TEST

/* builder.pl findFiles:191-204: in a directory two packages merge, what
 * buildEnv leaves out does not conflict: share/mime/ but its packages, any
 * entry named log or perllocal.pod, a path ending in info/dir. */
START_TEST(test_merge_ignored)
{
  cleanup_free char *a = sp("gui-1");
  cleanup_free char *b = sp("gui2-1");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "gui", 5, pa, false }, { "gui2", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;

  put(a, "share/mime/mime.cache", "a");
  put(a, "share/mime/packages/a.xml", NULL);
  put(a, "share/gui/log", "a");
  put(a, "lib/perl5/perllocal.pod", "a");
  put(a, "share/info/dir", "a");
  put(b, "share/mime/mime.cache", "b");
  put(b, "share/mime/packages/b.xml", NULL);
  put(b, "share/gui/log", "b");
  put(b, "lib/perl5/perllocal.pod", "b");
  put(b, "share/info/dir", "b");
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  assert_link("share/mime/packages/a.xml", a, "share/mime/packages/a.xml");
  assert_link("share/mime/packages/b.xml", b, "share/mime/packages/b.xml");
  ck_assert(!exists("share/mime/mime.cache"));
  ck_assert(!exists("share/gui/log"));
  ck_assert(!exists("lib/perl5/perllocal.pod"));
  ck_assert(!exists("share/info/dir"));
}
END_TEST

START_TEST(test_merge_bin)
{
  cleanup_free char *a = sp("hello-2.12");
  cleanup_free char *b = sp("jq-1.7");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "hello", 5, pa, false }, { "jq", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;
  struct stat s;
  cleanup_free char *bin = xasprintf("%s/bin", out);
  cleanup_free char *hello = xasprintf("%s/bin/hello", out);

  put(a, "bin/hello", NULL);
  put(a, "share/man/man1/hello.1", NULL);
  put(a, "nix-support/propagated-build-inputs", "");
  put(b, "bin/jq", NULL);
  put(b, "share/doc/jq/README", NULL);
  put(b, "share/info/dir", "");
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(is_dir("bin"));
  ck_assert(is_dir("share/man/man1"));
  assert_link("bin/hello", a, "bin/hello");
  assert_link("bin/jq", b, "bin/jq");
  assert_link("share/man/man1/hello.1", a, "share/man/man1/hello.1");
  assert_link("share/doc/jq/README", b, "share/doc/jq/README");
  ck_assert(!exists("nix-support"));
  ck_assert(!exists("share/info/dir"));
  ck_assert_uint_eq(st.links, 4);
  ck_assert_uint_eq(st.dirs, 8); /* bin share share/{man,man1,doc,doc/jq,info} activate.d */
  ck_assert_uint_eq(st.files, 3);
  ck_assert_uint_eq(st.skipped, 2);
  ck_assert_uint_eq(st.shadowed, 0);
  /* read-only, timestamps of 1 */
  ck_assert_int_eq(lstat(bin, &s), 0);
  ck_assert_int_eq(s.st_mode & 07777, 0555);
  ck_assert_int_eq(s.st_mtime, 1);
  ck_assert_int_eq(lstat(out, &s), 0);
  ck_assert_int_eq(s.st_mode & 07777, 0555);
  ck_assert_int_eq(lstat(hello, &s), 0);
  ck_assert(S_ISLNK(s.st_mode));
  ck_assert_int_eq(s.st_mtime, 1);
  /* the link works once the store is where the targets say */
  ck_assert_int_eq(stat(hello, &s), -1);
}
END_TEST

START_TEST(test_priority)
{
  cleanup_free char *a = sp("tool-a");
  cleanup_free char *b = sp("tool-b");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  frc_error_t err = NULL;
  struct frc_envbuild_stats st;

  put(a, "bin/tool", NULL);
  put(a, "bin/only-a", NULL);
  put(b, "bin/tool", NULL);
  for (int order = 0; order < 2; order++)
    {
      struct frc_envbuild_pkg pkgs[2];
      struct frc_envbuild_pkg pa_ = { "tool-a", 5, pa, false }, pb_ = { "tool-b", 3, pb, false };
      struct frc_envbuild_input in;
      pkgs[0] = order ? pb_ : pa_;
      pkgs[1] = order ? pa_ : pb_;
      in = input(pkgs, 2);
      ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
      assert_link("bin/tool", b, "bin/tool");
      assert_link("bin/only-a", a, "bin/only-a");
      ck_assert_uint_eq(st.shadowed, 1);
      reset();
      put(a, "bin/tool", NULL);
      put(a, "bin/only-a", NULL);
      put(b, "bin/tool", NULL);
    }
}
END_TEST

START_TEST(test_conflict)
{
  cleanup_free char *a = sp("conflict-a-1.0");
  cleanup_free char *b = sp("conflict-b-1.0");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "conflict-a", 5, pa, false }, { "conflict-b", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  frc_error_t err = NULL;

  put(a, "bin/conflict", "a");
  put(b, "bin/conflict", "b");
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_str_eq(err->msg, "packages conflict-a and conflict-b both provide bin/conflict at "
                             "priority 5: give one of them a different priority in the manifest "
                             "(priority = N)");
  frc_error_release(&err);
}
END_TEST

START_TEST(test_file_vs_dir)
{
  cleanup_free char *x = sp("x-1");
  cleanup_free char *y = sp("y-1");
  char *px[] = { x, NULL }, *py[] = { y, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "x", 5, px, false }, { "y", 5, py, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  frc_error_t err = NULL;

  put(x, "share/thing", NULL);
  put(y, "share/thing/inside", NULL);
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_str_eq(err->msg, "packages x and y both provide share/thing at priority 5 (a file in "
                             "x, a directory in y): give one of them a different priority in the "
                             "manifest (priority = N)");
  frc_error_release(&err);

  reset();
  put(x, "share/thing", NULL);
  put(y, "share/thing/inside", NULL);
  pkgs[1].priority = 4; /* the directory wins */
  in = input(pkgs, 2);
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(is_dir("share/thing"));
  assert_link("share/thing/inside", y, "share/thing/inside");

  reset();
  put(x, "share/thing", NULL);
  put(y, "share/thing/inside", NULL);
  pkgs[1].priority = 6; /* the file wins */
  in = input(pkgs, 2);
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  assert_link("share/thing", x, "share/thing");
}
END_TEST

START_TEST(test_identical)
{
  cleanup_free char *a = sp("coreutils-9.4");
  cleanup_free char *b = sp("wrapper-1");
  cleanup_free char *c = sp("wrapper-2");
  cleanup_free char *abs_target = xasprintf("%s/bin/ls", a);
  cleanup_free char *rel_target = xasprintf("../..%s/bin/ls", a + strlen("/nix/store"));
  char *pa[] = { a, NULL }, *pb[] = { b, NULL }, *pc[] = { c, NULL };
  struct frc_envbuild_pkg pkgs[] = {
    { "coreutils", 5, pa, false }, { "wrapper-1", 5, pb, false }, { "wrapper-2", 5, pc, false }, { "again", 5, pa, false }
  };
  struct frc_envbuild_input in = input(pkgs, 4);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;

  put(a, "bin/ls", NULL);
  lnk(b, "bin/ls", abs_target);
  lnk(c, "bin/ls", rel_target);
  lnk(b, "bin/sh", "/bin/sh"); /* the same path outside the store */
  lnk(c, "bin/sh", "/bin/sh");
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  assert_link("bin/ls", a, "bin/ls");
  assert_link("bin/sh", b, "bin/sh");
  ck_assert_uint_eq(st.shadowed, 4);

  /* different paths outside the store do conflict */
  reset();
  put(a, "bin/ls", NULL);
  lnk(b, "bin/sh", "/bin/sh");
  lnk(c, "bin/sh", "/bin/bash");
  ck_assert_int_lt(build(&in, &st, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "packages wrapper-1 and wrapper-2 both provide bin/sh"));
  frc_error_release(&err);
}
END_TEST

/* Symlinks to a name beside them (busybox's applets, libfoo.so ->
 * libfoo.so.1), resolved without walking their whole path: the same
 * answers as any other symlink. */
START_TEST(test_sibling_links)
{
  cleanup_free char *a = sp("busybox-1.35");
  cleanup_free char *b = sp("other-1");
  cleanup_free char *abs_target = xasprintf("%s/bin/busybox", a);
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "busybox", 5, pa, false }, { "other", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;

  put(a, "bin/busybox", NULL);
  lnk(a, "bin/ls", "busybox");
  lnk(a, "bin/sh", "ash"); /* a chain: sh -> ash -> busybox */
  lnk(a, "bin/ash", "busybox");
  lnk(a, "bin/gone", "missing"); /* dangling: linked as it is */
  lnk(a, "bin/up", ".."); /* the package itself: not followed */
  put(a, "share/doc/x", NULL);
  lnk(a, "share/docs", "doc"); /* a directory beside it */
  lnk(b, "bin/ls", abs_target); /* the same file: not a conflict */
  lnk(b, "bin/sh", abs_target);
  put(b, "share/docs/y", NULL); /* merged with the linked directory */
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  assert_link("bin/ls", a, "bin/ls");
  assert_link("bin/sh", a, "bin/sh");
  assert_link("bin/gone", a, "bin/gone");
  assert_link("bin/up", a, "bin/up");
  ck_assert_uint_eq(st.shadowed, 2);
  ck_assert(is_dir("share/docs"));
  assert_link("share/docs/x", a, "share/doc/x");
  assert_link("share/docs/y", b, "share/docs/y");

  /* a sibling that is another file does conflict */
  reset();
  put(a, "bin/busybox", NULL);
  put(a, "bin/toybox", NULL);
  lnk(a, "bin/ls", "toybox");
  lnk(b, "bin/ls", abs_target);
  ck_assert_int_lt(build(&in, &st, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "both provide bin/ls"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_sibling_cache)
{
  /* one directory's links to the same sibling (busybox's applets) look it
   * up once: each kind of answer, taken from the cache, is still right */
  cleanup_free char *a = sp("box-1");
  cleanup_free char *b = sp("more-1");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "box", 5, pa, false }, { "more", 5, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;

  put(a, "bin/t/f", NULL);
  lnk(a, "bin/a1", "t"); /* a directory: merged through, twice */
  lnk(a, "bin/a2", "t");
  lnk(a, "bin/c1", "ch"); /* a chain to it: resolved in full, twice */
  lnk(a, "bin/c2", "ch");
  lnk(a, "bin/ch", "t");
  lnk(a, "bin/m1", "missing"); /* dangling, twice */
  lnk(a, "bin/m2", "missing");
  put(a, "bin/x", NULL);
  lnk(a, "bin/x1", "x"); /* a file, twice */
  lnk(a, "bin/x2", "x");
  put(b, "bin/a2/g", NULL);
  put(b, "bin/c2/h", NULL);
  ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
  for (const char *const *d = (const char *const[]) { "bin/a1", "bin/a2", "bin/c1", "bin/c2", NULL }; *d; d++)
    {
      cleanup_free char *f = xasprintf("%s/f", *d);
      ck_assert_msg(is_dir(*d), "%s", *d);
      assert_link(f, a, "bin/t/f");
    }
  assert_link("bin/a2/g", b, "bin/a2/g");
  assert_link("bin/c2/h", b, "bin/c2/h");
  assert_link("bin/m1", a, "bin/m1");
  assert_link("bin/m2", a, "bin/m2");
  assert_link("bin/x1", a, "bin/x1");
  assert_link("bin/x2", a, "bin/x2");

  /* the cached file is the same file as another package's link to it */
  reset();
  {
    cleanup_free char *abs_x = xasprintf("%s/bin/x", a);
    put(a, "bin/x", NULL);
    lnk(a, "bin/x1", "x");
    lnk(a, "bin/x2", "x");
    lnk(b, "bin/x2", abs_x);
    ck_assert_msg(build(&in, &st, &err) == 0, "%s", err ? err->msg : "");
    ck_assert_uint_eq(st.shadowed, 1);
  }
}
END_TEST

START_TEST(test_symlinked_dirs)
{
  cleanup_free char *a = sp("zlib-1.3");
  cleanup_free char *b = sp("libb-1");
  cleanup_free char *c = sp("data-link");
  cleanup_free char *d = sp("data-1"); /* not a package: reached through c */
  cleanup_free char *e = store_path("alias"); /* a store path that is a symlink */
  cleanup_free char *f = sp("real-1");
  cleanup_free char *e_phys = xasprintf("%s%s", root, e);
  cleanup_free char *d_share = xasprintf("%s/share", d);
  char *pa[] = { a, NULL }, *pb[] = { b, NULL }, *pc[] = { c, NULL }, *pe[] = { e, NULL };
  struct frc_envbuild_pkg pkgs[] = {
    { "zlib", 5, pa, false }, { "libb", 5, pb, false }, { "data", 5, pc, false }, { "alias", 5, pe, false }
  };
  struct frc_envbuild_input in = input(pkgs, 4);
  frc_error_t err = NULL;

  put(a, "lib64/libz.so", NULL);
  lnk(a, "lib", "lib64");
  lnk(a, "lib64/self", "."); /* a loop: linked, not followed */
  put(b, "lib/libb.so", NULL);
  lnk(c, "share", d_share);
  put(d, "share/data/x", NULL);
  ck_assert_int_eq(symlink(f + strlen("/nix/store/"), e_phys), 0);
  put(f, "bin/real", NULL);
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(is_dir("lib"));
  ck_assert(is_dir("lib64"));
  assert_link("lib/libz.so", a, "lib64/libz.so");
  assert_link("lib/libb.so", b, "lib/libb.so");
  assert_link("lib64/libz.so", a, "lib64/libz.so");
  assert_link("lib/self", a, "lib64/self");
  assert_link("lib64/self", a, "lib64/self");
  ck_assert(is_dir("share/data"));
  assert_link("share/data/x", d, "share/data/x");
  assert_link("bin/real", f, "bin/real");
}
END_TEST

START_TEST(test_escape)
{
  cleanup_free char *a = sp("escape-1");
  cleanup_free char *outside = xasprintf("%s/outside", tmp);
  cleanup_free char *secret = xasprintf("%s/outside/secret", tmp);
  char *pa[] = { a, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "escape", 5, pa, false } };
  struct frc_envbuild_input in = input(pkgs, 1);
  frc_error_t err = NULL;
  FILE *f;

  mkdirs(outside);
  f = fopen(secret, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  lnk(a, "etc", "/etc");
  lnk(a, "bin/sh", "/bin/sh");
  lnk(a, "share", "../../../..");
  lnk(a, "var", "../../var");
  lnk(a, "data", outside); /* a physical path outside the store */
  lnk(a, "bin/broken", "nowhere");
  lnk(a, "bin/loop", "loop");
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  assert_link("etc", a, "etc");
  assert_link("bin/sh", a, "bin/sh");
  assert_link("share", a, "share");
  assert_link("var", a, "var");
  assert_link("data", a, "data");
  assert_link("bin/broken", a, "bin/broken");
  assert_link("bin/loop", a, "bin/loop");
  ck_assert(!is_dir("data"));
  ck_assert(!exists("data/secret"));

  /* a package output that leads out of the store is refused */
  reset();
  {
    cleanup_free char *g = store_path("out-of-store");
    cleanup_free char *g_phys = xasprintf("%s%s", root, g);
    char *pg[] = { g, NULL };
    struct frc_envbuild_pkg p2[] = { { "out-of-store", 5, pg, false } };
    ck_assert_int_eq(symlink("/etc", g_phys), 0);
    in = input(p2, 1);
    ck_assert_int_lt(build(&in, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, "links outside the store"));
    frc_error_release(&err);
  }
}
END_TEST

/* cmd's stdout (up to 255 bytes) in got; its wait status. */
static int
shell_out(const char *cmd, char got[256])
{
  FILE *p = popen(cmd, "r");
  size_t n;
  ck_assert_ptr_nonnull(p);
  n = fread(got, 1, 255, p);
  got[n] = '\0';
  return pclose(p);
}

START_TEST(test_activation_files)
{
  cleanup_free char *a = sp("pkg-1");
  char *pa[] = { a, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "pkg", 5, pa, false } };
  struct frc_envbuild_input in = input(pkgs, 1);
  /* the value verbatim inside double quotes, as Flox writes it: bash
   * expands it when activating */
  const char *value = "it's ${HOME} $PLAIN\nline2";
  char *names[] = { "GREETING", "PLAIN", "EMPTY", NULL };
  char *values[] = { (char *) value, "x", "", NULL };
  frc_error_t err = NULL;
  cleanup_free char *envrc = NULL, *vars = NULL, *hook = NULL, *lock = NULL, *fake = NULL;
  cleanup_free char *cmd = NULL;
  char got[256];
  struct stat st;
  cleanup_free char *envrc_path = xasprintf("%s/activate.d/envrc", out);

  put(a, "manifest.lock", "fake");
  put(a, "activate.d/envrc", "fake");
  put(a, "activate.d/hook-on-activate", "rm -rf /");
  put(a, "activate.d/extra", NULL);
  in.var_names = names;
  in.var_values = values;
  in.nvars = 3;
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  envrc = slurp("activate.d/envrc");
  /* by name, GREETING after PLAIN, which it references */
  ck_assert_str_eq(envrc, "export EMPTY=\"\"\n"
                          "export PLAIN=\"x\"\n"
                          "export GREETING=\"it's ${HOME} $PLAIN\nline2\"\n");
  vars = slurp("activate.d/vars.json");
  ck_assert_str_eq(vars, "{\"GREETING\":\"it's ${HOME} $PLAIN\\nline2\","
                         "\"PLAIN\":\"x\",\"EMPTY\":\"\"}\n");
  lock = slurp("manifest.lock");
  ck_assert_str_eq(lock, lockfile);
  /* no hook: the name stays reserved, a package cannot provide one */
  ck_assert(!exists("activate.d/hook-on-activate"));
  assert_link("activate.d/extra", a, "activate.d/extra");
  ck_assert_int_eq(lstat(envrc_path, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_int_eq(st.st_mode & 07777, 0444);
  ck_assert_int_eq(st.st_mtime, 1);

  /* a shell expands it against its environment */
  cmd = xasprintf("env HOME=/h sh -c '. \"$0\" && printf %%s \"$GREETING\"' '%s'", envrc_path);
  ck_assert_int_eq(shell_out(cmd, got), 0);
  ck_assert_str_eq(got, "it's /h x\nline2");

  /* with a hook */
  reset();
  put(a, "bin/x", NULL);
  in = input(pkgs, 1);
  in.hook = "\n    echo \"hello from the hook\"\n      f() { :; }\n";
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  hook = slurp("activate.d/hook-on-activate");
  ck_assert_str_eq(hook, "\necho \"hello from the hook\"\n  f() { :; }\n");
  fake = slurp("activate.d/envrc");
  ck_assert_str_eq(fake, "");

  /* a name that is not a shell identifier */
  reset();
  names[1] = "BAD-NAME";
  in.var_names = names;
  in.var_values = values;
  in.nvars = 2;
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "`BAD-NAME` is not a valid shell variable name"));
  frc_error_release(&err);

  /* Flox's reserved names */
  reset();
  names[1] = "BASH_ENVTRACE_FILE";
  in.var_names = names;
  in.var_values = values;
  in.nvars = 2;
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "`BASH_ENVTRACE_FILE` is reserved"));
  frc_error_release(&err);
}
END_TEST

/* Dev mode's envrc sources the packages' plugin profile.d scripts after the
 * vars, as Flox's activate does (activate:272-284, helpers.bash:80-105):
 * every *.sh in glob order, not the interpreter's own names, not dotfiles,
 * in a function (a script's `local` works), the environment found from
 * envrc's own path (a var named FLOX_ENV does not move it); a dangling
 * script fails the activation as Flox's `source` does.  Run mode's envrc
 * has none of it.  The envrc built here is run by bash over a copy of the
 * tree whose scripts are real files (the tree's links name /nix/store). */
START_TEST(test_plugin_profile_d)
{
  cleanup_free char *a = sp("pkg-1");
  char *pa[] = { a, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "pkg", 5, pa, false } };
  struct frc_envbuild_input in = input(pkgs, 1);
  char *names[] = { "FROM_VARS", "OVERRIDE", "FLOX_ENV", NULL };
  char *values[] = { "v", "vars", "/elsewhere", NULL };
  frc_error_t err = NULL;
  cleanup_free char *run_envrc = NULL, *dev_envrc = NULL;
  cleanup_free char *env = xasprintf("%s/fakeenv", tmp);
  cleanup_free char *mkcmd = NULL, *cmd = NULL;
  static const struct
  {
    const char *name, *text;
  } scripts[] = {
    { "zz-plugin.sh", "local l=1\nexport PLUGIN=\"saw:$FROM_VARS:$l\" OVERRIDE=plugin ORDER=\"${ORDER-}z\"\n" },
    { "aa-first.sh", "export ORDER=\"${ORDER-}a\"\n" },
    { "0501_rust.sh", "export SHADOWED=1\n" },
    { "0100_common-run-mode-paths.sh", "export SHADOWED=2\n" },
    { "notes.txt", "export TXT=1\n" },
    { ".hidden.sh", "export HIDDEN=1\n" },
  };
  char got[256];

  in.var_names = names;
  in.var_values = values;
  in.nvars = 3;
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  run_envrc = slurp("activate.d/envrc");
  ck_assert_ptr_null(strstr(run_envrc, "profile.d"));
  reset();
  free(sp("pkg-1"));
  in.mode = FRC_ENVBUILD_DEV;
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  dev_envrc = slurp("activate.d/envrc");
  ck_assert_ptr_nonnull(strstr(dev_envrc, "export OVERRIDE=\"vars\"\n"));
  ck_assert_ptr_nonnull(strstr(dev_envrc, "/etc/profile.d/*.sh"));

  if (access(FRC_DEFAULT_BASH, X_OK) != 0)
    ck_abort_msg("%s is missing: apt-get install bash-static (tests/deps.sh)", FRC_DEFAULT_BASH);
  mkdirs(env);
  mkcmd = xasprintf("mkdir -p '%s/activate.d' '%s/etc/profile.d'", env, env);
  ck_assert_int_eq(system(mkcmd), 0);
  {
    cleanup_free char *e = xasprintf("%s/activate.d/envrc", env);
    ck_assert_int_eq(write_file_replace(e, dev_envrc, strlen(dev_envrc), 0644, &err), 0);
  }
  for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
    {
      cleanup_free char *f = xasprintf("%s/etc/profile.d/%s", env, scripts[i].name);
      ck_assert_int_eq(write_file_replace(f, scripts[i].text, strlen(scripts[i].text), 0644, &err), 0);
    }
  /* sourced at the top level, as the hook's process does, under set -euo pipefail */
  cmd = xasprintf("env -i %s -c 'set -euo pipefail; . \"$0\"; "
                  "printf %%s \"$PLUGIN|$OVERRIDE|${SHADOWED-}|${TXT-}|${HIDDEN-}|$ORDER|$FLOX_ENV|${l-}|$(type -t __flox_runc_plugins || :)\"' "
                  "'%s/activate.d/envrc'",
                  FRC_DEFAULT_BASH, env);
  ck_assert_int_eq(shell_out(cmd, got), 0);
  ck_assert_str_eq(got, "saw:v:1|plugin||||az|/elsewhere||");

  /* a dangling script fails it */
  {
    cleanup_free char *f = xasprintf("%s/etc/profile.d/mm-gone.sh", env);
    ck_assert_int_eq(symlink("/nonexistent/gone.sh", f), 0);
    ck_assert_int_ne(shell_out(cmd, got), 0);
  }
}
END_TEST

START_TEST(test_bounds)
{
  cleanup_free char *a = sp("deep-1");
  char *pa[] = { a, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "deep", 5, pa, false } };
  struct frc_envbuild_input in = input(pkgs, 1);
  struct frc_envbuild_limits lim = { .max_depth = 5 };
  frc_error_t err = NULL;

  put(a, "d/d/d/d/d/d/d/d/f", NULL);
  in.limits = &lim;
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_TOO_BIG);
  ck_assert_ptr_nonnull(strstr(err->msg, "deeper than the bound of 5 levels"));
  frc_error_release(&err);

  /* a huge directory */
  reset();
  for (int i = 0; i < 50; i++)
    {
      cleanup_free char *rel = xasprintf("bin/f%d", i);
      put(a, rel, NULL);
    }
  lim = (struct frc_envbuild_limits) { .max_dir_entries = 20 };
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_TOO_BIG);
  ck_assert_ptr_nonnull(strstr(err->msg, "a directory has more entries than the bound"));
  frc_error_release(&err);

  /* too many in all */
  lim = (struct frc_envbuild_limits) { .max_entries = 30 };
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_TOO_BIG);
  ck_assert_ptr_nonnull(strstr(err->msg, "the packages hold more entries than the bound"));
  frc_error_release(&err);

  /* symlinked directories that multiply: 2^24 paths, stopped by the bound */
  reset();
  for (int i = 0; i < 24; i++)
    {
      cleanup_free char *l1 = xasprintf("d%d/a", i);
      cleanup_free char *l2 = xasprintf("d%d/b", i);
      cleanup_free char *t = xasprintf("../d%d", i + 1);
      lnk(a, l1, t);
      lnk(a, l2, t);
    }
  put(a, "d24/leaf", NULL);
  lim = (struct frc_envbuild_limits) { .max_entries = 100000 };
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_TOO_BIG);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_missing_and_invalid)
{
  cleanup_free char *ghost = store_path("ghost-1.0");
  cleanup_free char *file = store_path("file-1.0");
  char *pg[] = { ghost, NULL }, *pf[] = { file, NULL }, *pi[] = { "/tmp/not-a-store-path", NULL };
  struct frc_envbuild_pkg pkgs[] = { { "ghost", 5, pg, false } };
  struct frc_envbuild_input in = input(pkgs, 1);
  frc_error_t err = NULL;
  cleanup_free char *expect = NULL;

  ck_assert_int_lt(build(&in, NULL, &err), 0);
  expect = xasprintf("the store path %s of package ghost is not in the store (%s/nix/store): "
                     "realise it before building the environment",
                     ghost, root);
  ck_assert_str_eq(err->msg, expect);
  frc_error_release(&err);

  put(file, NULL, "just a file");
  pkgs[0] = (struct frc_envbuild_pkg) { "file", 5, pf, false };
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "is a file, not a directory"));
  frc_error_release(&err);

  pkgs[0] = (struct frc_envbuild_pkg) { "invalid", 5, pi, false };
  ck_assert_int_lt(build(&in, NULL, &err), 0);
  ck_assert_str_eq(err->msg,
                   "the store path `/tmp/not-a-store-path` of package invalid is not a valid store "
                   "path");
  frc_error_release(&err);

  /* a propagated path that is a file is skipped, as a propagated one */
  pkgs[0] = (struct frc_envbuild_pkg) { "file", 5000, pf, true };
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
}
END_TEST

/* A draft written while Nix still realises some packages
 * (frc_envbuild_draft), then the build: exactly the tree built into an
 * empty directory, for every subset of the packages realised first, in
 * both layouts; what the draft got right is kept (not written again). */
START_TEST(test_draft)
{
  cleanup_free char *a = sp("a-1");
  cleanup_free char *b = sp("b-1");
  cleanup_free char *c = sp("c-1");
  cleanup_free char *out2 = xasprintf("%s/out2", tmp);
  char *pa[] = { a, NULL }, *pb[] = { b, NULL }, *pc[] = { c, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "a", 5, pa, false }, { "b", 5, pb, false }, { "c", 4, pc, false } };
  frc_error_t err = NULL;

  for (int i = 0; i < 30; i++)
    {
      cleanup_free char *r = xasprintf("bin/app%d", i);
      lnk(a, r, "a-main"); /* busybox's applets */
    }
  put(a, "bin/a-main", NULL);
  put(a, "bin/x", NULL); /* c's (higher precedence) wins */
  put(a, "share/man/man1/a.1", NULL);
  put(a, "lib/liba.so", NULL); /* a's only: one symlink in the end */
  put(a, "manifest.lock", NULL); /* shadowed by the activation file */
  put(a, "activate.d/hook-on-activate", NULL); /* reserved */
  put(a, "activate.d/a.sh", NULL);
  put(b, "bin/b", NULL);
  put(b, "share/man/man1/b.1", NULL); /* share/man merged deeper */
  put(b, "share/doc/b/README", NULL);
  put(b, "lib", NULL); /* a file where a has a directory: c decides nothing here */
  put(c, "bin/x", NULL);
  put(c, "etc/c.conf", NULL);
  {
    cleanup_free char *blib = xasprintf("%s%s/lib", root, b);
    unlink(blib); /* b's lib file made a conflict: drop it */
  }
  for (int layout = 0; layout < 2; layout++)
    for (unsigned set = 0; set < 8; set++)
      {
        struct frc_envbuild_pkg ready[3];
        size_t n = 0;
        struct frc_envbuild_input in = input(pkgs, 3), din;
        struct frc_envbuild_draft *d = NULL;
        struct frc_envbuild_stats st;
        cleanup_free char *cmd = NULL;
        ino_t drafted;
        struct timespec drafted_at = { 0, 0 }, lock_at = { 0, 0 };
        in.expand_all = layout == 1;
        for (size_t i = 0; i < 3; i++)
          if (set & (1u << i))
            ready[n++] = pkgs[i];
        din = in;
        din.pkgs = ready;
        din.npkgs = n;
        cmd = xasprintf("chmod -R u+w '%s' && rm -rf '%s' '%s' && mkdir '%s' '%s'", tmp, out, out2, out, out2);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
        ck_assert_msg(frc_envbuild(&in, out2, NULL, &err) == 0, "%s", err ? err->msg : "");
        ck_assert_msg(frc_envbuild_draft(&din, out, &d, &err) == 0, "%s", err ? err->msg : "");
        {
          cleanup_free char *app = xasprintf("%s/bin/app7", out);
          struct stat ast;
          drafted = lstat(app, &ast) == 0 ? ast.st_ino : 0;
          drafted_at = ast.st_ctim;
          cleanup_free char *ml = xasprintf("%s/manifest.lock", out);
          ck_assert_int_eq(lstat(ml, &ast), 0);
          lock_at = ast.st_ctim;
          ck_assert(drafted != 0 || !(set & 1));
        }
        in.draft = d;
        ck_assert_msg(build(&in, &st, &err) == 0, "layout %d set %u: %s", layout, set, err ? err->msg : "");
        frc_envbuild_draft_free(d);
        cmd = xasprintf("cd '%s' && find . -printf '%%p %%y %%m %%l %%T@\n' | LC_ALL=C sort > ../l1 && "
                        "cd '%s' && find . -printf '%%p %%y %%m %%l %%T@\n' | LC_ALL=C sort > ../l2 && "
                        "diff ../l1 ../l2 >&2 && ! grep -v ' 1.0000000000$' ../l1 && "
                        "cd '%s' && cat manifest.lock activate.d/envrc > ../l1 && cd '%s' && cat "
                        "manifest.lock activate.d/envrc > ../l2 && cmp ../l1 ../l2",
                        out, out2, out, out2);
        ck_assert_msg(system(cmd) == 0, "layout %d, %u realised first: not the tree", layout, set);
        /* what the draft got right stayed: a's applets, when a came first
         * (bin/ is merged in the tree) */
        if (set & 1)
          {
            cleanup_free char *app = xasprintf("%s/bin/app7", out);
            struct stat ast;
            ck_assert_int_eq(lstat(app, &ast), 0);
            ck_assert_msg(ast.st_ino == drafted && ast.st_ctim.tv_sec == drafted_at.tv_sec
                              && ast.st_ctim.tv_nsec == drafted_at.tv_nsec,
                          "the draft's bin/app7 was written again");
          }
        /* and its activation files, the same text */
        {
          struct stat lst;
          cleanup_free char *ml = xasprintf("%s/manifest.lock", out);
          ck_assert_int_eq(lstat(ml, &lst), 0);
          ck_assert_msg(lst.st_ctim.tv_sec == lock_at.tv_sec && lst.st_ctim.tv_nsec == lock_at.tv_nsec,
                        "the draft's manifest.lock was written again");
        }
      }
}
END_TEST

START_TEST(test_deterministic)
{
  cleanup_free char *a = sp("a-1");
  cleanup_free char *b = sp("b-1");
  cleanup_free char *out2 = xasprintf("%s/out2", tmp);
  cleanup_free char *cmd = NULL;
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "a", 5, pa, false }, { "b", 6, pb, false } };
  struct frc_envbuild_input in = input(pkgs, 2);
  frc_error_t err = NULL;

  for (int i = 0; i < 20; i++)
    {
      cleanup_free char *r1 = xasprintf("share/x/f%d", (i * 7) % 20);
      cleanup_free char *r2 = xasprintf("share/x/f%d", (i * 3) % 23);
      put(a, r1, NULL);
      put(b, r2, NULL);
    }
  ck_assert_msg(build(&in, NULL, &err) == 0, "%s", err ? err->msg : "");
  mkdirs(out2);
  ck_assert_int_eq(frc_envbuild(&in, out2, NULL, &err), 0);
  cmd = xasprintf("cd '%s' && find . -printf '%%p %%y %%m %%l %%T@\\n' | LC_ALL=C sort > ../l1 && "
                  "cd '%s' && find . -printf '%%p %%y %%m %%l %%T@\\n' | LC_ALL=C sort > ../l2 && "
                  "cmp -s ../l1 ../l2 && ! grep -v ' 1.0000000000$' ../l1",
                  out, out2);
  ck_assert_int_eq(system(cmd), 0);

  /* out_dir must be empty */
  ck_assert_int_lt(frc_envbuild(&in, out2, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "cannot create the directory `activate.d`"));
  frc_error_release(&err);
}
END_TEST

static ino_t
ino_of(const char *dir, const char *rel, nlink_t *nlink)
{
  cleanup_free char *p = xasprintf("%s/%s", dir, rel);
  struct stat st;
  ck_assert_msg(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "%s is not a symlink", p);
  if (nlink)
    *nlink = st.st_nlink;
  return st.st_ino;
}

/* The listing test_deterministic compares: every entry, kind, mode, target
 * and time. */
static char *
listing(const char *dir, const char *name)
{
  cleanup_free char *cmd = xasprintf("cd '%s' && find . -printf '%%p %%y %%m %%l %%T@\\n' | "
                                     "LC_ALL=C sort > '%s/%s'",
                                     dir, tmp, name);
  ck_assert_int_eq(system(cmd), 0);
  return xasprintf("%s/%s", tmp, name);
}

/* A build only looks the pool up and adds nothing to it;
 * frc_linkpool_add_tree adds the tree's symlinks afterwards, at any depth,
 * each once. */
START_TEST(test_link_pool_later)
{
  cleanup_free char *a = sp("hello-2.12");
  cleanup_free char *b = sp("jq-1.7");
  cleanup_free char *pool = xasprintf("%s/pool", tmp);
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg p1[] = { { "hello", 5, pa, false }, { "jq", 5, pb, false } };
  struct frc_envbuild_input in1 = input(p1, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;
  size_t added = 99;
  nlink_t nl;

  in1.expand_all = false;
  put(a, "bin/hello", NULL);
  put(a, "share/man/man1/hello.1", NULL);
  put(a, "share/doc/hello/README", NULL);
  put(b, "bin/jq", NULL);
  put(b, "share/man/man1/jq.1", NULL);
  mkdirs(pool);
  in1.link_pool = pool;
  ck_assert_msg(build(&in1, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.links, 5);
  ino_of(out, "bin/hello", &nl);
  ck_assert_uint_eq(nl, 1);
  frc_linkpool_add_tree(pool, out, &added);
  ck_assert_uint_eq(added, 5);
  ino_of(out, "bin/hello", &nl);
  ck_assert_uint_eq(nl, 2);
  ino_of(out, "share/man/man1/jq.1", &nl);
  ck_assert_uint_eq(nl, 2);
  ino_of(out, "share/doc", &nl);
  ck_assert_uint_eq(nl, 2);
  frc_linkpool_add_tree(pool, out, &added);
  ck_assert_uint_eq(added, 0);
}
END_TEST

/* The node's pool (lib/linkpool.h): a second tree's symlinks with the same
 * targets are the first's inodes; the trees read exactly as without the
 * pool; a pool entry that does not hold its target is not used; without a
 * pool directory every symlink is the tree's own. */
START_TEST(test_link_pool)
{
  cleanup_free char *a = sp("hello-2.12");
  cleanup_free char *b = sp("jq-1.7");
  cleanup_free char *c = sp("curl-8.0");
  cleanup_free char *pool = xasprintf("%s/pool", tmp);
  cleanup_free char *out2 = xasprintf("%s/out2", tmp);
  cleanup_free char *out3 = xasprintf("%s/out3", tmp);
  cleanup_free char *out4 = xasprintf("%s/out4", tmp);
  cleanup_free char *cmd = NULL;
  char *pa[] = { a, NULL }, *pb[] = { b, NULL }, *pc[] = { c, NULL };
  struct frc_envbuild_pkg p1[] = { { "hello", 5, pa, false }, { "jq", 5, pb, false } };
  struct frc_envbuild_pkg p2[] = { { "hello", 5, pa, false }, { "curl", 5, pc, false } };
  struct frc_envbuild_input in1 = input(p1, 2), in2 = input(p2, 2);
  struct frc_envbuild_stats st;
  frc_error_t err = NULL;
  nlink_t nl;

  in1.expand_all = in2.expand_all = false;
  put(a, "bin/hello", NULL);
  put(a, "share/man/man1/hello.1", NULL);
  put(a, "share/doc/hello/README", NULL);
  put(b, "bin/jq", NULL);
  put(b, "share/man/man1/jq.1", NULL);
  put(c, "bin/curl", NULL);
  put(c, "share/man/man1/curl.1", NULL);
  put(c, "lib/libcurl.so", NULL);
  mkdirs(pool);
  in1.link_pool = in2.link_pool = pool;

  ck_assert_msg(build(&in1, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.links, 5); /* bin/{hello,jq} share/man/man1/{hello,jq}.1 share/doc */
  ck_assert_uint_eq(st.shared, 0);
  frc_linkpool_add_tree(pool, out, NULL); /* as the record's confirmation does */
  ino_of(out, "bin/hello", &nl);
  ck_assert_uint_eq(nl, 2); /* the tree's and the pool's */

  mkdirs(out2);
  ck_assert_msg(frc_envbuild(&in2, out2, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.links, 6); /* + lib, the one package's directory */
  ck_assert_uint_eq(st.shared, 3); /* hello's: bin/hello, share/man/man1/hello.1, share/doc */
  ck_assert(ino_of(out, "bin/hello", NULL) == ino_of(out2, "bin/hello", &nl));
  ck_assert_uint_eq(nl, 3);
  ck_assert(ino_of(out, "share/doc", NULL) == ino_of(out2, "share/doc", NULL));
  ck_assert(ino_of(out, "share/man/man1/hello.1", NULL)
            == ino_of(out2, "share/man/man1/hello.1", NULL));
  frc_linkpool_add_tree(pool, out2, NULL);
  ino_of(out2, "bin/curl", &nl);
  ck_assert_uint_eq(nl, 2);

  /* the same tree as without the pool, entry for entry */
  in2.link_pool = NULL;
  mkdirs(out3);
  ck_assert_int_eq(frc_envbuild(&in2, out3, &st, &err), 0);
  ck_assert_uint_eq(st.shared, 0);
  {
    cleanup_free char *l2 = listing(out2, "l2");
    cleanup_free char *l3 = listing(out3, "l3");
    cmd = xasprintf("cmp -s '%s' '%s' && ! grep -v ' 1.0000000000$' '%s'", l2, l3, l2);
    ck_assert_int_eq(system(cmd), 0);
  }

  /* a pool entry holding another target is not used */
  {
    cleanup_free char *hello = xasprintf("%s/bin/hello", a);
    cleanup_free char *jq = xasprintf("%s/bin/jq", b);
    cleanup_free char *entry = NULL;
    /* the pool's entry of bin/hello is the one linked as out/bin/hello */
    free(cmd);
    cmd = xasprintf("find '%s' -samefile '%s/bin/hello' | grep -F '%s/' > '%s/entry'", pool, out,
                    pool, tmp);
    ck_assert_int_eq(system(cmd), 0);
    entry = xasprintf("%s/entry", tmp);
    {
      char *text = NULL;
      ck_assert_int_eq(read_file_bounded(entry, 4096, &text, NULL, &err), 0);
      *strchr(text, '\n') = '\0';
      free(entry);
      entry = text;
    }
    ck_assert_int_eq(unlink(entry), 0);
    ck_assert_int_eq(symlink(jq, entry), 0);
    in2.link_pool = pool;
    mkdirs(out4);
    ck_assert_msg(frc_envbuild(&in2, out4, &st, &err) == 0, "%s", err ? err->msg : "");
    ck_assert_uint_eq(st.shared, 5); /* all of out2's but bin/hello, made anew */
    {
      cleanup_free char *p = xasprintf("%s/bin/hello", out4);
      char buf[PATH_MAX];
      ssize_t n = readlink(p, buf, sizeof(buf) - 1);
      ck_assert_int_gt(n, 0);
      buf[n] = '\0';
      ck_assert_str_eq(buf, hello);
    }
    ino_of(out4, "bin/hello", &nl);
    ck_assert_uint_eq(nl, 1);
  }

  /* no pool directory: all the tree's own */
  free(cmd);
  cmd = xasprintf("rm -rf '%s' '%s'", pool, out3);
  ck_assert_int_eq(system(cmd), 0);
  mkdirs(out3);
  ck_assert_int_eq(frc_envbuild(&in2, out3, &st, &err), 0);
  ck_assert_uint_eq(st.shared, 0);
  ino_of(out3, "bin/hello", &nl);
  ck_assert_uint_eq(nl, 1);
}
END_TEST

/* buildenv/buildenvLib/tests/testData/outdentText: each input and output. */
START_TEST(test_outdent)
{
  static const char *const cases[][2] = {
    { "    4 spaces indent\n  2 spaces indent\nno indent\n",
      "    4 spaces indent\n  2 spaces indent\nno indent\n" },
    { "no indent\n  2 spaces indent\n    4 spaces indent\n",
      "no indent\n  2 spaces indent\n    4 spaces indent\n" },
    { "  2 spaces\n    4 spaces\n", "2 spaces\n  4 spaces\n" },
    { "  2 spaces indent\n\n    4 spaces indent\n", "2 spaces indent\n\n  4 spaces indent\n" },
    { "\n  indented 2\n    indented 4\n", "\nindented 2\n  indented 4\n" },
    { "", "" },
    { "  2 spaces indent\n    4 spaces indent\n", "2 spaces indent\n  4 spaces indent\n" },
    { "  2 spaces\n\t1 tab\n", "  2 spaces\n\t1 tab\n" },
    { "\t1 tab\n\t\t2 tab\n", "\t1 tab\n\t\t2 tab\n" },
    { "   \n     x", "\n  x" }, /* a blank line of spaces counts */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_free char *o = frc_outdent_text(cases[i][0]);
      ck_assert_msg(strcmp(o, cases[i][1]) == 0, "case %zu: [%s]", i, o);
    }
}
END_TEST

/* cli/flox-rust-sdk/src/providers/vars_order.rs: by name unless referenced. */
START_TEST(test_vars_order)
{
  char *names[] = { "b", "a", "c", "PATH", "d" };
  char *values[] = { "${c:-x}", "$b/y", "plain \\$a", "$PATH:$d", "${d}" };
  size_t order[5];
  frc_error_t err = NULL;
  const char *want[] = { "c", "b", "a", "d", "PATH" };
  char *cyc_names[] = { "x", "y" };
  char *cyc_values[] = { "$y", "${x}" };

  ck_assert_int_eq(frc_vars_render_order(names, values, 5, order, &err), 0);
  /* ASCII order: PATH first unless it waits for d; c before b before a */
  for (size_t i = 0; i < 5; i++)
    ck_assert_msg(strcmp(names[order[i]], want[i]) == 0, "position %zu: %s", i, names[order[i]]);
  ck_assert_int_lt(frc_vars_render_order(cyc_names, cyc_values, 2, order, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "cycle"));
  frc_error_release(&err);
}
END_TEST

/* A lockfile is attacker text: a value of 600k "${a" (no '}') and a
 * thousand vars once cost hours of root CPU (each name rescanned the value,
 * each "${" searched for a '}' to the end).  Linear now. */
START_TEST(test_vars_order_pathological)
{
  enum { N = 1000, REPS = 600000 };
  char **names = xmalloc0(N * sizeof(char *));
  char **values = xmalloc0(N * sizeof(char *));
  size_t *order = xmalloc0(N * sizeof(size_t));
  char *big = xmalloc0(3 * REPS + 1);
  frc_error_t err = NULL;
  struct timespec t0, t1;
  double took;

  for (size_t i = 0; i < REPS; i++)
    memcpy(big + 3 * i, "${a", 3);
  for (size_t i = 0; i < N; i++)
    {
      names[i] = i == 0 ? xstrdup("a") : xasprintf("a%zu", i);
      values[i] = i == 1 ? xstrdup(big) : i == 2 ? xasprintf("%s}", big) : xstrdup("$a");
    }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_msg(frc_vars_render_order(names, values, N, order, &err) == 0, "%s", err ? err->msg : "");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  took = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_msg(took < 2.0, "took %.2f s", took);
  /* "a" first (referenced by all but a1, whose "${a" has no '}'), then by name */
  ck_assert_str_eq(names[order[0]], "a");
  ck_assert_str_eq(names[order[1]], "a1");
  /* too many vars: refused before anything is allocated for them */
  ck_assert_int_lt(frc_vars_render_order(names, values, FRC_LOCK_VARS_MAX + 1, order, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "more than"));
  frc_error_release(&err);
  for (size_t i = 0; i < N; i++)
    {
      free(names[i]);
      free(values[i]);
    }
  free(names);
  free(values);
  free(order);
  free(big);
}
END_TEST

/* ---- propagated packages (lib/propagate.c, builder.pl addPkg) ---- */

static struct frc_lockfile
prop_lock(const char *a, const char *b)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  cleanup_free char *t = xasprintf(
      "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":["
      "{\"install_id\":\"a\",\"system\":\"x86_64-linux\",\"priority\":5,"
      "\"outputs_to_install\":[\"out\"],\"outputs\":{\"out\":\"%s\"}},"
      "{\"install_id\":\"b\",\"system\":\"x86_64-linux\",\"priority\":2,"
      "\"outputs_to_install\":[\"lib\"],\"outputs\":{\"lib\":\"%s\"}}]}",
      a, b);
  ck_assert_msg(frc_lockfile_parse(t, strlen(t), "x86_64-linux", &l, &err) == 0, "%s",
                err ? err->msg : "");
  return l;
}

START_TEST(test_propagate)
{
  cleanup_free char *a = sp("a-1.0");
  cleanup_free char *b = sp("b-1.0");
  cleanup_free char *u = sp("user-1.0");
  cleanup_free char *deep = sp("deep-1.0");
  cleanup_free char *bi = sp("buildinput-1.0");
  cleanup_free char *stubs = sp("cuda-1.0-stubs");
  cleanup_free char *second = sp("secondline-1.0");
  cleanup_free char *ua = xasprintf("%s\n%s\n", u, second); /* only the first line counts */
  cleanup_free char *bia = xasprintf("%s %s", bi, stubs);
  struct frc_lockfile l;
  struct frc_propagated *p = NULL;
  size_t n = 0;
  frc_error_t err = NULL;

  put(a, "nix-support/propagated-user-env-packages", ua);
  put(a, "nix-support/propagated-build-inputs", bia);
  put(u, "nix-support/propagated-user-env-packages", deep);
  put(b, "nix-support/propagated-user-env-packages", u); /* u again, from priority 2 */
  l = prop_lock(a, b);

  /* run: user-env packages only, recursively; u's priority is the last
   * propagator's (b, 2): 2000 + 0, then deep at 2000 + 1 */
  ck_assert_msg(frc_propagate(root, &l, FRC_MODE_RUN, &p, &n, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(p[0].path, u);
  ck_assert_int_eq(p[0].priority, 2000);
  ck_assert_str_eq(p[1].path, deep);
  ck_assert_int_eq(p[1].priority, 2001);
  frc_propagated_free(p, n);

  /* dev: also the build inputs, not -stubs; the counter goes on from run's
   * two: buildinput (a, 5) 5000 + 2, user (b, 2) 2000 + 3, deep 2003 + 4 */
  ck_assert_int_eq(frc_propagate(root, &l, FRC_MODE_DEV, &p, &n, &err), 0);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(p[0].path, bi);
  ck_assert_int_eq(p[0].priority, 5002);
  ck_assert_str_eq(p[1].path, u);
  ck_assert_int_eq(p[1].priority, 2003);
  ck_assert_str_eq(p[2].path, deep);
  ck_assert_int_eq(p[2].priority, 2007);
  frc_propagated_free(p, n);
  frc_lockfile_release(&l);

  /* hostile lists: not a store path */
  put(b, "nix-support/propagated-user-env-packages", "/etc/passwd");
  l = prop_lock(a, b);
  ck_assert_int_lt(frc_propagate(root, &l, FRC_MODE_RUN, &p, &n, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "not a store path"));
  frc_error_release(&err);
  frc_lockfile_release(&l);
}
END_TEST

/* builder.pl's byPackageName: name, then version, then the path. */
START_TEST(test_store_path_order)
{
  ck_assert_int_lt(frc_store_path_cmp("/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-propdeep-1.0",
                                      "/nix/store/00000000000000000000000000000000-propdep-1.0"),
                   0);
  ck_assert_int_lt(frc_store_path_cmp("/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-foo-1.0",
                                      "/nix/store/00000000000000000000000000000000-foo-2.0"),
                   0);
  ck_assert_int_lt(frc_store_path_cmp("/nix/store/00000000000000000000000000000000-foo-1.0",
                                      "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-foo-1.0"),
                   0);
}
END_TEST

/* A propagated package clashing at its priority keeps what is there. */
START_TEST(test_propagated_collision)
{
  cleanup_free char *a = sp("a-1.0");
  cleanup_free char *b = sp("b-1.0");
  char *pa[] = { a, NULL }, *pb[] = { b, NULL };
  struct frc_envbuild_pkg pkgs[] = { { "a", 5000, pa, false }, { "b", 5000, pb, true } };
  struct frc_envbuild_input in = input(pkgs, 2);
  frc_error_t err = NULL;
  cleanup_free char *t = NULL;

  put(a, "bin/tool", "a");
  put(b, "bin/tool", "b");
  ck_assert_msg(frc_envbuild(&in, out, NULL, &err) == 0, "%s", err ? err->msg : "");
  t = xasprintf("%s/bin/tool", a);
  cleanup_free char *got = rl("bin/tool");
  ck_assert_str_eq(got, t);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("envbuild");
  TCase *tc = tcase_create("envbuild");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_collapse);
  tcase_add_test(tc, test_merge_bin);
  tcase_add_test(tc, test_merge_ignored);
  tcase_add_test(tc, test_priority);
  tcase_add_test(tc, test_conflict);
  tcase_add_test(tc, test_file_vs_dir);
  tcase_add_test(tc, test_identical);
  tcase_add_test(tc, test_symlinked_dirs);
  tcase_add_test(tc, test_sibling_links);
  tcase_add_test(tc, test_sibling_cache);
  tcase_add_test(tc, test_escape);
  tcase_add_test(tc, test_activation_files);
  tcase_add_test(tc, test_plugin_profile_d);
  tcase_add_test(tc, test_outdent);
  tcase_add_test(tc, test_vars_order);
  tcase_add_test(tc, test_vars_order_pathological);
  tcase_add_test(tc, test_bounds);
  tcase_add_test(tc, test_missing_and_invalid);
  tcase_add_test(tc, test_deterministic);
  tcase_add_test(tc, test_draft);
  tcase_add_test(tc, test_link_pool);
  tcase_add_test(tc, test_link_pool_later);
  tcase_add_test(tc, test_propagate);
  tcase_add_test(tc, test_store_path_order);
  tcase_add_test(tc, test_propagated_collision);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
