/* The unprivileged fetch child (lib/sandbox.c): ids, capabilities,
 * no_new_privs, the seccomp filter killing forbidden system calls while the
 * work of a fetch (files, sockets, DNS through NSS, threads) still runs, the
 * deadline kill and the bounded frame reader. */
#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "sandbox.h"
#include "util.h"

static const struct frc_sandbox nobody = { 65534, 65534, 0, 1 << 20 };

/* Runs fn(arg) in a forked child after frc_sandbox_enter; returns its wait
 * status. */
static int
in_sandbox(void (*fn)(long), long arg)
{
  int st = 0;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    {
      frc_error_t err = NULL;
      if (frc_sandbox_enter(&nobody, &err) < 0)
        {
          fprintf(stderr, "enter: %s\n", err->msg);
          _exit(90);
        }
      fn(arg);
      _exit(0);
    }
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return st;
}

static void
expect_killed_by_seccomp(void (*fn)(long), long arg, const char *what)
{
  int st = in_sandbox(fn, arg);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
                "%s: expected SIGSYS, got %s %d", what, WIFSIGNALED(st) ? "signal" : "exit",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void
do_execve(long unused)
{
  char *argv[] = { (char *) "/bin/true", NULL };
  execve("/bin/true", argv, NULL);
  _exit(1);
}

static void
do_syscall(long nr)
{
  switch (nr)
    {
    case SYS_unshare: syscall(nr, CLONE_NEWUSER | CLONE_NEWNS); break;
    case SYS_ptrace: syscall(nr, PTRACE_TRACEME, 0, 0, 0); break;
    case SYS_mount: syscall(nr, "none", "/tmp", "tmpfs", 0, NULL); break;
    case SYS_setuid: syscall(nr, 0); break;
    case SYS_personality: syscall(nr, 0xffffffff); break;
    case SYS_bpf: syscall(nr, 0, NULL, 0); break;
    case SYS_keyctl: syscall(nr, 0, 0, 0, 0, 0); break;
    case SYS_userfaultfd: syscall(nr, 0); break;
    case SYS_open_by_handle_at: syscall(nr, -1, NULL, 0); break;
    default: syscall(nr, 0, 0, 0, 0, 0);
    }
  _exit(1); /* refused without being killed */
}

START_TEST(test_forbidden_syscalls_kill)
{
  static const long nrs[] = { SYS_unshare,  SYS_ptrace,      SYS_mount,       SYS_setuid,
                              SYS_personality, SYS_bpf,      SYS_keyctl,      SYS_userfaultfd,
                              SYS_open_by_handle_at, SYS_setns, SYS_chroot,   SYS_pivot_root,
                              SYS_init_module, SYS_kexec_load, SYS_perf_event_open,
                              SYS_process_vm_readv, SYS_reboot, SYS_swapon,  SYS_execveat };
  expect_killed_by_seccomp(do_execve, 0, "execve");
  for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++)
    {
      char what[32];
      snprintf(what, sizeof(what), "syscall %ld", nrs[i]);
      expect_killed_by_seccomp(do_syscall, nrs[i], what);
    }
}
END_TEST

