/* Tree removal at any depth (frc_rm_rf), look-ups that stay inside an
 * image's rootfs (frc_stat_in_root) and mkdir -p (frc_mkdir_p), lib/util.c;
 * a helper started, then finished or aborted, a detached process that
 * inherits no cwd, signal state or descriptor of its caller (lib/proc.c);
 * the growing buffer (frc_buf). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "testdir.h"
#include "util.h"

static char tmpdir[] = "/tmp/frc-test-util-XXXXXX";

static void
setup(void)
{
  frc_test_dir_make(tmpdir, "util");
}

static void
teardown(void)
{
  frc_test_dir_remove(tmpdir);
}

static void
touch(const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
  ck_assert_int_ge(fd, 0);
  close(fd);
}

/* A mount inside the tree (another device) is never descended into: its
 * files stay and the error names it.  The mount id decides where statx
 * has STATX_MNT_ID (Linux 5.8); the device, which differs here too, where
 * it has not.  Needs root (mount); the suites run as root. */
START_TEST(test_rm_rf_never_crosses_a_mount)
{
  cleanup_free char *top = xasprintf("%s/tree", tmpdir);
  cleanup_free char *mnt = xasprintf("%s/tree/sub/mnt", tmpdir);
  cleanup_free char *sub = xasprintf("%s/tree/sub", tmpdir);
  cleanup_free char *inside = xasprintf("%s/tree/sub/mnt/file", tmpdir);
  frc_error_t err = NULL;

  ck_assert_int_eq(geteuid(), 0);
  /* a mount namespace of the test's own (check forks each test): nothing
   * is left mounted on the node if it fails */
  ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
  ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  ck_assert_int_eq(mkdir(top, 0755), 0);
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  ck_assert_int_eq(mkdir(mnt, 0755), 0);
  ck_assert_int_eq(mount("none", mnt, "tmpfs", 0, "size=64k"), 0);
  touch(inside);
  ck_assert_int_lt(frc_rm_rf(top, &err), 0);
  ck_assert_msg(strstr(err->msg, "mnt") != NULL, "%s", err->msg);
  frc_error_release(&err);
  ck_assert_int_eq(access(inside, F_OK), 0);
  ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
  ck_assert_int_eq(frc_rm_rf(top, &err), 0);
  ck_assert_int_eq(access(top, F_OK), -1);
}
END_TEST

/* A pod of a nix-mutable container can nest directories as deep as it
 * likes; read-only ones too.  The old recursive removal gave up at 256. */
START_TEST(test_rm_rf_deep)
{
  char *top = xasprintf("%s/deep", tmpdir);
  frc_error_t err = NULL;
  int fd;
  const int depth = 3000;

  ck_assert_int_eq(mkdir(top, 0755), 0);
  fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  for (int i = 0; i < depth; i++)
    {
      int nfd;
      ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
      ck_assert_int_eq(symlinkat("/etc/hostname", fd, "link"), 0);
      nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ck_assert_int_ge(nfd, 0);
      if (i % 2)
        fchmod(fd, 0555); /* read-only directories on the way */
      close(fd);
      fd = nfd;
    }
  ck_assert_int_eq(openat(fd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0444) >= 0, 1);
  close(fd);
  ck_assert_int_eq(frc_rm_rf(top, &err), 0);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(access(top, F_OK), -1);
  /* symlinks were removed, never followed */
  ck_assert_int_eq(access("/etc/hostname", F_OK) == 0 || access("/etc/passwd", F_OK) == 0, 1);
  free(top);
}
END_TEST

