#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dl.h"
#include "http.h"
#include "proc.h"
#include "sandbox.h"
#include "util.h"

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

/* Grace after the deadline for the child to report its own deadline error. */
#define DEADLINE_GRACE_MS 500

/* System calls the fetch child never makes (libcurl, OpenSSL, zlib, glibc's
 * resolver and NSS included): running programs, debugging or reading other
 * processes, mounts and namespaces, kernel modules and kexec, keyrings,
 * eBPF, perf, userfaultfd, io_uring (whose operations seccomp cannot see),
 * handles that bypass path checks, changing credentials or the personality,
 * node-wide settings, and starting processes (fork, vfork, clone without
 * CLONE_THREAD).  Anything listed kills the child (SIGSYS). */
static const int denied[] = {
  SYS_execve, SYS_execveat, SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev,
#ifdef SYS_process_madvise
  SYS_process_madvise,
#endif
#ifdef SYS_pidfd_getfd
  SYS_pidfd_getfd,
#endif
  SYS_kcmp, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_setns, SYS_unshare,
#ifdef SYS_open_tree
  SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
#endif
#ifdef SYS_mount_setattr
  SYS_mount_setattr,
#endif
  SYS_bpf, SYS_kexec_load,
#ifdef SYS_kexec_file_load
  SYS_kexec_file_load,
#endif
  SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_keyctl, SYS_add_key, SYS_request_key,
  SYS_userfaultfd, SYS_perf_event_open, SYS_fanotify_init, SYS_open_by_handle_at,
  SYS_name_to_handle_at,
#ifdef SYS_io_uring_setup
  SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
#endif
  SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl, SYS_syslog, SYS_settimeofday,
  SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_sethostname, SYS_setdomainname,
  SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
  SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_capset, SYS_personality,
#ifdef SYS_iopl
  SYS_iopl, SYS_ioperm,
#endif
#ifdef SYS_uselib
  SYS_uselib,
#endif
#ifdef SYS_lookup_dcookie
  SYS_lookup_dcookie,
#endif
#ifdef SYS_vm86
  SYS_vm86, SYS_vm86old,
#endif
#ifdef SYS_fork
  SYS_fork, SYS_vfork,
#endif
};

/* clone() flags that make namespaces: threads (libcurl's resolver) are
 * fine, new namespaces are not. */
#define CLONE_NAMESPACES                                                                           \
  (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID      \
   | CLONE_NEWNET)

#define N_DENIED (sizeof(denied) / sizeof(denied[0]))

int
frc_sandbox_seccomp(frc_error_t *err)
{
#ifndef AUDIT_ARCH_NATIVE
  return frc_error(err, "no seccomp filter is defined for this architecture: build flox-runc "
                        "for x86_64 or aarch64");
#else
  static const int to_self[] = { SYS_kill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo };
  static const int never[] = { SYS_tkill,
#ifdef SYS_pidfd_open
                               SYS_pidfd_open, SYS_pidfd_send_signal,
#endif
  };
  struct sock_filter prog[8 + 2 * N_DENIED + 8 + 5 * 4 + 2 * 4 + 2];
  struct sock_fprog fprog;
  size_t n = 0;
  pid_t self = getpid();

#define ADD(stmt) (prog[n++] = (struct sock_filter) stmt)
  /* Another architecture's numbers (an x86_64 process can make i386 calls
   * through int 0x80) would bypass the list: kill. */
  ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0));
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#ifdef __x86_64__
  /* The x32 ABI: the same numbers with bit 30 set. */
  ADD(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
  for (size_t i = 0; i < N_DENIED; i++)
    {
      ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) denied[i], 0, 1));
      ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    }
  /* clone3's flags are behind a pointer seccomp cannot read: ENOSYS makes
   * glibc fall back to clone(), whose flags it can. */
  ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1));
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  /* clone(): threads only (libcurl's resolver), without new namespaces;
   * the child never forks. */
  ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 5));
  ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
  ADD(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NAMESPACES, 1, 0));
  ADD(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0));
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  /* Signals: to itself only (a pod running as the same uid, another
   * fetch child, are not its to signal): kill, tgkill and the sigqueue
   * calls with another process as their first argument, tkill and pidfds
   * answer EPERM.  The pid is the low word of the argument, as the kernel
   * reads it. */
  for (size_t i = 0; i < sizeof(to_self) / sizeof(to_self[0]); i++)
    {
      ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) to_self[i], 0, 4));
      ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
      ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) self, 0, 1));
      ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
      ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
    }
  for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
    {
      ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) never[i], 0, 1));
      ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
    }
  ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
#undef ADD

  fprog.len = (unsigned short) n;
  fprog.filter = prog;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return frc_error_errno(err, errno, "cannot set no_new_privs");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
    return frc_error_errno(err, errno, "cannot install the seccomp filter");
  return 0;
#endif
}

