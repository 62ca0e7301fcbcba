/* viewpin.c - see viewpin.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bindrun.h"
#include "mounts.h"
#include "viewpin.h"
#include "util.h"

#define PIN_DIR "viewns"
/* how long a create waits for another one making a pin before it binds
 * path by path instead */
#define PIN_LOCK_WAIT_NS (2LL * 1000 * 1000 * 1000)
/* the child's error message, bounded */
#define PIN_MSG_MAX 1024
/* linux/nsfs.h from Linux 6.8 */
#define NS_GET_MNTNS_ID_ _IOR(0xb7, 0x5, unsigned long long)

char *
frc_viewpin_path(const struct frc_config *c, const char *env_key)
{
  return xasprintf("%s/" PIN_DIR "/%s", c->state_dir, env_key);
}

/* <state_dir>/viewns.lock, held while a pin is made or removed */
static char *
lock_path(const struct frc_config *c)
{
  return xasprintf("%s/" PIN_DIR ".lock", c->state_dir);
}

bool
frc_viewpin_valid(const char *path, unsigned long long *ns_ino)
{
  cleanup_close int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  /* a mount namespace's nsfs file answers NS_GET_NSTYPE; a plain file
   * (one a reboot left) does not */
  if (fd < 0 || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS || fstat(fd, &st) < 0)
    return false;
  if (ns_ino)
    *ns_ino = (unsigned long long) st.st_ino;
  return true;
}

/* dir a private mount of its own, so that the pins bound in it neither
 * propagate into other namespaces nor fail for peers there. */
static int
private_dir(const char *dir, frc_error_t *err)
{
  struct statx stx;

  if (statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
    return frc_error_errno(err, errno, "cannot stat `%s`", dir);
  if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    if (mount(dir, dir, NULL, MS_BIND, NULL) < 0)
      return frc_error_errno(err, errno, "cannot bind `%s` on itself", dir);
  if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) < 0)
    return frc_error_errno(err, errno, "cannot make `%s` a private mount", dir);
  return 0;
}

/* The mount namespace id of the process (Linux 6.8's NS_GET_MNTNS_ID),
 * looked up in the procfs directory proc (opened while the namespace had
 * one: a pinned namespace has no /proc); 0 on kernels without it. */
static unsigned long long
mntns_id(int proc)
{
  cleanup_close int fd = openat(proc, "self/ns/mnt", O_RDONLY | O_CLOEXEC);
  unsigned long long id = 0;
  if (fd < 0 || ioctl(fd, NS_GET_MNTNS_ID_, &id) < 0)
    return 0;
  return id;
}

/* The namespace made into one whose id is above older's (the namespace
 * the pin is bound in): the kernel refuses to bind a namespace's file in
 * one with a higher id (a loop of namespaces pinning each other), and
 * Linux 6.18 draws ids from per-CPU batches, so a namespace made later on
 * another CPU can have the lower one.  Each CPU's ids only grow, and the
 * CPU that gave older its id gives higher ones: one unshare per CPU at
 * most, each copying the assembled namespace's few mounts (the node's are
 * detached by then). */