static void
do_clone_newuser(long unused)
{
  /* fork() with a namespace flag, the way a compromised parser would. */
  syscall(SYS_clone, (long) (CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
  _exit(1);
}

static void
do_fork(long unused)
{
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  _exit(1);
}

START_TEST(test_clone_namespaces_kill)
{
  expect_killed_by_seccomp(do_clone_newuser, 0, "clone(CLONE_NEWUSER)");
  expect_killed_by_seccomp(do_fork, 0, "fork");
}
END_TEST

static void *
thread_fn(void *p)
{
  return p;
}

/* What a fetch does: read files, resolve a name through NSS, make a
 * socket, start a thread (libcurl's resolver); it never forks. */
static void
do_fetch_work(long unused)
{
  struct addrinfo *ai = NULL;
  pthread_t t;
  void *ret = NULL;
  int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || s < 0)
    _exit(2);
  if (getaddrinfo("localhost", "80", NULL, &ai) != 0)
    _exit(3);
  freeaddrinfo(ai);
  if (pthread_create(&t, NULL, thread_fn, (void *) 7) != 0 || pthread_join(t, &ret) != 0
      || ret != (void *) 7)
    _exit(4);
  /* The ids and capabilities, as the kernel reports them. */
  if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getgroups(0, NULL) != 0)
    _exit(5);
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
    _exit(6);
  for (int cap = 0; cap <= 40; cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      _exit(7);
  _exit(0);
}

START_TEST(test_fetch_work_allowed)
{
  int st;
  ck_assert_int_eq(geteuid(), 0); /* the suites run as root, like the runtime */
  st = in_sandbox(do_fetch_work, 0);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}
END_TEST

static int
reply_fn(void *data, int out)
{
  struct frc_frames f = { 0 };
  frc_frames_put(&f, 'C', data, strlen(data));
  frc_frames_put_u32(&f, 'L', (uint32_t) getuid());
  frc_frames_flush(&f, out);
  frc_frames_release(&f);
  return 0;
}

START_TEST(test_run_reply)
{
  cleanup_free char *reply = NULL;
  size_t len = 0, off = 0, dl;
  int status;
  char tag;
  const char *d;
  uint32_t uid;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;

  ck_assert_int_eq(frc_sandbox_run(&s, reply_fn, (void *) "hello", &reply, &len, &status, &err), 0);
  ck_assert_int_eq(status, 0);
  ck_assert(frc_frames_next(reply, len, &off, &tag, &d, &dl, 100, &err));
  ck_assert_int_eq(tag, 'C');
  ck_assert_int_eq(dl, 5);
  ck_assert_int_eq(memcmp(d, "hello", 5), 0);
  ck_assert(frc_frames_next(reply, len, &off, &tag, &d, &dl, 100, &err));
  ck_assert(frc_frame_u32(d, dl, &uid));
  ck_assert_int_eq(uid, 65534);
  ck_assert(!frc_frames_next(reply, len, &off, &tag, &d, &dl, 100, &err));
  ck_assert_ptr_null(err);
}
END_TEST

static int
exec_fn(void *data, int out)
{
  char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "echo pwned", NULL };
  execve("/bin/sh", argv, NULL);
  return 3;
}

START_TEST(test_run_seccomp_reported)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  ck_assert_int_lt(frc_sandbox_run(&s, exec_fn, NULL, &reply, &len, &status, &err), 0);
  ck_assert_msg(strstr(err->msg, "seccomp filter forbids") != NULL, "%s", err->msg);
  frc_error_release(&err);
}
END_TEST

static int
stall_fn(void *data, int out)
{
  sleep(30);
  return 0;
}

START_TEST(test_run_deadline_kills)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  long long t0 = frc_now_ns();
  s.deadline_ns = t0 + 200000000LL;
  ck_assert_int_lt(frc_sandbox_run(&s, stall_fn, NULL, &reply, &len, &status, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_DEADLINE);
  ck_assert_int_lt(frc_now_ns() - t0, 10000000000LL); /* the child stalls 30 s */
  frc_error_release(&err);
}
END_TEST

/* Hostile child: closes its reply pipe (EOF for the parent) and sleeps.
 * The parent's wait for it has the same deadline as the reading. */
static int
close_and_stall_fn(void *data, int out)
{
  close(out);
  sleep(30);
  return 0;
}

START_TEST(test_run_wait_has_deadline)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  long long t0 = frc_now_ns();
  s.deadline_ns = t0 + 200000000LL;
  ck_assert_int_lt(frc_sandbox_run(&s, close_and_stall_fn, NULL, &reply, &len, &status, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_DEADLINE);
  ck_assert_int_lt(frc_now_ns() - t0, 10000000000LL); /* the child stalls 30 s */
  frc_error_release(&err);
}
END_TEST

/* The engine's stderr is not the child's: 0, 1 and 2 are /dev/null. */
static int
std_fds_fn(void *data, int out)
{
  struct stat null, st;
  if (stat("/dev/null", &null) < 0)
    return 9;
  for (int fd = 0; fd <= 2; fd++)
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null.st_rdev)
      return 10 + fd;
  return 0;
}

START_TEST(test_run_std_fds_null)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  ck_assert_int_eq(frc_sandbox_run(&s, std_fds_fn, NULL, &reply, &len, &status, &err), 0);
  ck_assert_msg(status == 0, "fd %d of the child is not /dev/null", status - 10);
}
END_TEST

