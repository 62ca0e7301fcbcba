/* The closure's createContainer hook (lib/bindhook.c): its place in the
 * spec, and the binds it makes, run in a private mount namespace of the test
 * process (as root, or as root of a user namespace of its own): read-only,
 * nosuid, nodev, through the new mount API and through mount(2); and the
 * refusals that keep the image's symlinks and foreign mounts from steering
 * a bind. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bindrun.h"
#include "json.h"
#include "mounts.h"
#include "spec.h"
#include "testdir.h"
#include "util.h"
#include "viewpin.h"

static char tmpdir[] = "/tmp/frc-test-bindhook-XXXXXX";

static void
setup(void)
{
  frc_test_dir_make(tmpdir, "bindhook");
}

static void
teardown(void)
{
  /* the test's mounts live in its own namespace: gone with it, but they
   * would keep the directories from being removed */
  cleanup_free char *nix = xasprintf("%s/root/nix", tmpdir);
  cleanup_free char *cache = xasprintf("%s/root/run/flox/env-cache", tmpdir);
  cleanup_free char *ca = xasprintf("%s/root/run/flox/ca-bundle.crt", tmpdir);
  cleanup_free char *pins = xasprintf("%s/state/viewns", tmpdir); /* test_view_pin */
  umount2(pins, MNT_DETACH);
  umount2(nix, MNT_DETACH);
  umount2(cache, MNT_DETACH);
  umount2(ca, MNT_DETACH);
  frc_test_dir_remove(tmpdir);
}

static void
write_proc(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
  close(fd);
}

static void
write_text(const char *path, const char *text)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0644, &err), 0);
}