static int
newer_namespace(int proc, unsigned long long older, frc_error_t *err)
{
  cpu_set_t allowed;
  int cpu = -1;

  if (older == 0 || mntns_id(proc) > older || sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
    return 0;
  while (++cpu < CPU_SETSIZE)
    {
      cpu_set_t one;
      if (!CPU_ISSET(cpu, &allowed))
        continue;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (sched_setaffinity(0, sizeof(one), &one) < 0)
        continue;
      if (unshare(CLONE_NEWNS) < 0)
        return frc_error_errno(err, errno, "cannot make a mount namespace");
      if (mntns_id(proc) > older)
        return 0;
    }
  return frc_error(err, "no CPU gave a mount namespace id above %llu", older);
}

/* In the child, in a new mount namespace: a tmpfs root holding /store, the
 * view's store directory with the closure's binds, and nothing of the
 * node's other mounts (which the namespace would keep mounted). */
static int
assemble(const char *dir, const char *view, const char *prefix, unsigned long long older,
         frc_error_t *err)
{
  cleanup_free char *view_store = xasprintf("%s/store", view);
  cleanup_free char *store = xasprintf("%s" FRC_VIEWPIN_STORE, dir);
  cleanup_free char *old = xasprintf("%s/old", dir);
  cleanup_close int sfd = -1;
  cleanup_close int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (unshare(CLONE_NEWNS) < 0)
    return frc_error_errno(err, errno, "cannot make a mount namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return frc_error_errno(err, errno, "cannot make the new mount namespace private");
  if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=16")
      < 0)
    return frc_error_errno(err, errno, "cannot mount a tmpfs on `%s`", dir);
  if (mkdir(store, 0555) < 0 || mkdir(old, 0700) < 0)
    return frc_error_errno(err, errno, "cannot make directories in `%s`", dir);
  if (mount(view_store, store, NULL, MS_BIND, NULL) < 0
      || mount(NULL, store, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
    return frc_error_errno(err, errno, "cannot bind the view `%s`", view_store);
  sfd = open(store, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sfd < 0)
    return frc_error_errno(err, errno, "cannot open `%s`", store);
  if (frc_bindhook_bind_view(view_store, sfd, prefix, err) < 0)
    return -1;
  if (syscall(SYS_pivot_root, dir, old) < 0 || chdir("/") < 0)
    return frc_error_errno(err, errno, "cannot pivot into `%s`", dir);
  if (umount2("/old", MNT_DETACH) < 0 || rmdir("/old") < 0)
    return frc_error_errno(err, errno, "cannot detach the node's mounts");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return frc_error_errno(err, errno, "cannot make the namespace's root read-only");
  return newer_namespace(proc, older, err);
}

/* Makes the namespace in a child and binds its file on pin. */
static int
make_pin(const char *dir, const char *pin, const char *view, const char *prefix, frc_error_t *err)
{
  int ready[2], hold[2];
  char msg[PIN_MSG_MAX + 1], ns[64];
  ssize_t n;
  cleanup_close int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  unsigned long long older = mntns_id(proc);
  pid_t pid;
  int rc = 0, st;

  if (pipe2(ready, O_CLOEXEC) < 0)
    return frc_error_errno(err, errno, "pipe");
  if (pipe2(hold, O_CLOEXEC) < 0)
    {
      int e = errno;
      close(ready[0]), close(ready[1]);
      return frc_error_errno(err, e, "pipe");
    }
  pid = fork();
  if (pid == 0)
    {
      frc_error_t e = NULL;
      char c;
      close(ready[0]), close(hold[1]);
      if (assemble(dir, view, prefix, older, &e) < 0)
        {
          if (write(ready[1], e->msg, strnlen(e->msg, PIN_MSG_MAX)) < 0)
            _exit(2);
          _exit(1);
        }
      if (write(ready[1], "", 1) != 1)
        _exit(2);
      /* alive until the parent has bound the namespace (or given up) */
      while (read(hold[0], &c, 1) < 0 && errno == EINTR)
        ;
      _exit(0);
    }
  close(ready[1]), close(hold[0]);
  if (pid < 0)
    {
      int e = errno;
      close(ready[0]), close(hold[1]);
      return frc_error_errno(err, e, "fork");
    }
  do
    n = read(ready[0], msg, PIN_MSG_MAX);
  while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n == 1 && msg[0] == '\0')
    {
      int fd = open(pin, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int) pid);
      if (fd < 0 || close(fd) < 0)
        rc = frc_error_errno(err, errno, "cannot make `%s`", pin);
      else if (mount(ns, pin, NULL, MS_BIND, NULL) < 0)
        rc = frc_error_errno(err, errno, "cannot bind the namespace on `%s`", pin);
    }
  else
    {
      msg[n > 0 ? n : 0] = '\0';
      rc = frc_error(err, "%s", n > 0 ? msg : "its child failed");
    }
  close(hold[1]);
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (rc < 0)
    unlink(pin);
  return rc;
}

char *
frc_viewpin_ensure(const struct frc_config *c, const char *env_key, const char *view,
                   const struct frc_logger *log, unsigned long long *ns_ino)
{
  cleanup_free char *pin = frc_viewpin_path(c, env_key);
  cleanup_free char *dir = xasprintf("%s/" PIN_DIR, c->state_dir);
  cleanup_free char *lock = lock_path(c);
  cleanup_close int lfd = -1;
  frc_error_t err = NULL;
  long long t0;

  if (frc_viewpin_valid(pin, ns_ino))
    return steal_pointer(&pin);
  t0 = frc_now_ns();
  if (frc_mkdir_p(dir, 0700, &err) < 0
      || frc_lock_file(lock, t0 + PIN_LOCK_WAIT_NS, "another create making the view's pin", &lfd, &err) < 0)
    goto fail;
  if (frc_viewpin_valid(pin, ns_ino)) /* made while this create waited */
    return steal_pointer(&pin);
  if (private_dir(dir, &err) < 0 || make_pin(dir, pin, view, c->store_prefix, &err) < 0)
    goto fail;
  if (!frc_viewpin_valid(pin, ns_ino))
    {
      frc_error(&err, "`%s` is no namespace's file once bound", pin);
      goto fail;
    }
  frc_log(log, FRC_LOG_DEBUG, "flox-runc: pinned the view of %s in %.1f ms", env_key,
          (double) (frc_now_ns() - t0) / 1e6);
  return steal_pointer(&pin);
fail:
  frc_log(log, FRC_LOG_DEBUG, "flox-runc: no pin of the view of %s (its closure is bound path by "
                              "path): %s",
          env_key, err->msg);
  frc_error_release(&err);
  return NULL;
}

int
frc_viewpin_remove(const struct frc_config *c, const char *env_key, frc_error_t *err)
{
  cleanup_free char *pin = frc_viewpin_path(c, env_key);
  cleanup_free char *lock = lock_path(c);
  cleanup_close int lfd = -1;
  frc_error_t ignored = NULL;

  /* not while a create makes a pin (of a view this removal takes away);
   * no lock file: no pin was ever made */
  if (access(lock, F_OK) == 0
      && frc_lock_file(lock, frc_now_ns() + 10 * PIN_LOCK_WAIT_NS, "a create making a view's pin", &lfd,
                       &ignored) < 0)
    frc_error_release(&ignored);
  return frc_viewpin_unmount(pin, err);
}

int
frc_viewpin_unmount(const char *pin, frc_error_t *err)
{
  /* a pin another process bound twice is unmounted whole */
  while (umount2(pin, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
    ;
  if (errno != EINVAL && errno != ENOENT)
    return frc_error_errno(err, errno, "cannot unmount the pin `%s`", pin);
  if (unlink(pin) < 0 && errno != ENOENT)
    return frc_error_errno(err, errno, "cannot remove the pin `%s`", pin);
  return 0;
}

int
frc_viewpin_each_orphan(const struct frc_config *c, int (*fn)(const char *pin, void *data), void *data)
{
  cleanup_free char *dir = xasprintf("%s/" PIN_DIR, c->state_dir);
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *e;

  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    {
      cleanup_free char *view = NULL, *pin = NULL;
      if (e->d_name[0] == '.')
        continue;
      view = frc_view_dir(c, e->d_name);
      if (access(view, F_OK) == 0 || errno != ENOENT)
        continue;
      pin = xasprintf("%s/%s", dir, e->d_name);
      if (fn(pin, data) < 0)
        return -1;
    }
  return 0;
}
