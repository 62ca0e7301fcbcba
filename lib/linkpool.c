/* The node's pool of environment-tree symlinks (linkpool.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "linkpool.h"
#include "util.h"

/* The entry's name: the SHA-256 of the target, in hex. */
static void
entry_name(const char *target, char out[65])
{
  unsigned char d[32];
  frc_sha256(target, strlen(target), d, NULL);
  frc_hex(d, sizeof(d), out);
}

/* dfd/name is a symlink holding exactly target. */
static bool
holds(int dfd, const char *name, const char *target, size_t len)
{
  char buf[PATH_MAX];
  ssize_t n = len < sizeof(buf) ? readlinkat(dfd, name, buf, sizeof(buf)) : -1;
  return n >= 0 && (size_t) n == len && memcmp(buf, target, len) == 0;
}

void
frc_linkpool_open(struct frc_linkpool *p, const char *dir)
{
  int fd;
  DIR *d;
  struct dirent *e;

  p->fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  p->empty = true;
  if (p->fd < 0 || (fd = dup(p->fd)) < 0)
    return;
  if ((d = fdopendir(fd)) == NULL)
    {
      close(fd);
      p->empty = false;
      return;
    }
  while (p->empty && (e = readdir(d)) != NULL)
    p->empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
  closedir(d);
}

void
frc_linkpool_close(struct frc_linkpool *p)
{
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
}

int
frc_linkpool_symlink(const struct frc_linkpool *p, const char *target, int dfd,
                     const char *name, const struct timespec times[2], bool *shared)
{
  char entry[65];

  *shared = false;
  /* A pool empty when the build began has nothing to look up (a cold node). */
  if (p->fd >= 0 && !p->empty)
    {
      entry_name(target, entry);
      if (linkat(p->fd, entry, dfd, name, 0) == 0)
        {
          if (holds(dfd, name, target, strlen(target)))
            {
              *shared = true;
              return 0;
            }
          /* Not what its name promises (the pool is root's only: a damaged
           * disk, a hand edit): this tree gets its own symlink. */
          if (unlinkat(dfd, name, 0) < 0)
            return -1;
        }
      /* ENOENT: none yet; EMLINK (the inode's link limit), EXDEV, ...: not pooled */
    }
  if (symlinkat(target, dfd, name) < 0 || utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  return 0;
}

static void
add_dir(int pool_fd, int dfd, size_t depth, size_t *added)
{
  int fd = depth < FRC_LINKPOOL_MAX_DEPTH ? dup(dfd) : -1;
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *e;

  if (d == NULL)
    {
      if (fd >= 0)
        close(fd);
      return;
    }
  while ((e = readdir(d)) != NULL)
    {
      char target[PATH_MAX], entry[65];
      ssize_t n;
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      if (e->d_type == DT_DIR)
        {
          int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            {
              add_dir(pool_fd, sub, depth + 1, added);
              close(sub);
            }
          continue;
        }
      if (e->d_type != DT_LNK)
        continue; /* DT_UNKNOWN too: the trees are on file systems that say */
      n = readlinkat(dfd, e->d_name, target, sizeof(target) - 1);
      if (n <= 0)
        continue;
      target[n] = '\0';
      entry_name(target, entry);
      /* EEXIST: the pool has that target (this tree's symlink may be it) */
      if (linkat(dfd, e->d_name, pool_fd, entry, 0) == 0 && added)
        (*added)++;
    }
  closedir(d);
}

void
frc_linkpool_add_tree(const char *dir, const char *tree_dir, size_t *added)
{
  cleanup_close int pool_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int tree_fd = open(tree_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (added)
    *added = 0;
  if (pool_fd >= 0 && tree_fd >= 0)
    add_dir(pool_fd, tree_fd, 0, added);
}

int
frc_linkpool_sweep(const char *dir, bool dry_run, size_t *freed, frc_error_t *err)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *e;
  int rc = 0;

  *freed = 0;
  if (d == NULL)
    return errno == ENOENT ? 0 : frc_error_errno(err, errno, "cannot read `%s`", dir);
  while ((e = readdir(d)) != NULL)
    {
      struct stat st;
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode)
          || st.st_nlink > 1)
        continue;
      if (!dry_run && unlinkat(dirfd(d), e->d_name, 0) < 0)
        {
          if (errno != ENOENT && rc == 0)
            rc = frc_error_errno(err, errno, "cannot remove `%s/%s`", dir, e->d_name);
          continue;
        }
      (*freed)++;
    }
  return rc;
}