START_TEST(test_rm_rf_wide_and_missing)
{
  char *top = xasprintf("%s/wide", tmpdir);
  char *keep = xasprintf("%s/keep", tmpdir);
  frc_error_t err = NULL;

  ck_assert_int_eq(mkdir(top, 0755), 0);
  ck_assert_int_eq(mkdir(keep, 0755), 0);
  for (int i = 0; i < 200; i++)
    {
      char *d = xasprintf("%s/d%d", top, i);
      char *f = xasprintf("%s/d%d/f", top, i);
      ck_assert_int_eq(mkdir(d, 0755), 0);
      touch(f);
      free(d);
      free(f);
    }
  {
    char *l = xasprintf("%s/outside", top);
    ck_assert_int_eq(symlink(keep, l), 0);
    free(l);
  }
  ck_assert_int_eq(frc_rm_rf(top, &err), 0);
  ck_assert_int_eq(access(top, F_OK), -1);
  ck_assert_int_eq(access(keep, F_OK), 0);
  ck_assert_int_eq(frc_rm_rf(top, &err), 0); /* missing is fine */
  free(top);
  free(keep);
}
END_TEST

/* The string list: NULL-terminated after every push, has looks at the
 * first n entries only; cleanup_dir closes (a NULL DIR is fine). */
/* frc_dir_spread sets FS_TOPDIR_FL where the file system keeps inode
 * flags (ext4: the build machine's /tmp), keeps the other flags, and is
 * quiet about a missing directory. */
START_TEST(test_dir_spread)
{
  cleanup_free char *d = xasprintf("%s/spread", tmpdir);
  cleanup_close int fd = -1;
  int before = 0, after = 0;

  frc_dir_spread(d); /* missing: nothing */
  ck_assert_int_eq(mkdir(d, 0755), 0);
  fd = open(d, O_RDONLY | O_DIRECTORY);
  ck_assert_int_ge(fd, 0);
  if (ioctl(fd, FS_IOC_GETFLAGS, &before) < 0)
    return; /* no inode flags here (tmpfs): nothing to spread */
  frc_dir_spread(d);
  ck_assert_int_eq(ioctl(fd, FS_IOC_GETFLAGS, &after), 0);
  ck_assert_int_eq(after, before | FS_TOPDIR_FL);
  frc_dir_spread(d); /* again: unchanged */
  ck_assert_int_eq(ioctl(fd, FS_IOC_GETFLAGS, &after), 0);
  ck_assert_int_eq(after, before | FS_TOPDIR_FL);
}
END_TEST

/* frc_mkdir_p: every missing component made with the mode, an existing
 * path is fine, a path lacking only its last component (its shortcut) gets
 * it with the mode, a file in the way is an error naming the component. */