/* A pod running as the fetch uid (nobody): the child can neither read its
 * /proc/<pid>/environ nor signal it; it may signal itself. */
static int
peek_fn(void *data, int out)
{
  pid_t pod = *(pid_t *) data;
  char path[64];
  int fd;
  snprintf(path, sizeof(path), "/proc/%d/environ", (int) pod);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    return 1;
  if (kill(pod, 0) == 0)
    return 2;
  if (kill(getpid(), 0) != 0)
    return 3;
  if (access("/proc/self/status", F_OK) == 0 || access("/proc/1/environ", F_OK) == 0)
    return 4;
  return 0;
}

START_TEST(test_run_cannot_see_processes)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status, ready[2];
  char c;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  pid_t pod;

  ck_assert_int_eq(geteuid(), 0); /* the suites run as root, like the runtime */
  ck_assert_int_eq(pipe(ready), 0);
  pod = fork();
  ck_assert_int_ge(pod, 0);
  if (pod == 0)
    {
      /* like a pod's process: nobody, dumpable (an exec'd program is) */
      if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
        _exit(1);
      prctl(PR_SET_DUMPABLE, 1);
      if (write(ready[1], "x", 1) != 1)
        _exit(1);
      pause();
      _exit(0);
    }
  close(ready[1]);
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  close(ready[0]);
  frc_sandbox_run(&s, peek_fn, &pod, &reply, &len, &status, &err);
  kill(pod, SIGKILL);
  waitpid(pod, NULL, 0);
  ck_assert_msg(err == NULL, "%s", err ? err->msg : "");
  ck_assert_msg(status == 0, "the fetch child %s",
                status == 1   ? "read the pod's /proc/<pid>/environ"
                : status == 2 ? "could signal the pod"
                : status == 3 ? "could not signal itself"
                              : "sees /proc");
}
END_TEST

static int
flood_fn(void *data, int out)
{
  static char block[65536];
  for (int i = 0; i < 64; i++)
    if (write_all(out, block, sizeof(block)) < 0)
      return 1;
  return 0;
}

START_TEST(test_run_reply_bounded)
{
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status;
  frc_error_t err = NULL;
  struct frc_sandbox s = nobody;
  s.max_reply = 100000;
  ck_assert_int_lt(frc_sandbox_run(&s, flood_fn, NULL, &reply, &len, &status, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_TOO_BIG);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_frames_bounded)
{
  struct frc_frames f = { 0 };
  size_t off = 0, dl;
  char tag;
  const char *d;
  frc_error_t err = NULL;
  frc_frames_put(&f, 'M', "0123456789", 10);
  /* larger than the reader's bound */
  ck_assert(!frc_frames_next(f.buf, f.len, &off, &tag, &d, &dl, 9, &err));
  ck_assert_ptr_nonnull(err);
  frc_error_release(&err);
  /* truncated: the length says 10, 9 bytes follow */
  off = 0;
  ck_assert(!frc_frames_next(f.buf, f.len - 1, &off, &tag, &d, &dl, 100, &err));
  ck_assert_ptr_nonnull(err);
  frc_error_release(&err);
  /* a header cut short */
  off = 0;
  ck_assert(!frc_frames_next(f.buf, 3, &off, &tag, &d, &dl, 100, &err));
  ck_assert_ptr_nonnull(err);
  frc_error_release(&err);
  off = 0;
  ck_assert(frc_frames_next(f.buf, f.len, &off, &tag, &d, &dl, 100, &err));
  ck_assert(!frc_frame_u32(d, dl, &(uint32_t){ 0 }));
  frc_frames_release(&f);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("sandbox");
  TCase *tc = tcase_create("sandbox");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, test_forbidden_syscalls_kill);
  tcase_add_test(tc, test_clone_namespaces_kill);
  tcase_add_test(tc, test_fetch_work_allowed);
  tcase_add_test(tc, test_run_reply);
  tcase_add_test(tc, test_run_seccomp_reported);
  tcase_add_test(tc, test_run_deadline_kills);
  tcase_add_test(tc, test_run_reply_bounded);
  tcase_add_test(tc, test_run_wait_has_deadline);
  tcase_add_test(tc, test_run_std_fds_null);
  tcase_add_test(tc, test_run_cannot_see_processes);
  tcase_add_test(tc, test_frames_bounded);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
