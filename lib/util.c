#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "syscalls.h"
#include "util.h"

void
frc_closep(int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close(*fd);
      errno = saved;
    }
  *fd = -1;
}

void
frc_fclosep(FILE **f)
{
  if (*f != NULL)
    fclose(*f);
  *f = NULL;
}

void
frc_strv_freep(char ***v)
{
  if (*v == NULL)
    return;
  for (char **p = *v; *p; p++)
    free(*p);
  free(*v);
  *v = NULL;
}

void
frc_closedirp(DIR **d)
{
  if (*d)
    closedir(*d);
  *d = NULL;
}

void
frc_strv_push(char ***v, size_t *n, char *s)
{
  *v = xrealloc(*v, (*n + 2) * sizeof(**v));
  (*v)[(*n)++] = s;
  (*v)[*n] = NULL;
}

bool
frc_strv_has(char *const *v, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

static void __attribute__((noreturn))
oom(void)
{
  static const char msg[] = "flox-runc: out of memory\n";
  (void) !write(2, msg, sizeof(msg) - 1);
  _exit(1);
}

void *
xmalloc0(size_t n)
{
  void *p = calloc(1, n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

void *
xrealloc(void *p, size_t n)
{
  p = realloc(p, n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

char *
xstrdup(const char *s)
{
  char *r = strdup(s ? s : "");
  if (r == NULL)
    oom();
  return r;
}

char *
xstrndup(const char *s, size_t n)
{
  char *r = strndup(s, n);
  if (r == NULL)
    oom();
  return r;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
  char *r = NULL;
  if (vasprintf(&r, fmt, ap) < 0)
    oom();
  return r;
}

char *
xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *r;
  va_start(ap, fmt);
  r = xvasprintf(fmt, ap);
  va_end(ap);
  return r;
}

int
frc_hex_digit(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int
lock_file(const char *path, int op, long long deadline_ns, const char *what, int *fd, frc_error_t *err)
{
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0)
    return frc_error_errno(err, errno, "cannot open `%s`", path);
  for (;;)
    {
      struct timespec pause = { 0, 20 * 1000000L };
      if (flock(*fd, op | LOCK_NB) == 0)
        {
          struct stat held, named;
          /* `flox-runc gc` unlinks a lock file while holding it: a lock
           * taken on the unlinked file excludes nobody who opens the path
           * now, so take the lock of the file the path names. */
          if (fstat(*fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev
              && held.st_ino == named.st_ino)
            return 0;
          close(*fd);
          *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
          if (*fd < 0)
            return frc_error_errno(err, errno, "cannot open `%s`", path);
          continue;
        }
      if (errno != EWOULDBLOCK && errno != EINTR)
        return frc_error_errno(err, errno, "cannot lock `%s`", path);
      if (frc_now_ns() >= deadline_ns)
        {
          frc_error(err, "timed out waiting for %s on this node", what);
          return frc_error_code(err, FRC_ECODE_DEADLINE);
        }
      nanosleep(&pause, NULL);
    }
}

int
frc_lock_file(const char *path, long long deadline_ns, const char *what, int *fd, frc_error_t *err)
{
  return lock_file(path, LOCK_EX, deadline_ns, what, fd, err);
}

int
frc_lock_file_shared(const char *path, long long deadline_ns, const char *what, int *fd, frc_error_t *err)
{
  return lock_file(path, LOCK_SH, deadline_ns, what, fd, err);
}

void
frc_fnv64_hex(const char *s, char out[17])
{
  unsigned long long h = 14695981039346656037ULL;
  for (; *s; s++)
    {
      h ^= (unsigned char) *s;
      h *= 1099511628211ULL;
    }
  snprintf(out, 17, "%016llx", h);
}

bool
str_has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t w = write(fd, p, len);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      p += w;
      len -= (size_t) w;
    }
  return 0;
}

/* Room in b for len more bytes and a NUL. */
static void
buf_reserve(struct frc_buf *b, size_t len)
{
  size_t cap;

  if (b->data != NULL && b->cap - b->len > len)
    return;
  cap = b->cap ? b->cap : 256;
  if (len >= SIZE_MAX / 4 - b->len)
    abort(); /* as an allocation that fails */
  while (cap - b->len <= len)
    cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void
frc_buf_add(struct frc_buf *b, const void *data, size_t len)
{
  buf_reserve(b, len);
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void
frc_buf_addf(struct frc_buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;

  /* formatted in place; a second pass when it did not fit */
  buf_reserve(b, 0);
  va_start(ap, fmt);
  n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  if ((size_t) n >= b->cap - b->len)
    {
      buf_reserve(b, (size_t) n);
      va_start(ap, fmt);
      vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
      va_end(ap);
    }
  b->len += (size_t) n;
}

void
frc_buf_release(struct frc_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int
read_file_bounded(const char *path, size_t max, char **out, size_t *len, frc_error_t *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

  if (fd < 0)
    return frc_error_errno(err, errno, "cannot open `%s`", path);
  return read_fd_bounded(fd, path, max, out, len, err);
}

int
read_fd_bounded(int fd, const char *path, size_t max, char **out, size_t *len, frc_error_t *err)
{
  cleanup_free char *buf = NULL;
  size_t used = 0, cap = 0;
  struct stat st;

  /* a regular file of a size within the bound: read in one go, with a byte
   * to spare to see its end (no growing buffer copied on the way) */
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (size_t) st.st_size <= max)
    {
      cap = (size_t) st.st_size + 1;
      buf = xrealloc(NULL, cap + 1);
    }

  for (;;)
    {
      ssize_t r;
      if (used == cap)
        {
          if (cap > max)
            return frc_error(err, "`%s` is larger than the limit of %zu bytes", path, max);
          cap = cap ? cap * 2 : 8192;
          if (cap > max + 1)
            cap = max + 1;
          buf = xrealloc(buf, cap + 1);
        }
      r = read(fd, buf + used, cap - used);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return frc_error_errno(err, errno, "cannot read `%s`", path);
        }
      if (r == 0)
        break;
      used += (size_t) r;
      if (used > max)
        return frc_error(err, "`%s` is larger than the limit of %zu bytes", path, max);
    }
  if (buf == NULL)
    buf = xmalloc0(1);
  buf[used] = '\0';
  if (len)
    *len = used;
  *out = steal_pointer(&buf);
  return 0;
}

const char *
frc_file_kind(mode_t mode)
{
  return S_ISFIFO(mode)   ? "FIFO"
         : S_ISCHR(mode)  ? "character device"
         : S_ISBLK(mode)  ? "block device"
         : S_ISSOCK(mode) ? "socket"
         : S_ISDIR(mode)  ? "directory"
         : S_ISLNK(mode)  ? "symlink"
         : S_ISREG(mode)  ? "regular file"
                          : "special file";
}

int
frc_reopen_regular(int pfd, struct stat *st)
{
  char proc[64];
  if (fstat(pfd, st) < 0)
    return -1;
  if (!S_ISREG(st->st_mode))
    return -2;
  snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
  return open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

static int
replace_file(const char *path, const void *data, size_t len, int mode, bool durable,
             frc_error_t *err)
{
  cleanup_free char *dir_copy = xstrdup(path);
  cleanup_free char *base_copy = xstrdup(path);
  const char *dir = dirname(dir_copy);
  const char *base = basename(base_copy);
  cleanup_free char *tmp = xasprintf("%s/.%s.XXXXXX", dir, base);
  cleanup_close int fd = -1;
  cleanup_close int dfd = -1;
  struct stat st;

  if (mode < 0)
    mode = stat(path, &st) == 0 ? (int) (st.st_mode & 07777) : 0644;

  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return frc_error_errno(err, errno, "cannot create a temporary file next to `%s`", path);
  if (write_all(fd, data, len) < 0 || fchmod(fd, (mode_t) mode) < 0 || (durable && fsync(fd) < 0))
    {
      int e = errno;
      unlink(tmp);
      return frc_error_errno(err, e, "cannot write `%s`", tmp);
    }
  if (rename(tmp, path) < 0)
    {
      int e = errno;
      unlink(tmp);
      return frc_error_errno(err, e, "cannot rename `%s` to `%s`", tmp, path);
    }
  if (!durable)
    return 0;
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) < 0)
    return frc_error_errno(err, errno, "cannot sync directory `%s`", dir);
  return 0;
}

int
write_file_atomic(const char *path, const void *data, size_t len, int mode, frc_error_t *err)
{
  return replace_file(path, data, len, mode, true, err);
}

int
write_file_replace(const char *path, const void *data, size_t len, int mode, frc_error_t *err)
{
  return replace_file(path, data, len, mode, false, err);
}

char *
escape_for_message(const char *s, size_t len, size_t max)
{
  size_t n = len < max ? len : max;
  char *out = xmalloc0(n * 4 + 8);
  char *o = out;

  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char) s[i];
      switch (c)
        {
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        default:
          if (c < 0x20 || c >= 0x7f)
            o += sprintf(o, "\\x%02x", c);
          else
            *o++ = (char) c;
        }
    }
  if (len > max)
    {
      memcpy(o, "...", 3);
      o += 3;
    }
  *o = '\0';
  return out;
}

long long
frc_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
frc_dir_spread(const char *dir)
{
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int flags = 0;
  if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
    return;
  flags |= FS_TOPDIR_FL;
  (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

int
frc_mkdir_p(const char *path, int mode, frc_error_t *err)
{
  cleanup_free char *p = NULL;
  /* Mostly it is there already, or only its last component is missing:
   * one call, not one per component. */
  if (mkdir(path, (mode_t) mode) == 0 || errno == EEXIST)
    return 0;
  p = xstrdup(path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/')
      {
        *s = '\0';
        if (mkdir(p, (mode_t) mode) < 0 && errno != EEXIST)
          return frc_error_errno(err, errno, "cannot create `%s`", p);
        *s = '/';
      }
  if (mkdir(p, (mode_t) mode) < 0 && errno != EEXIST)
    return frc_error_errno(err, errno, "cannot create `%s`", p);
  return 0;
}

int
frc_stat_in_root(int root_fd, const char *rel, bool follow, struct stat *st)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW),
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd, r;
  while (*rel == '/')
    rel++;
  if (*rel == '\0')
    rel = ".";
  fd = (int) syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
  if (fd < 0)
    return -1;
  r = fstat(fd, st);
  frc_closep(&fd);
  return r;
}

/* frc_rm_rf walks down with one directory descriptor at a time and comes
 * back up through "..", checking it finds the directory it came from: any
 * depth costs a few descriptors and heap, not stack.  A directory it
 * cannot empty or enter is remembered (device, inode) and skipped, so the
 * walk always ends. */
struct rm_id
{
  dev_t dev;
  ino_t ino;
};

struct rm_walk
{
  const char *top;
  unsigned long long mnt_id; /* the tree's mount: never left */
  dev_t dev; /* and its device (kernels before 5.8 have no STATX_MNT_ID) */
  struct rm_id *failed;
  size_t nfailed;
  int first_errno;
  char *first_name;
};

static void
rm_failed(struct rm_walk *w, dev_t dev, ino_t ino, const char *name, int e)
{
  if (dev || ino)
    {
      w->failed = xrealloc(w->failed, (w->nfailed + 1) * sizeof(*w->failed));
      w->failed[w->nfailed].dev = dev;
      w->failed[w->nfailed++].ino = ino;
    }
  if (w->first_errno == 0)
    {
      w->first_errno = e ? e : EIO;
      w->first_name = xstrdup(name);
    }
}

static bool
rm_is_failed(const struct rm_walk *w, dev_t dev, ino_t ino)
{
  for (size_t i = 0; i < w->nfailed; i++)
    if (w->failed[i].dev == dev && w->failed[i].ino == ino)
      return true;
  return false;
}

/* Unlinks every non-directory entry of fd; returns in *child (malloc'd) the
 * first subdirectory to walk into, with its statx. */
static int
rm_scan(struct rm_walk *w, int fd, char **child, struct statx *cst)
{
  int dfd = dup(fd);
  DIR *d;
  struct dirent *e;

  *child = NULL;
  if (dfd < 0)
    return -1;
  d = fdopendir(dfd);
  if (d == NULL)
    {
      close(dfd);
      return -1;
    }
  rewinddir(d);
  while ((e = readdir(d)) != NULL)
    {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
        {
          if (statx(fd, e->d_name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO | STATX_MNT_ID, cst) < 0)
            continue;
          if (S_ISDIR(cst->stx_mode))
            {
              dev_t dev = makedev(cst->stx_dev_major, cst->stx_dev_minor);
              if (rm_is_failed(w, dev, cst->stx_ino))
                continue;
              if (((cst->stx_mask & STATX_MNT_ID) && cst->stx_mnt_id != w->mnt_id) || dev != w->dev)
                {
                  rm_failed(w, dev, cst->stx_ino, e->d_name, EBUSY); /* a mount: leave it */
                  continue;
                }
              *child = xstrdup(e->d_name);
              break;
            }
        }
      if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT)
        rm_failed(w, 0, 0, e->d_name, errno);
    }
  closedir(d);
  return 0;
}

static int
rm_walk(struct rm_walk *w, int fd)
{
  struct rm_id *up = NULL; /* identity of each ancestor, to check ".." */
  char **names = NULL; /* the name of each level in its parent */
  size_t depth = 0;
  int rc = 0;

  for (;;)
    {
      struct statx cst;
      struct stat here;
      char *child = NULL;

      if (fstat(fd, &here) < 0)
        {
          rc = -1;
          break;
        }
      if ((here.st_mode & 0700) != 0700)
        fchmod(fd, 0700); /* built trees are read-only */
      if (rm_scan(w, fd, &child, &cst) < 0)
        {
          rm_failed(w, here.st_dev, here.st_ino, depth ? names[depth - 1] : w->top, errno);
          child = NULL;
        }
      if (child)
        {
          int nfd = openat(fd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (nfd < 0)
            {
              if (unlinkat(fd, child, AT_REMOVEDIR) < 0)
                rm_failed(w, makedev(cst.stx_dev_major, cst.stx_dev_minor), cst.stx_ino, child, errno);
              free(child);
              continue;
            }
          up = xrealloc(up, (depth + 1) * sizeof(*up));
          names = xrealloc(names, (depth + 1) * sizeof(*names));
          up[depth].dev = here.st_dev;
          up[depth].ino = here.st_ino;
          names[depth++] = child;
          close(fd);
          fd = nfd;
          continue;
        }
      if (depth == 0)
        break;
      {
        int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat pst;
        if (pfd < 0 || fstat(pfd, &pst) < 0 || pst.st_dev != up[depth - 1].dev
            || pst.st_ino != up[depth - 1].ino)
          {
            /* moved under us: stop rather than remove elsewhere */
            if (pfd >= 0)
              close(pfd);
            rm_failed(w, 0, 0, names[depth - 1], ESTALE);
            rc = -1;
            break;
          }
        close(fd);
        fd = pfd;
        depth--;
        if (unlinkat(fd, names[depth], AT_REMOVEDIR) < 0 && errno != ENOENT)
          rm_failed(w, here.st_dev, here.st_ino, names[depth], errno);
        free(names[depth]);
      }
    }
  close(fd);
  while (depth > 0)
    free(names[--depth]);
  free(names);
  free(up);
  return rc;
}

int
frc_rm_rf(const char *path, frc_error_t *err)
{
  struct rm_walk w = { .top = path };
  struct statx stx;
  int fd, e;

  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx) < 0)
    return errno == ENOENT ? 0 : frc_error_errno(err, errno, "cannot remove `%s`", path);
  if (!S_ISDIR(stx.stx_mode))
    {
      if (unlink(path) < 0 && errno != ENOENT)
        return frc_error_errno(err, errno, "cannot remove `%s`", path);
      return 0;
    }
  w.mnt_id = stx.stx_mnt_id;
  w.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return frc_error_errno(err, errno, "cannot remove `%s`", path);
  rm_walk(&w, fd);
  if (w.first_errno == 0 && rmdir(path) < 0 && errno != ENOENT)
    rm_failed(&w, 0, 0, path, errno);
  free(w.failed);
  if (w.first_errno)
    {
      cleanup_free char *name = w.first_name;
      e = w.first_errno;
      return frc_error_errno(err, e, "cannot remove `%s` (`%s` is left)", path, name);
    }
  return 0;
}