static int
drop_ids_and_caps(const struct frc_sandbox *s, frc_error_t *err)
{
  const struct frc_capng_api *c = frc_dl_capng(err);
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  if (c == NULL)
    return -1;
  if (s->uid == 0)
    return frc_error(err, "the unprivileged fetch user cannot be uid 0: fix fetch_uid");
  bool was_root = geteuid() == 0;
  if (was_root)
    {
      /* No capability survives: capng_change_id applies the cleared sets
       * once the ids changed and clears the bounding set. */
      c->capng_clear(CAPNG_SELECT_BOTH);
      if (c->capng_change_id((int) s->uid, (int) s->gid,
                             CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING)
          != 0)
        return frc_error_errno(err, errno, "cannot drop to uid %u gid %u", (unsigned) s->uid,
                               (unsigned) s->gid);
    }
  /* Not root (tests, a rootless engine): the ids stay, the rest goes. */
  c->capng_clear(CAPNG_SELECT_BOTH);
  if (c->capng_apply(CAPNG_SELECT_CAPS) != 0)
    return frc_error_errno(err, errno, "cannot clear the capabilities");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

  /* Verify rather than trust: every id, no group, no capability. */
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
    return frc_error_errno(err, errno, "cannot read the process ids");
  if (was_root
      && (ru != s->uid || eu != s->uid || su != s->uid || rg != s->gid || eg != s->gid
          || sg != s->gid || getgroups(0, NULL) != 0))
    return frc_error(err, "the fetch child kept other ids or groups after the drop");
  if (ru == 0 || eu == 0 || su == 0)
    return frc_error(err, "the fetch child still has uid 0 after the drop");
  if (c->capng_get_caps_process() != 0 || c->capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
    return frc_error(err, "the fetch child still has capabilities after the drop");
  return 0;
}

/* A mount namespace of its own, private, where /proc is an empty
 * read-only tmpfs: the node's processes (a pod running as the same uid, the
 * other fetch children) cannot be looked at through /proc/<pid>/environ,
 * /root, /fd or /mem.  libcurl, OpenSSL and glibc's resolver do not need
 * /proc.  Not root (tests, a rootless engine): nothing to do, and nothing
 * to protect from a uid that is not shared. */
static int
hide_processes(frc_error_t *err)
{
  if (geteuid() != 0 || !frc_have_capability(CAP_SYS_ADMIN))
    return 0;
  if (unshare(CLONE_NEWNS) < 0)
    return frc_error_errno(err, errno, "cannot give the fetch child a mount namespace (flox-runc "
                                      "needs CAP_SYS_ADMIN and unshare allowed)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0
      || mount("none", "/proc", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") < 0)
    return frc_error_errno(err, errno, "cannot hide /proc from the fetch child");
  return 0;
}

int
frc_sandbox_enter(const struct frc_sandbox *s, frc_error_t *err)
{
  if (hide_processes(err) < 0 || drop_ids_and_caps(s, err) < 0)
    return -1;
  return frc_sandbox_seccomp(err);
}

static void __attribute__((noreturn))
child_main(const struct frc_sandbox *s, pid_t parent, int out, frc_sandbox_fn fn, void *data)
{
  frc_error_t err = NULL;
  struct frc_frames f = { 0 };
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

  /* Nothing of the parent's (the engine's console socket, the environment
   * lock, log and state descriptors) reaches the child: the reply pipe
   * becomes fd 3, stdin, stdout and stderr /dev/null (what the child has to
   * say goes into its reply frames). */
  if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0
      || dup2(out, 3) < 0)
    _exit(125);
  frc_close_fds_from(4);
  signal(SIGPIPE, SIG_DFL);
  if (frc_sandbox_enter(s, &err) < 0)
    {
      frc_frames_put_u32(&f, 'E', (uint32_t) err->code);
      frc_frames_put(&f, 'e', err->msg, strlen(err->msg));
      frc_frames_flush(&f, 3);
      _exit(126);
    }
  /* After the id change, which clears it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(125);
  _exit(fn(data, 3));
}

/* After EOF on its pipe: the child exits at once, unless hostile (it
 * closed its pipe and sleeps).  Waits until the deadline (and its grace),
 * then kills it: false.  Without a deadline, waits. */
static bool
reap_by_deadline(pid_t pid, long long deadline_ns, int *wstatus)
{
  struct timespec pause = { 0, 200000 }; /* 0.2 ms, doubling to 50 ms */
  for (;;)
    {
      pid_t r = waitpid(pid, wstatus, deadline_ns ? WNOHANG : 0);
      if (r == pid || (r < 0 && errno != EINTR))
        return true;
      if (r == 0 && frc_now_ns() > deadline_ns + DEADLINE_GRACE_MS * 1000000LL)
        {
          kill(pid, SIGKILL);
          return false;
        }
      if (r == 0)
        {
          nanosleep(&pause, NULL);
          if (pause.tv_nsec < 50000000)
            pause.tv_nsec *= 2;
        }
    }
}

int
frc_sandbox_run(const struct frc_sandbox *s, frc_sandbox_fn fn, void *data, char **reply,
                size_t *reply_len, int *status, frc_error_t *err)
{
  int p[2];
  pid_t parent = getpid(), pid;
  cleanup_free char *buf = NULL;
  size_t len = 0;
  int wstatus = 0;
  bool killed = false, too_big = false;

  *reply = NULL;
  *reply_len = 0;
  *status = -1;
  if (pipe2(p, O_CLOEXEC) < 0)
    return frc_error_errno(err, errno, "cannot create a pipe");
  pid = fork();
  if (pid < 0)
    {
      int e = errno;
      close(p[0]);
      close(p[1]);
      return frc_error_errno(err, e, "cannot start the unprivileged fetch child");
    }
  if (pid == 0)
    {
      close(p[0]);
      child_main(s, parent, p[1], fn, data);
    }
  close(p[1]);
  buf = xmalloc0(1);
  for (;;)
    {
      struct pollfd pfd = { p[0], POLLIN, 0 };
      int timeout = -1;
      ssize_t got;
      if (s->deadline_ns)
        {
          long long left = (s->deadline_ns - frc_now_ns()) / 1000000LL + DEADLINE_GRACE_MS;
          if (left <= 0)
            {
              killed = true;
              break;
            }
          timeout = left > 1000 ? 1000 : (int) left;
        }
      if (poll(&pfd, 1, timeout) <= 0)
        continue;
      buf = xrealloc(buf, len + 65536 + 1);
      got = read(p[0], buf + len, 65536);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      len += (size_t) got;
      if (len > s->max_reply)
        {
          too_big = true;
          break;
        }
    }
  close(p[0]);
  if (killed || too_big)
    kill(pid, SIGKILL);
  else if (!reap_by_deadline(pid, s->deadline_ns, &wstatus))
    killed = true;
  if (killed || too_big)
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
      ;
  if (killed)
    {
      frc_error(err, "the fetch did not finish before the deadline");
      return frc_error_code(err, FRC_ECODE_DEADLINE);
    }
  if (too_big)
    {
      frc_error(err, "the fetch child's reply is larger than %zu bytes", s->max_reply);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  if (WIFSIGNALED(wstatus))
    {
      if (WTERMSIG(wstatus) == SIGSYS)
        return frc_error(err, "the unprivileged fetch child made a system call its seccomp filter "
                              "forbids and was killed (a sign of hostile data from the network; "
                              "report it if FloxHub is genuine)");
      return frc_error(err, "the unprivileged fetch child was killed by signal %d",
                       WTERMSIG(wstatus));
    }
  buf[len] = '\0';
  *status = WEXITSTATUS(wstatus);
  *reply = steal_pointer(&buf);
  *reply_len = len;
  return 0;
}

void
frc_frames_put(struct frc_frames *f, char tag, const void *data, size_t len)
{
  uint32_t n = (uint32_t) len;
  f->buf = xrealloc(f->buf, f->len + 5 + len);
  f->buf[f->len] = tag;
  for (int i = 0; i < 4; i++)
    f->buf[f->len + 1 + (size_t) i] = (char) ((n >> (8 * i)) & 0xff);
  if (len)
    memcpy(f->buf + f->len + 5, data, len);
  f->len += 5 + len;
}

void
frc_frames_put_u32(struct frc_frames *f, char tag, uint32_t v)
{
  unsigned char b[4] = { (unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16),
                         (unsigned char) (v >> 24) };
  frc_frames_put(f, tag, b, 4);
}

int
frc_frames_flush(struct frc_frames *f, int fd)
{
  int r = f->len ? write_all(fd, f->buf, f->len) : 0;
  f->len = 0;
  return r;
}

void
frc_frames_release(struct frc_frames *f)
{
  if (f->buf)
    explicit_bzero(f->buf, f->len);
  free(f->buf);
  f->buf = NULL;
  f->len = 0;
}

bool
frc_frames_next(const char *buf, size_t len, size_t *off, char *tag, const char **data,
                size_t *dlen, size_t max, frc_error_t *err)
{
  const unsigned char *h;
  size_t n;
  if (*off >= len)
    return false;
  if (len - *off < 5)
    {
      frc_error(err, "the fetch child's reply is truncated");
      return false;
    }
  h = (const unsigned char *) buf + *off;
  n = (size_t) h[1] | (size_t) h[2] << 8 | (size_t) h[3] << 16 | (size_t) h[4] << 24;
  if (n > max || n > len - *off - 5)
    {
      frc_error(err, "the fetch child's reply has a %s frame", n > max ? "too large" : "truncated");
      return false;
    }
  *tag = (char) h[0];
  *data = buf + *off + 5;
  *dlen = n;
  *off += 5 + n;
  return true;
}

bool
frc_frame_u32(const char *data, size_t dlen, uint32_t *v)
{
  const unsigned char *b = (const unsigned char *) data;
  if (dlen != 4)
    return false;
  *v = (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 | (uint32_t) b[3] << 24;
  return true;
}