static void
mkdir_ok(const char *rel)
{
  cleanup_free char *p = xasprintf("%s/%s", tmpdir, rel);
  ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

/* ours first, an engine's hook kept after it, one of ours however often */
START_TEST(test_spec_hook)
{
  cleanup_free char *bundle = xasprintf("%s/bundle", tmpdir);
  cleanup_free char *cfg = xasprintf("%s/config.json", bundle);
  struct frc_spec s cleanup_spec = { 0 };
  frc_error_t err = NULL;
  char *paths[] = { "/nix/store/aaa-a", "/nix/store/bbb-b", NULL };
  yajl_val list, args;

  ck_assert_int_eq(mkdir(bundle, 0755), 0);
  write_text(cfg, "{\"root\":{\"path\":\"rootfs\"},\"hooks\":{\"createContainer\":"
                  "[{\"path\":\"/usr/bin/engine-hook\",\"args\":[\"engine-hook\",\"x\"]}]}}");
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  frc_bindhook_add(&s, "/usr/bin/flox-runc", NULL, "/b/rootfs", "/v", "", paths);
  frc_bindhook_add(&s, "/usr/bin/flox-runc", NULL, "/b/rootfs", "/v", "", paths);
  list = frc_json_get(frc_json_get(s.doc.root, "hooks"), "createContainer");
  ck_assert_int_eq(list->u.array.len, 2);
  ck_assert_str_eq(frc_json_get_string(list->u.array.values[0], "path"), "/usr/bin/flox-runc");
  args = frc_json_get(list->u.array.values[0], "args");
  ck_assert_int_eq(args->u.array.len, 7);
  ck_assert_str_eq(args->u.array.values[1]->u.string, FRC_BINDHOOK_VERB);
  ck_assert_str_eq(args->u.array.values[2]->u.string, "/b/rootfs");
  ck_assert_str_eq(args->u.array.values[4]->u.string, "");
  ck_assert_str_eq(args->u.array.values[6]->u.string, "/nix/store/bbb-b");
  ck_assert_str_eq(frc_json_get_string(list->u.array.values[1], "path"), "/usr/bin/engine-hook");
  ck_assert_int_eq(frc_bindhook_remove(&s), 1);
  ck_assert_int_eq(list->u.array.len, 1);
  ck_assert_str_eq(frc_json_get_string(list->u.array.values[0], "path"), "/usr/bin/engine-hook");
}
END_TEST

/* with the runtime's --log: the hook's error goes there too (crun sends a
 * hook's stderr to /dev/null; e2e 13c); still ours, still replaced */
START_TEST(test_spec_hook_log)
{
  cleanup_free char *bundle = xasprintf("%s/bundle", tmpdir);
  cleanup_free char *cfg = xasprintf("%s/config.json", bundle);
  struct frc_spec s cleanup_spec = { 0 };
  struct frc_logger log = { .path = "/run/x/log.json", .json = true };
  frc_error_t err = NULL;
  char *paths[] = { "/nix/store/aaa-a", NULL };
  yajl_val list, args;

  ck_assert_int_eq(mkdir(bundle, 0755), 0);
  write_text(cfg, "{\"root\":{\"path\":\"rootfs\"}}");
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  frc_bindhook_add(&s, "/usr/bin/flox-runc", &log, "/b/rootfs", "/v", "", paths);
  frc_bindhook_add(&s, "/usr/bin/flox-runc", &log, "/b/rootfs", "/v", "", paths);
  list = frc_json_get(frc_json_get(s.doc.root, "hooks"), "createContainer");
  ck_assert_int_eq(list->u.array.len, 1);
  args = frc_json_get(list->u.array.values[0], "args");
  ck_assert_int_eq(args->u.array.len, 10);
  ck_assert_str_eq(args->u.array.values[1]->u.string, "--log");
  ck_assert_str_eq(args->u.array.values[2]->u.string, "/run/x/log.json");
  ck_assert_str_eq(args->u.array.values[3]->u.string, "--log-format");
  ck_assert_str_eq(args->u.array.values[4]->u.string, "json");
  ck_assert_str_eq(args->u.array.values[5]->u.string, FRC_BINDHOOK_VERB);
  ck_assert_str_eq(args->u.array.values[6]->u.string, "/b/rootfs");
  log.json = false;
  frc_bindhook_add(&s, "/usr/bin/flox-runc", &log, "/b/rootfs", "/v", "", paths);
  list = frc_json_get(frc_json_get(s.doc.root, "hooks"), "createContainer");
  ck_assert_int_eq(list->u.array.len, 1);
  args = frc_json_get(list->u.array.values[0], "args");
  ck_assert_str_eq(args->u.array.values[4]->u.string, "text");
  ck_assert_int_eq(frc_bindhook_remove(&s), 1);
  ck_assert_int_eq(list->u.array.len, 0);
}
END_TEST

/* n store paths of 80-odd bytes each (NULL-terminated; free with free_paths) */
static char **
many_paths(size_t n)
{
  char **v = xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    v[i] = xasprintf("/nix/store/%032zu-package-number-%06zu-with-a-name-1.2.3", i, i);
  v[n] = NULL;
  return v;
}

static void
free_paths(char **v)
{
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

static bool
usable(const char *spec_json, char *const *paths, unsigned long long stack)
{
  cleanup_free char *bundle = xasprintf("%s/bundle-usable", tmpdir);
  cleanup_free char *cfg = xasprintf("%s/config.json", bundle);
  struct frc_spec s cleanup_spec = { 0 };
  frc_error_t err = NULL;
  ck_assert_msg(mkdir(bundle, 0755) == 0 || errno == EEXIST, "mkdir: %s", strerror(errno));
  write_text(cfg, spec_json);
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  return frc_bindhook_usable(&s, "/usr/bin/flox-runc", NULL, "/b/rootfs", "/v", "", paths, stack);
}

/* no hook in a user namespace (its root cannot open the node's private
 * view: e2e 13b); none whose argv execve would refuse (E2BIG: a quarter of
 * the stack limit, 128 KiB at least, less the environment's reserve) */
START_TEST(test_usable)
{
  static const char plain[] = "{\"root\":{\"path\":\"rootfs\"}}";
  char *two[] = { "/nix/store/aaa-a", "/nix/store/bbb-b", NULL };
  char **k3 = many_paths(3000), **k30 = many_paths(30000);
  const unsigned long long mib8 = 8ULL << 20;

  ck_assert(usable(plain, two, mib8));
  ck_assert(!usable("{\"root\":{\"path\":\"rootfs\"},\"linux\":{\"namespaces\":"
                    "[{\"type\":\"mount\"},{\"type\":\"user\"}]}}",
                    two, mib8));
  ck_assert(!usable("{\"root\":{\"path\":\"rootfs\"},\"linux\":{\"uidMappings\":"
                    "[{\"containerID\":0,\"hostID\":100000,\"size\":65536}]}}",
                    two, mib8));
  /* a pod's crun hook-output annotations (host paths crun opens as root
   * for hooks): no hook of flox-runc's makes crun open them */
  ck_assert(!usable("{\"root\":{\"path\":\"rootfs\"},\"annotations\":"
                    "{\"run.oci.hooks.stdout\":\"/etc/nologin\"}}",
                    two, mib8));
  ck_assert(!usable("{\"root\":{\"path\":\"rootfs\"},\"annotations\":"
                    "{\"run.oci.hooks.stderr\":\"/etc/nologin\"}}",
                    two, mib8));
  ck_assert(usable("{\"root\":{\"path\":\"rootfs\"},\"annotations\":"
                   "{\"flox.dev/environment\":\"a/b\"}}",
                   two, mib8));
  /* ~270 KB of argv: fine under 8 MiB of stack (2 MiB), not under 512 KiB
   * (128 KiB), nor when the spec lowers RLIMIT_STACK so */
  ck_assert(usable(plain, k3, mib8));
  ck_assert(usable(plain, k3, ~0ULL));
  ck_assert(!usable(plain, k3, 512 * 1024));
  ck_assert(!usable("{\"root\":{\"path\":\"rootfs\"},\"process\":{\"rlimits\":"
                    "[{\"type\":\"RLIMIT_STACK\",\"soft\":524288,\"hard\":524288}]}}",
                    k3, mib8));
  /* ~2.7 MB: more than execve takes under 8 MiB (runc: "fork/exec ...:
   * argument list too long") */
  ck_assert(!usable(plain, k30, mib8));
  ck_assert(usable(plain, k30, 64ULL << 20)); /* 6 MiB: the kernel's most */
  ck_assert(usable(plain, k30, ~0ULL));
  free_paths(k3);
  free_paths(k30);
}
END_TEST

/* A Flox container's spec loses the pod's crun hook-output annotations
 * (crun would open those node paths as root for the engine's hooks as well
 * as flox-runc's), with one warning line each; flox-runc's own
 * run.oci.hooks.stderr stays; the closure hook is then usable. */
START_TEST(test_screen)
{
  cleanup_free char *bundle = xasprintf("%s/bundle-screen", tmpdir);
  cleanup_free char *cfg = xasprintf("%s/config.json", bundle);
  cleanup_free char *logfile = xasprintf("%s/screen.log", tmpdir);
  struct frc_logger log = { .path = logfile, .json = false, .stderr_fd = -1 };
  char *two[] = { "/nix/store/aaa-a", "/nix/store/bbb-b", NULL };
  struct frc_spec s cleanup_spec = { 0 };
  frc_error_t err = NULL;
  cleanup_free char *text = NULL;

  ck_assert_msg(mkdir(bundle, 0755) == 0 || errno == EEXIST, "mkdir: %s", strerror(errno));
  write_text(cfg, "{\"root\":{\"path\":\"rootfs\"},\"annotations\":{\"a\":\"b\","
                  "\"run.oci.hooks.stdout\":\"/etc/nologin\",\"run.oci.hooks.stderr\":\"/etc/x\\ny\"}}");
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  ck_assert(!frc_bindhook_usable(&s, "/usr/bin/flox-runc", NULL, "/b/rootfs", "/v", "", two, 8ULL << 20));
  ck_assert(frc_bindhook_screen(&s, &log));
  ck_assert_ptr_null(frc_spec_annotation(&s, "run.oci.hooks.stdout", NULL));
  ck_assert_ptr_null(frc_spec_annotation(&s, "run.oci.hooks.stderr", NULL));
  ck_assert_str_eq(frc_spec_annotation(&s, "a", NULL), "b");
  ck_assert(frc_bindhook_usable(&s, "/usr/bin/flox-runc", NULL, "/b/rootfs", "/v", "", two, 8ULL << 20));
  ck_assert_int_eq(read_file_bounded(logfile, 1 << 16, &text, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(text, "removed the spec's run.oci.hooks.stdout `/etc/nologin`"));
  ck_assert_ptr_nonnull(strstr(text, "removed the spec's run.oci.hooks.stderr `/etc/x\\"));
  ck_assert_ptr_null(strstr(text, "/etc/x\ny")); /* one line each: the newline escaped */
  ck_assert_ptr_nonnull(strstr(text, "level=warning"));
  /* flox-runc's own value stays; nothing more to remove */
  frc_spec_set_annotation(&s, "run.oci.hooks.stderr", "/proc/self/fd/2");
  ck_assert(!frc_bindhook_screen(&s, &log));
  ck_assert_str_eq(frc_spec_annotation(&s, "run.oci.hooks.stderr", NULL), "/proc/self/fd/2");
}
END_TEST

/* A private mount namespace for this (forked) test process; as a user
 * without privileges, root of a user namespace mapping our own ids. */
static void
private_mount_ns(void)
{
  if (geteuid() != 0)
    {
      uid_t uid = geteuid();
      gid_t gid = getegid();
      char map[64];
      ck_assert_msg(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
      write_proc("/proc/self/setgroups", "deny");
      snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
      write_proc("/proc/self/uid_map", map);
      snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
      write_proc("/proc/self/gid_map", map);
    }
  else
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
  ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

/* T/store/nix/store/{aaa-pkg/,bbb-file}, the view T/view/store/ with their
 * mount points, T/root/nix with the view bound on it (the runtime's /nix). */
static void
make_tree(void)
{
  static const char *const dirs[] = { "store", "store/nix", "store/nix/store", "store/nix/store/aaa-pkg",
                                      "view", "view/store", "view/store/aaa-pkg", "root",
                                      "root/nix", "elsewhere", NULL };
  for (const char *const *d = dirs; *d; d++)
    mkdir_ok(*d);
  {
    cleanup_free char *f = xasprintf("%s/store/nix/store/aaa-pkg/f", tmpdir);
    cleanup_free char *g = xasprintf("%s/store/nix/store/bbb-file", tmpdir);
    cleanup_free char *h = xasprintf("%s/view/store/bbb-file", tmpdir);
    write_text(f, "pkg\n");
    write_text(g, "file\n");
    write_text(h, "");
  }
}

static void
bind_view(void)
{
  cleanup_free char *view = xasprintf("%s/view", tmpdir);
  cleanup_free char *nix = xasprintf("%s/root/nix", tmpdir);
  ck_assert_int_eq(mount(view, nix, NULL, MS_BIND, NULL), 0);
}

static int
run_hook(const char *root, const char *const *paths, bool legacy, frc_error_t *err)
{
  cleanup_free char *r = xasprintf("%s/%s", tmpdir, root);
  cleanup_free char *view = xasprintf("%s/view", tmpdir);
  cleanup_free char *store = xasprintf("%s/store", tmpdir);
  char *argv[32] = { r, view, store };
  int n = 3;
  for (; *paths; paths++)
    argv[n++] = (char *) *paths;
  return frc_bindhook_run(NULL, n, argv, legacy, err);
}

/* the hook refuses args on root, its error naming needle (NULL: any) */
static void
expect_refusal(const char *root, const char *const *args, bool legacy, const char *needle)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(run_hook(root, args, legacy, &err), -1);
  ck_assert_ptr_nonnull(err);
  if (needle)
    ck_assert_msg(strstr(err->msg, needle) != NULL, "`%s` not in: %s", needle, err->msg);
  frc_error_release(&err);
}

/* path (a bound closure path's file) reads want, on a ro,nosuid,nodev mount */
static void
check_bound_file(const char *path, const char *want)
{
  cleanup_free char *text = NULL;
  size_t len;
  frc_error_t err = NULL;
  struct statvfs sv;

  ck_assert_msg(read_file_bounded(path, 64, &text, &len, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(text, want);
  ck_assert_int_eq(statvfs(path, &sv), 0);
  ck_assert(sv.f_flag & ST_RDONLY);
  ck_assert(sv.f_flag & ST_NOSUID);
  ck_assert(sv.f_flag & ST_NODEV);
}

static void
check_binds(void)
{
  cleanup_free char *f = xasprintf("%s/root/nix/store/aaa-pkg/f", tmpdir);
  cleanup_free char *g = xasprintf("%s/root/nix/store/aaa-pkg/g", tmpdir);
  cleanup_free char *file = xasprintf("%s/root/nix/store/bbb-file", tmpdir);

  check_bound_file(f, "pkg\n");
  ck_assert_int_eq(open(g, O_WRONLY | O_CREAT, 0644), -1);
  ck_assert_int_eq(errno, EROFS);
  check_bound_file(file, "file\n");
  ck_assert_int_eq(open(file, O_WRONLY), -1);
  ck_assert_int_eq(errno, EROFS);
}

static void
test_binds(bool legacy)
{
  static const char *const paths[] = { "/nix/store/aaa-pkg", "/nix/store/bbb-file", NULL };
  frc_error_t err = NULL;
  make_tree();
  private_mount_ns();
  bind_view();
  ck_assert_msg(run_hook("root", paths, legacy, &err) == 0, "%s", err ? err->msg : "");
  check_binds();
}

/* the closure named by the view's store directory (what create gives the
 * hook): each entry's path bound, a symlink entry (a store path that is a
 * symlink, which the view holds as it is) left alone, an entry that is not
 * a store path's name refused */
#define N_PKG "0123456789abcdfghijklmnpqrsvwxyz-pkg"
#define N_FILE "1123456789abcdfghijklmnpqrsvwxyz-file"
#define N_SYM "2123456789abcdfghijklmnpqrsvwxyz-sym"
/* a package directory and a file with store paths' names in the node's
 * store, and their mount points in the view */
static void
make_store_names(void)
{
  mkdir_ok("store/nix/store/" N_PKG);
  mkdir_ok("view/store/" N_PKG);
  {
    cleanup_free char *f = xasprintf("%s/store/nix/store/" N_PKG "/f", tmpdir);
    cleanup_free char *g = xasprintf("%s/store/nix/store/" N_FILE, tmpdir);
    cleanup_free char *h = xasprintf("%s/view/store/" N_FILE, tmpdir);
    write_text(f, "pkg\n");
    write_text(g, "file\n");
    write_text(h, "");
  }
}

static void
test_view(bool legacy)
{
  cleanup_free char *vstore = xasprintf("%s/view/store", tmpdir);
  cleanup_free char *sym = xasprintf("%s/view/store/" N_SYM, tmpdir);
  const char *const args[] = { FRC_BINDHOOK_VIEW_STORE, vstore, NULL };
  const char *const relative[] = { FRC_BINDHOOK_VIEW_STORE, "view/store", NULL };
  const char *const missing[] = { FRC_BINDHOOK_VIEW_STORE, "/nonexistent/view/store", NULL };
  const char *const bare[] = { FRC_BINDHOOK_VIEW_STORE, NULL };
  static const char *const invalid[] = { "view/store/aaa-pkg", "view/store/bbb-file" };
  frc_error_t err = NULL;
  struct stat st;

  make_tree();
  make_store_names();
  ck_assert_int_eq(symlink("/nix/store/" N_PKG, sym), 0);
  private_mount_ns();
  bind_view();
  expect_refusal("root", relative, legacy, "absolute");
  expect_refusal("root", bare, legacy, NULL);
  expect_refusal("root", missing, legacy, "view");
  /* make_tree's names are not store paths' */
  expect_refusal("root", args, legacy, "is not a store path");
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *p = xasprintf("%s/%s", tmpdir, invalid[i]);
      ck_assert_int_eq(remove(p), 0);
    }
  ck_assert_msg(run_hook("root", args, legacy, &err) == 0, "%s", err ? err->msg : "");
  {
    cleanup_free char *f = xasprintf("%s/root/nix/store/" N_PKG "/f", tmpdir);
    cleanup_free char *g = xasprintf("%s/root/nix/store/" N_FILE, tmpdir);
    cleanup_free char *l = xasprintf("%s/root/nix/store/" N_SYM, tmpdir);
    check_bound_file(f, "pkg\n");
    check_bound_file(g, "file\n");
    ck_assert_int_eq(lstat(l, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert(!frc_is_mountpoint(l));
  }
}

/* the view's pin (lib/viewpin.h): made once in a namespace of its own,
 * the hook clones the closure's binds whole onto the container's
 * /nix/store (itself a ro,nosuid,nodev mount then); a pin that is a plain
 * file (a reboot's leftover) or another view's, and a missing one, leave
 * the hook to bind path by path */
static void
make_view_tree(void)
{
  make_tree();
  make_store_names();
  mkdir_ok("view2");
  mkdir_ok("view2/store");
  mkdir_ok("state");
  for (const char *const *n = (const char *const[]){ "view/store/aaa-pkg", "view/store/bbb-file", NULL }; *n; n++)
    {
      cleanup_free char *p = xasprintf("%s/%s", tmpdir, *n);
      ck_assert_int_eq(remove(p), 0);
    }
}

/* runs the hook with pin and the view's store; whether it cloned the pin
 * (the container's /nix/store a mount point), the closure bound either way */
static bool
hook_with_pin_ino(const char *pin, long long delta)
{
  cleanup_free char *vstore = xasprintf("%s/view/store", tmpdir);
  cleanup_free char *cstore = xasprintf("%s/root/nix/store", tmpdir);
  cleanup_free char *f = xasprintf("%s/root/nix/store/" N_PKG "/f", tmpdir);
  cleanup_free char *g = xasprintf("%s/root/nix/store/" N_FILE, tmpdir);
  cleanup_free char *nix = xasprintf("%s/root/nix", tmpdir);
  /* as create names it: by its own root (the runtime's create, this
   * process here) */
  cleanup_free char *by_root = xasprintf("/proc/%d/root%s", (int) getpid(), pin);
  unsigned long long ns_ino = 0;
  char ino[24];
  const char *const args[] = { FRC_BINDHOOK_VIEW_PIN, by_root, ino, FRC_BINDHOOK_VIEW_STORE, vstore, NULL };
  frc_error_t err = NULL;
  bool cloned;
  struct statvfs sv;

  frc_viewpin_valid(pin, &ns_ino);
  snprintf(ino, sizeof(ino), "%llu", ns_ino + (unsigned long long) delta);

  bind_view();
  ck_assert_msg(run_hook("root", args, false, &err) == 0, "%s", err ? err->msg : "");
  check_bound_file(f, "pkg\n");
  check_bound_file(g, "file\n");
  cloned = frc_is_mountpoint(cstore);
  if (cloned)
    {
      ck_assert_int_eq(statvfs(cstore, &sv), 0);
      ck_assert(sv.f_flag & ST_RDONLY);
      ck_assert(sv.f_flag & ST_NOSUID);
      ck_assert(sv.f_flag & ST_NODEV);
    }
  ck_assert_int_eq(umount2(nix, MNT_DETACH), 0);
  return cloned;
}

static bool
hook_with_pin(const char *pin)
{
  return hook_with_pin_ino(pin, 0);
}

/* Mounts a writable, suid, dev tmpfs over the pinned namespace's
 * /store/N_PKG (what a namespace not made by flox-runc could hold). */
static void
spoil_pin(const char *pin)
{
  int ns = open(pin, O_RDONLY | O_CLOEXEC), own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(ns, 0);
  ck_assert_int_ge(own, 0);
  ck_assert_int_eq(setns(ns, CLONE_NEWNS), 0);
  ck_assert_int_eq(mount("tmpfs", "/store/" N_PKG, "tmpfs", 0, "mode=0755"), 0);
  ck_assert_int_eq(setns(own, CLONE_NEWNS), 0);
  close(ns);
  close(own);
}

struct orphans
{
  unsigned n;
  char *last;
};

static int
note_orphan(const char *pin, void *data)
{
  struct orphans *o = data;
  o->n++;
  free(o->last);
  o->last = xstrdup(pin);
  return 0;
}

START_TEST(test_view_pin)
{
  cleanup_free char *state = xasprintf("%s/state", tmpdir);
  cleanup_free char *prefix = xasprintf("%s/store", tmpdir);
  cleanup_free char *view = xasprintf("%s/view", tmpdir);
  cleanup_free char *view2 = xasprintf("%s/view2", tmpdir);
  cleanup_free char *pin = NULL, *pin2 = NULL, *again = NULL;
  struct frc_config c = { .state_dir = state, .store_prefix = prefix };
  struct frc_config c2 = { .state_dir = state, .store_prefix = prefix };
  frc_error_t err = NULL;
  unsigned long long ino = 0, ino2 = 0;

  make_view_tree();
  private_mount_ns();
  pin = frc_viewpin_ensure(&c, "k1", view, NULL, &ino);
  ck_assert_ptr_nonnull(pin);
  ck_assert(frc_viewpin_valid(pin, &ino2));
  ck_assert_uint_eq(ino, ino2);
  again = frc_viewpin_ensure(&c, "k1", view, NULL, &ino2); /* there: the same */
  ck_assert_str_eq(again, pin);
  ck_assert_uint_eq(ino, ino2);
  /* the closure in one clone, its top read-only too */
  ck_assert(hook_with_pin(pin));
  /* another namespace than create pinned (/proc/PID/root leading
   * elsewhere): path by path */
  ck_assert(!hook_with_pin_ino(pin, 1));
  /* another view's pin: not this container's closure */
  pin2 = frc_viewpin_ensure(&c2, "k2", view2, NULL, NULL);
  ck_assert_ptr_nonnull(pin2);
  ck_assert(!hook_with_pin(pin2));
  /* gc's sweep (lib/gc.c): a pin whose view is gone, and only that one */
  {
    cleanup_free char *v1 = xasprintf("%s/views/k1", state);
    cleanup_free char *views = xasprintf("%s/views", state);
    struct orphans o = { 0 };
    ck_assert_int_eq(mkdir(views, 0700), 0);
    ck_assert_int_eq(mkdir(v1, 0700), 0);
    ck_assert_int_eq(frc_viewpin_each_orphan(&c, note_orphan, &o), 0);
    ck_assert_int_eq(o.n, 1);
    ck_assert_str_eq(o.last, pin2);
    ck_assert_int_eq(frc_viewpin_unmount(o.last, &err), 0);
    ck_assert(!frc_viewpin_valid(pin2, NULL));
    free(o.last);
  }
  /* gone with its view (frc_view_remove), and missing */
  ck_assert_int_eq(frc_viewpin_remove(&c, "k1", &err), 0);
  ck_assert(!frc_viewpin_valid(pin, NULL));
  ck_assert_int_eq(access(pin, F_OK), -1);
  ck_assert(!hook_with_pin(pin));
  /* a plain file where the pin was (a reboot's leftover) */
  write_text(pin, "");
  ck_assert(!frc_viewpin_valid(pin, NULL));
  ck_assert(!hook_with_pin(pin));
  /* made again over it */
  free(again);
  again = frc_viewpin_ensure(&c, "k1", view, NULL, NULL);
  ck_assert_ptr_nonnull(again);
  ck_assert(hook_with_pin(again));
  /* whatever the pinned namespace holds, every mount of the clone is
   * read-only, nosuid, nodev (check_bound_file in hook_with_pin) */
  spoil_pin(again);
  {
    cleanup_free char *vstore = xasprintf("%s/view/store", tmpdir);
    cleanup_free char *pkg = xasprintf("%s/root/nix/store/" N_PKG, tmpdir);
    cleanup_free char *nix = xasprintf("%s/root/nix", tmpdir);
    cleanup_free char *by_root = xasprintf("/proc/%d/root%s", (int) getpid(), again);
    char inos[24];
    const char *const args[] = { FRC_BINDHOOK_VIEW_PIN, by_root, inos, FRC_BINDHOOK_VIEW_STORE, vstore, NULL };
    struct statvfs sv;
    ck_assert(frc_viewpin_valid(again, &ino));
    snprintf(inos, sizeof(inos), "%llu", ino);
    bind_view();
    ck_assert_msg(run_hook("root", args, false, &err) == 0, "%s", err ? err->msg : "");
    ck_assert(frc_is_mountpoint(pkg));
    ck_assert_int_eq(statvfs(pkg, &sv), 0);
    ck_assert(sv.f_flag & ST_RDONLY);
    ck_assert(sv.f_flag & ST_NOSUID);
    ck_assert(sv.f_flag & ST_NODEV);
    ck_assert_int_eq(umount2(nix, MNT_DETACH), 0);
  }
  ck_assert_int_eq(frc_viewpin_remove(&c, "k1", &err), 0);
  ck_assert_int_eq(frc_viewpin_remove(&c, "k2", &err), 0);
  ck_assert_int_eq(frc_viewpin_remove(&c, "k2", &err), 0); /* missing is fine */
}
END_TEST

START_TEST(test_view_new_api)
{
  test_view(false);
}
END_TEST

START_TEST(test_view_mount2)
{
  test_view(true);
}
END_TEST

START_TEST(test_binds_new_api)
{
  test_binds(false);
}
END_TEST

START_TEST(test_binds_mount2)
{
  test_binds(true);
}
END_TEST

/* the environment's tree (a /nix/var/flox-runc/envs/KEY entry) and binds
 * of node paths outside /nix (--bind-ro, --bind-rw: FLOX_ENV_CACHE, the CA
 * bundle), with the flags of the spec mounts they replace; the mount points
 * made where missing, as the runtime makes them */
static void
test_other_binds(bool legacy)
{
  static const char *const dirs[] = { "store/nix/var", "store/nix/var/flox-runc",
                                      "store/nix/var/flox-runc/envs",
                                      "store/nix/var/flox-runc/envs/k1", "view/var",
                                      "view/var/flox-runc", "view/var/flox-runc/envs",
                                      "view/var/flox-runc/envs/k1", "cache", "root/run", NULL };
  cleanup_free char *cache = xasprintf("%s/cache", tmpdir);
  cleanup_free char *ca = xasprintf("%s/ca.crt", tmpdir);
  cleanup_free char *tree_f = xasprintf("%s/store/nix/var/flox-runc/envs/k1/f", tmpdir);
  cleanup_free char *in_tree = xasprintf("%s/root/nix/var/flox-runc/envs/k1/f", tmpdir);
  cleanup_free char *in_cache = xasprintf("%s/root/run/flox/env-cache/new", tmpdir);
  cleanup_free char *in_ca = xasprintf("%s/root/run/flox/ca-bundle.crt", tmpdir);
  cleanup_free char *on_node = xasprintf("%s/cache/new", tmpdir);
  const char *const paths[] = { "/nix/store/aaa-pkg",
                                "/nix/var/flox-runc/envs/k1",
                                "--bind-rw",
                                cache,
                                "/run/flox/env-cache",
                                "--bind-ro",
                                ca,
                                "/run/flox/ca-bundle.crt",
                                NULL };
  cleanup_free char *text = NULL;
  size_t len;
  frc_error_t err = NULL;
  struct statvfs sv;
  struct stat st;
  int fd;

  make_tree();
  for (const char *const *d = dirs; *d; d++)
    mkdir_ok(*d);
  write_text(tree_f, "tree\n");
  write_text(ca, "ca\n");
  private_mount_ns();
  bind_view();
  ck_assert_msg(run_hook("root", paths, legacy, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_eq(read_file_bounded(in_tree, 64, &text, &len, &err), 0);
  ck_assert_str_eq(text, "tree\n");
  ck_assert_int_eq(statvfs(in_tree, &sv), 0);
  ck_assert(sv.f_flag & ST_RDONLY && sv.f_flag & ST_NOSUID && sv.f_flag & ST_NODEV);
  /* FLOX_ENV_CACHE: writable, the node's directory */
  fd = open(in_cache, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ck_assert_msg(fd >= 0, "%s", strerror(errno));
  close(fd);
  ck_assert_int_eq(stat(on_node, &st), 0);
  ck_assert_int_eq(statvfs(in_cache, &sv), 0);
  ck_assert(!(sv.f_flag & ST_RDONLY) && sv.f_flag & ST_NOSUID && sv.f_flag & ST_NODEV);
  free(text);
  text = NULL;
  ck_assert_int_eq(read_file_bounded(in_ca, 64, &text, &len, &err), 0);
  ck_assert_str_eq(text, "ca\n");
  ck_assert_int_eq(statvfs(in_ca, &sv), 0);
  ck_assert(sv.f_flag & ST_RDONLY && sv.f_flag & ST_NOSUID && sv.f_flag & ST_NODEV);
  ck_assert_int_eq(open(in_ca, O_WRONLY | O_CLOEXEC), -1);
}

START_TEST(test_other_binds_new_api)
{
  test_other_binds(false);
}
END_TEST

START_TEST(test_other_binds_mount2)
{
  test_other_binds(true);
}
END_TEST

/* an image's symlink on the way to a bind's mount point is never followed:
 * the hook fails and nothing is mounted where it leads; and the other
 * entries' forms are checked */
START_TEST(test_other_binds_refusals)
{
  cleanup_free char *cache = xasprintf("%s/cache", tmpdir);
  cleanup_free char *elsewhere = xasprintf("%s/elsewhere", tmpdir);
  cleanup_free char *run = xasprintf("%s/root/run", tmpdir);
  cleanup_free char *led = xasprintf("%s/elsewhere/flox/env-cache", tmpdir);
  const char *const via_link[] = { "--bind-rw", cache, "/run/flox/env-cache", NULL };
  const char *const into_nix[] = { "--bind-rw", cache, "/nix/store/aaa-pkg", NULL };
  const char *const dotdot[] = { "--bind-rw", cache, "/../etc", NULL };
  const char *const short_[] = { "--bind-ro", cache, NULL };
  const char *const bad_tree[] = { "/nix/var/flox-runc/envs/..", NULL };
  const char *const deep_tree[] = { "/nix/var/flox-runc/envs/a/b", NULL };

  make_tree();
  mkdir_ok("cache");
  ck_assert_int_eq(symlink(elsewhere, run), 0);
  private_mount_ns();
  bind_view();
  expect_refusal("root", via_link, false, "symlink");
  expect_refusal("root", via_link, true, NULL);
  ck_assert(!frc_is_mountpoint(led));
  expect_refusal("root", into_nix, false, "/nix");
  expect_refusal("root", dotdot, false, "plain path");
  expect_refusal("root", short_, false, NULL);
  expect_refusal("root", bad_tree, false, "not a store path");
  expect_refusal("root", deep_tree, false, "not a store path");
}
END_TEST

/* frc_bindhook_add_bind: appended to flox-runc's hook, none without it */
START_TEST(test_add_bind)
{
  static const char doc[] = "{\"root\":{\"path\":\"rootfs\"}}";
  char *two[] = { "/nix/store/aaa-a", "/nix/store/bbb-b", NULL };
  struct frc_spec s = { 0 };
  frc_error_t err = NULL;
  yajl_val args;

  ck_assert_int_eq(frc_json_parse(doc, strlen(doc), &s.doc.root, &err), 0);
  ck_assert(!frc_bindhook_add_bind(&s, "/a", "/run/flox/x", true));
  frc_bindhook_add(&s, "/usr/bin/flox-runc", NULL, "rootfs", "/v", "", two);
  ck_assert(frc_bindhook_add_bind(&s, "/a", "/run/flox/x", false));
  args = frc_json_get(frc_json_get(frc_json_get(s.doc.root, "hooks"), "createContainer")->u.array.values[0], "args");
  /* exe, the verb, root, view, prefix, the two paths, the bind */
  ck_assert_uint_eq(args->u.array.len, 5 + 2 + 3);
  ck_assert_str_eq(args->u.array.values[7]->u.string, "--bind-rw");
  ck_assert_str_eq(args->u.array.values[8]->u.string, "/a");
  ck_assert_str_eq(args->u.array.values[9]->u.string, "/run/flox/x");
  frc_json_freep(&s.doc.root);
}
END_TEST

/* a relative root (the spec's "rootfs") is the state's bundle's: a bundle
 * copied elsewhere whole still works; without a bundle it is refused */
START_TEST(test_relative_root)
{
  static const char *const paths[] = { "/nix/store/aaa-pkg", "/nix/store/bbb-file", NULL };
  cleanup_free char *view = xasprintf("%s/view", tmpdir);
  cleanup_free char *store = xasprintf("%s/store", tmpdir);
  char *argv[] = { "root", view, store, (char *) paths[0], (char *) paths[1] };
  frc_error_t err = NULL;

  make_tree();
  private_mount_ns();
  bind_view();
  ck_assert_int_eq(frc_bindhook_run(NULL, 5, argv, false, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "relative"));
  frc_error_release(&err);
  ck_assert_int_eq(frc_bindhook_run("relative/bundle", 5, argv, false, &err), -1);
  frc_error_release(&err);
  ck_assert_msg(frc_bindhook_run(tmpdir, 5, argv, false, &err) == 0, "%s", err ? err->msg : "");
  check_binds();
}
END_TEST

/* the static hook beside flox-runc only when it is there as flox-runc is */
START_TEST(test_program)
{
  cleanup_free char *exe = xasprintf("%s/bin/flox-runc", tmpdir);
  cleanup_free char *hook = xasprintf("%s/bin/" FRC_BINDHOOK_PROGRAM, tmpdir);
  char buf[PATH_MAX];

  mkdir_ok("bin");
  write_text(exe, "#!/bin/sh\n");
  ck_assert_int_eq(chmod(exe, 0755), 0);
  snprintf(buf, sizeof(buf), "%s", exe);
  ck_assert(!frc_bindhook_program(buf, sizeof(buf))); /* none: flox-runc itself */
  ck_assert_str_eq(buf, exe);
  ck_assert(!frc_bindhook_program((char[]) { "flox-runc" }, 10)); /* not absolute */
  ck_assert_int_eq(mkdir(hook, 0755), 0); /* a directory */
  ck_assert(!frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_int_eq(rmdir(hook), 0);
  write_text(hook, "#!/bin/sh\n");
  ck_assert_int_eq(chmod(hook, 0644), 0); /* not executable */
  ck_assert(!frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_int_eq(chmod(hook, 0775), 0); /* writable by its group */
  ck_assert(!frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_int_eq(chmod(hook, 0757), 0); /* writable by anyone */
  ck_assert(!frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_int_eq(chmod(hook, 0755), 0);
  ck_assert_int_eq(chown(hook, 4242, 0), 0); /* another owner */
  ck_assert(!frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_str_eq(buf, exe);
  ck_assert_int_eq(chown(hook, getuid(), 0), 0);
  ck_assert(!frc_bindhook_program(buf, strlen(exe) + 1)); /* no room for its name */
  ck_assert(frc_bindhook_program(buf, sizeof(buf)));
  ck_assert_str_eq(buf, hook);
}
END_TEST

/* nothing the image or another mount controls steers a bind */
START_TEST(test_refusals)
{
  static const char *const one[] = { "/nix/store/aaa-pkg", NULL };
  static const char *const link[] = { "/nix/store/ccc-link", NULL };
  static const char *const bad[][2] = { { "/nix/store/..", NULL }, { "/nix/store/a/b", NULL },
                                        { "/etc", NULL }, { "/nix/store/", NULL } };
  frc_error_t err = NULL;
  cleanup_free char *slink = xasprintf("%s/root2/nix", tmpdir);
  cleanup_free char *view = xasprintf("%s/view", tmpdir);
  cleanup_free char *vlink = xasprintf("%s/view/store/ccc-link", tmpdir);
  cleanup_free char *elsewhere = xasprintf("%s/elsewhere", tmpdir);
  cleanup_free char *sdir = xasprintf("%s/store/nix/store/ccc-link", tmpdir);
  static const char *const dirfile[] = { "/nix/store/ddd-dir", NULL };
  static const char *const filedir[] = { "/nix/store/eee-file", NULL };
  cleanup_free char *vdirfile = xasprintf("%s/root/nix/store/ddd-dir", tmpdir);
  cleanup_free char *vfiledir = xasprintf("%s/root/nix/store/eee-file", tmpdir);
  struct stat st;

  make_tree();
  mkdir_ok("store/nix/store/ddd-dir");
  mkdir_ok("view/store/eee-file");
  {
    cleanup_free char *v = xasprintf("%s/view/store/ddd-dir", tmpdir);
    cleanup_free char *f = xasprintf("%s/store/nix/store/eee-file", tmpdir);
    write_text(v, "");
    write_text(f, "file\n");
  }
  mkdir_ok("root2");
  mkdir_ok("root3");
  mkdir_ok("root3/nix");
  ck_assert_int_eq(symlink(view, slink), 0);
  ck_assert_int_eq(symlink(elsewhere, vlink), 0);
  ck_assert_int_eq(mkdir(sdir, 0755), 0);
  private_mount_ns();
  bind_view();

  /* the image's /nix a symlink (even to the view itself) */
  expect_refusal("root2", one, false, "symlink");
  /* a /nix that is not the view the spec bound */
  expect_refusal("root3", one, false, "is not");
  /* a mount point that is a symlink: nothing is mounted where it leads */
  expect_refusal("root", link, false, "does not match");
  /* a directory's mount point that is a file, a file's that is a
   * directory: refused, nothing mounted */
  expect_refusal("root", dirfile, false, "does not match");
  expect_refusal("root", filedir, false, "does not match");
  ck_assert(!frc_is_mountpoint(vdirfile));
  ck_assert(!frc_is_mountpoint(vfiledir));
  expect_refusal("root", link, true, NULL);
  ck_assert_int_eq(lstat(elsewhere, &st), 0);
  ck_assert(!frc_is_mountpoint(elsewhere));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      ck_assert_int_eq(run_hook("root", bad[i], false, &err), -1);
      ck_assert_ptr_nonnull(strstr(err->msg, "not a store path"));
      frc_error_release(&err);
    }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("bindhook");
  TCase *tc = tcase_create("bindhook");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_program);
  tcase_add_test(tc, test_spec_hook);
  tcase_add_test(tc, test_spec_hook_log);
  tcase_add_test(tc, test_usable);
  tcase_add_test(tc, test_screen);
  tcase_add_test(tc, test_binds_new_api);
  tcase_add_test(tc, test_binds_mount2);
  tcase_add_test(tc, test_view_new_api);
  tcase_add_test(tc, test_view_mount2);
  tcase_add_test(tc, test_view_pin);
  tcase_add_test(tc, test_relative_root);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_other_binds_new_api);
  tcase_add_test(tc, test_other_binds_mount2);
  tcase_add_test(tc, test_other_binds_refusals);
  tcase_add_test(tc, test_add_bind);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
