/* syscalls.h - kernel calls the C library may not declare.
 *
 * glibc (2.36 and later) declares statx and the new mount API (open_tree,
 * move_mount, mount_setattr) in <sys/stat.h> and <sys/mount.h>.  musl
 * 1.2.3, which builds the static closure hook (cmd/flox-runc-hook), has
 * neither: there they come from the kernel's headers and syscall(2).
 * Include it after <sys/stat.h> and <sys/mount.h>.
 */
#ifndef FRC_SYSCALLS_H
#define FRC_SYSCALLS_H

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __GLIBC__
#include <linux/mount.h>
#include <linux/stat.h>

static inline int
open_tree(int dfd, const char *path, unsigned int flags)
{
  return (int) syscall(SYS_open_tree, dfd, path, flags);
}

static inline int
move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags)
{
  return (int) syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static inline int
mount_setattr(int dfd, const char *path, unsigned int flags, struct mount_attr *attr, size_t size)
{
  return (int) syscall(SYS_mount_setattr, dfd, path, flags, attr, size);
}

static inline int
statx(int dfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
  return (int) syscall(SYS_statx, dfd, path, flags, mask, buf);
}
#endif

#endif