START_TEST(test_mkdir_p)
{
  cleanup_free char *deep = xasprintf("%s/a/b/c", tmpdir);
  cleanup_free char *mid = xasprintf("%s/a/b", tmpdir);
  cleanup_free char *file = xasprintf("%s/f", tmpdir);
  cleanup_free char *under = xasprintf("%s/f/x/y", tmpdir);
  frc_error_t err = NULL;
  struct stat st;

  umask(022);
  ck_assert_int_eq(frc_mkdir_p(deep, 0700, &err), 0);
  ck_assert_int_eq(stat(mid, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(st.st_mode & 07777, 0700);
  ck_assert_int_eq(stat(deep, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0700);
  ck_assert_int_eq(frc_mkdir_p(deep, 0700, &err), 0); /* there: fine */
  ck_assert_int_eq(rmdir(deep), 0);
  ck_assert_int_eq(frc_mkdir_p(deep, 0755, &err), 0); /* the last one only */
  ck_assert_int_eq(stat(deep, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0755);
  touch(file);
  ck_assert_int_eq(frc_mkdir_p(under, 0700, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "/f/x"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_strv)
{
  cleanup_strv char **v = NULL;
  size_t n = 0;
  ck_assert(!frc_strv_has(v, n, "a"));
  frc_strv_push(&v, &n, xstrdup("a"));
  frc_strv_push(&v, &n, xstrdup("b"));
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(v[0], "a");
  ck_assert_str_eq(v[1], "b");
  ck_assert_ptr_null(v[2]);
  ck_assert(frc_strv_has(v, n, "b"));
  ck_assert(!frc_strv_has(v, 1, "b"));
  ck_assert(!frc_strv_has(v, n, "c"));
  {
    cleanup_dir DIR *d = opendir(tmpdir);
    cleanup_dir DIR *none = opendir("/nonexistent-frc");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(none);
  }
}
END_TEST

/* An image symlink never leads onto the node: /run -> <node dir> whose
 * flox/ exists on the node, a PATH directory -> a node bin directory. */
START_TEST(test_stat_in_root)
{
  char *rootfs = xasprintf("%s/rootfs", tmpdir);
  char *host = xasprintf("%s/host", tmpdir);
  char *p;
  struct stat st;
  int rfd;

  ck_assert_int_eq(mkdir(rootfs, 0755), 0);
  ck_assert_int_eq(mkdir(host, 0755), 0);
  p = xasprintf("%s/flox", host);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  free(p);
  p = xasprintf("%s/secret", host);
  touch(p);
  chmod(p, 0755);
  free(p);
  p = xasprintf("%s/run", rootfs);
  ck_assert_int_eq(symlink(host, p), 0);
  free(p);
  p = xasprintf("%s/hostbin", rootfs);
  ck_assert_int_eq(symlink("../../../../../../../..", p), 0);
  free(p);
  p = xasprintf("%s/var", rootfs);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  free(p);
  p = xasprintf("%s/var/tmp", rootfs);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  free(p);
  p = xasprintf("%s/tmp", rootfs);
  ck_assert_int_eq(symlink("/var/tmp", p), 0);
  free(p);

  /* the node sees them through the links... */
  p = xasprintf("%s/run/flox", rootfs);
  ck_assert_int_eq(stat(p, &st), 0);
  free(p);
  rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(rfd, 0);
  /* ...the rootfs look-up does not */
  ck_assert_int_eq(frc_stat_in_root(rfd, "run/flox", true, &st), -1);
  ck_assert_int_eq(frc_stat_in_root(rfd, "/run/secret", true, &st), -1);
  p = xasprintf("hostbin%s/secret", host);
  ck_assert_int_eq(frc_stat_in_root(rfd, p, true, &st), -1);
  free(p);
  /* links inside the image resolve inside it */
  ck_assert_int_eq(frc_stat_in_root(rfd, "tmp", true, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(frc_stat_in_root(rfd, "tmp", false, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert_int_eq(frc_stat_in_root(rfd, "/", true, &st), 0);
  close(rfd);
  free(rootfs);
  free(host);
}
END_TEST

/* A child started while other work goes on (frc_proc_start): finish gives
 * exactly what frc_proc_run gives, output written before finish included;
 * abort kills a child that would run on and reaps it at once. */
START_TEST(test_proc_start_finish_abort)
{
  const char *const argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
  const char *const slow[] = { "/bin/sh", "-c", "echo early; sleep 30; echo late", NULL };
  struct frc_proc p = { .argv = argv, .capture_stdout = 1 };
  struct frc_proc q = { .argv = slow, .capture_stdout = 1 };
  struct frc_proc_running *run = NULL;
  struct frc_proc_result r;
  frc_error_t err = NULL;
  long long t0;

  ck_assert_int_eq(frc_proc_start(&p, &run, &err), 0);
  ck_assert_ptr_nonnull(run);
  usleep(100000); /* the child is done before it is read */
  ck_assert_int_eq(frc_proc_finish(run, &r), 0);
  ck_assert_int_eq(r.status, 3);
  ck_assert_str_eq(r.out, "out\n");
  ck_assert_str_eq(r.last_err, "err");
  frc_proc_result_release(&r);

  ck_assert_int_eq(frc_proc_run(&p, &r, &err), 0);
  ck_assert_int_eq(r.status, 3);
  ck_assert_str_eq(r.out, "out\n");
  frc_proc_result_release(&r);

  t0 = frc_now_ns();
  ck_assert_int_eq(frc_proc_start(&q, &run, &err), 0);
  frc_proc_abort(run);
  ck_assert_int_lt(frc_now_ns() - t0, 5000000000LL);
  frc_proc_abort(NULL);
}
END_TEST

/* An O_PATH descriptor reopened for reading only when it holds a regular
 * file (that very file: renamed away meanwhile, it still reads); a FIFO,
 * a directory, a symlink (O_NOFOLLOW) are never opened: -2, named. */
START_TEST(test_reopen_regular)
{
  cleanup_free char *file = xasprintf("%s/f", tmpdir);
  cleanup_free char *moved = xasprintf("%s/g", tmpdir);
  cleanup_free char *fifo = xasprintf("%s/fifo", tmpdir);
  cleanup_free char *link = xasprintf("%s/link", tmpdir);
  struct {
    const char *path;
    const char *kind;
  } special[] = { { fifo, "FIFO" }, { tmpdir, "directory" }, { link, "symlink" } };
  frc_error_t err = NULL;
  struct stat st;
  char buf[16] = { 0 };

  ck_assert_int_eq(write_file_atomic(file, "data", 4, 0600, &err), 0);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(symlink(file, link), 0);
  {
    cleanup_close int pfd = open(file, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    cleanup_close int fd = -1;
    ck_assert_int_ge(pfd, 0);
    ck_assert_int_eq(rename(file, moved), 0);
    fd = frc_reopen_regular(pfd, &st);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 4);
    ck_assert_str_eq(buf, "data");
    ck_assert_str_eq(frc_file_kind(st.st_mode), "regular file");
  }
  for (size_t i = 0; i < 3; i++)
    {
      cleanup_close int pfd = open(special[i].path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      ck_assert_int_ge(pfd, 0);
      ck_assert_int_eq(frc_reopen_regular(pfd, &st), -2);
      ck_assert_str_eq(frc_file_kind(st.st_mode), special[i].kind);
    }
}
END_TEST

/* The growing buffer: binary bytes (NULs inside) and text, NUL-terminated
 * after len at every step, across many doublings; release empties it for
 * reuse; an untouched one releases. */
START_TEST(test_buf)
{
  cleanup_buf struct frc_buf b = { 0 };
  struct frc_buf empty = { 0 };
  static const char bin[] = { 'a', '\0', 'b' };

  frc_buf_add(&b, bin, 3);
  ck_assert_uint_eq(b.len, 3);
  ck_assert_int_eq(memcmp(b.data, bin, 3), 0);
  ck_assert_int_eq(b.data[3], '\0');
  frc_buf_add(&b, "", 0);
  ck_assert_uint_eq(b.len, 3);
  for (int i = 0; i < 10000; i++)
    {
      frc_buf_addf(&b, "%s%d", i ? "," : "", i);
      ck_assert_int_eq(b.data[b.len], '\0');
      ck_assert_uint_gt(b.cap, b.len);
    }
  ck_assert_uint_eq(b.len, 3 + 48889);
  ck_assert_int_eq(strncmp(b.data + 3, "0,1,2,3", 7), 0);
  ck_assert_str_eq(b.data + b.len - 9, "9998,9999");
  ck_assert_int_eq(memcmp(b.data, "a\0b0,1,2", 8), 0);
  frc_buf_release(&b);
  ck_assert_ptr_null(b.data);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_uint_eq(b.cap, 0);
  frc_buf_release(&empty);
  ck_assert_ptr_null(empty.data);
  frc_buf_addf(&b, "again %s", "x");
  ck_assert_str_eq(b.data, "again x");
  {
    /* one piece larger than what the buffer holds: formatted again */
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    frc_buf_addf(&b, "[%s]", big);
    ck_assert_uint_eq(b.len, 7 + 5001);
    ck_assert_int_eq(b.data[7], '[');
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_uint_eq(strspn(b.data + 8, "z"), 4999);
  }
}
END_TEST

/* The detached process (frc_proc_detach, confirm_synced's): its cwd is /
 * (the caller's directory, here the test's, stays unmountable otherwise),
 * no signal blocked or ignored, /dev/null on 0-2 and no descriptor but the
 * one kept; it reports through that one (a pipe whose end comes once it
 * exits).  The caller returns at once and keeps its own state. */
START_TEST(test_proc_detach)
{
  int p[2], extra = open("/dev/null", O_RDONLY | O_CLOEXEC), keep[1];
  sigset_t usr1, old;
  char report[4096], cwd[PATH_MAX];
  size_t len = 0;
  ssize_t r;
  pid_t me = getpid();

  ck_assert_int_ge(extra, 0);
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  ck_assert_int_eq(chdir(tmpdir), 0);
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ck_assert_int_eq(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
  signal(SIGUSR2, SIG_IGN);
  keep[0] = p[1];
  r = frc_proc_detach(keep, 1);
  if (r == 0)
    {
      FILE *st = fopen("/proc/self/status", "r");
      DIR *d = opendir("/proc/self/fd");
      struct dirent *e;
      char line[256], link[PATH_MAX];
      ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
      link[n > 0 ? n : 0] = '\0';
      dprintf(keep[0], "cwd=%s ppid-is-caller=%d\n", link, getppid() == me);
      while (st && fgets(line, sizeof(line), st))
        if (strncmp(line, "SigBlk:", 7) == 0 || strncmp(line, "SigIgn:", 7) == 0)
          dprintf(keep[0], "%s", line);
      if (st)
        fclose(st);
      dprintf(keep[0], "fds=");
      while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
          {
            char fdlink[64];
            n = readlink(strcat(strcpy(fdlink, "/proc/self/fd/"), e->d_name), link, sizeof(link) - 1);
            link[n > 0 ? n : 0] = '\0';
            dprintf(keep[0], "%s%s ", e->d_name,
                    atoi(e->d_name) < 3 && strcmp(link, "/dev/null") != 0 ? "(not /dev/null)" : "");
          }
      dprintf(keep[0], "keep=%d\n", keep[0]);
      _exit(0);
    }
  ck_assert_int_eq(r, 1);
  ck_assert_int_eq(keep[0], p[1]); /* the caller's own numbers */
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
  ck_assert_str_eq(cwd, tmpdir);
  ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
  signal(SIGUSR2, SIG_DFL);
  ck_assert_int_eq(chdir("/"), 0);
  close(p[1]);
  while (len < sizeof(report) - 1 && (r = read(p[0], report + len, sizeof(report) - 1 - len)) > 0)
    len += (size_t) r;
  report[len] = '\0';
  close(p[0]);
  close(extra);
  ck_assert_msg(strstr(report, "cwd=/ ppid-is-caller=0\n") != NULL, "%s", report);
  ck_assert_msg(strstr(report, "SigBlk:\t0000000000000000\n") != NULL, "%s", report);
  ck_assert_msg(strstr(report, "SigIgn:\t0000000000000000\n") != NULL, "%s", report);
  {
    /* 0, 1, 2 on /dev/null and the kept copy, nothing else */
    const char *fds = strstr(report, "fds=");
    int k = -1;
    ck_assert_ptr_nonnull(fds);
    ck_assert_int_eq(sscanf(strstr(fds, "keep=") ? strstr(fds, "keep=") : "", "keep=%d", &k), 1);
    ck_assert_int_gt(k, 2);
    {
      char want[64];
      snprintf(want, sizeof(want), "fds=0 1 2 %d keep=%d\n", k, k);
      ck_assert_msg(strstr(report, want) != NULL, "%s", report);
    }
  }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("util");
  TCase *tc = tcase_create("core");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_rm_rf_deep);
  tcase_add_test(tc, test_rm_rf_wide_and_missing);
  tcase_add_test(tc, test_rm_rf_never_crosses_a_mount);
  tcase_add_test(tc, test_stat_in_root);
  tcase_add_test(tc, test_strv);
  tcase_add_test(tc, test_dir_spread);
  tcase_add_test(tc, test_mkdir_p);
  tcase_add_test(tc, test_proc_start_finish_abort);
  tcase_add_test(tc, test_proc_detach);
  tcase_add_test(tc, test_buf);
  tcase_add_test(tc, test_reopen_regular);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
