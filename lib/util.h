/* util.h - small helpers shared by every part of flox-runc.
 *
 * Owns: the __attribute__((cleanup)) helpers (cleanup_free, cleanup_close,
 * cleanup_file, cleanup_dir, cleanup_strv, ...), checked allocation, the
 * NULL-terminated string list (frc_strv_*), the growing buffer (frc_buf),
 * whole-file I/O with a size bound (read_file_bounded, read_fd_bounded; an
 * O_PATH descriptor reopened only when it holds a regular file:
 * frc_reopen_regular) and atomic replacement (write_file_atomic: temporary
 * file in the same directory, fsync, rename, fsync of the directory), and
 * the placement hint for directories that receive whole trees
 * (frc_dir_spread).
 */
#ifndef FRC_UTIL_H
#define FRC_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <stdbool.h>

#include "error.h"

static inline void frc_freep(void *p) { free(*(void **) p); }
void frc_closep(int *fd);
void frc_fclosep(FILE **f);
void frc_strv_freep(char ***v);
void frc_closedirp(DIR **d);

#define cleanup_free __attribute__((cleanup(frc_freep)))
#define cleanup_close __attribute__((cleanup(frc_closep)))
#define cleanup_file __attribute__((cleanup(frc_fclosep)))
#define cleanup_strv __attribute__((cleanup(frc_strv_freep)))
#define cleanup_dir __attribute__((cleanup(frc_closedirp)))

/* A NULL-terminated string list *v of *n entries: push appends s (taking
 * it), has tells whether one of the first n entries equals s. */
void frc_strv_push(char ***v, size_t *n, char *s);
bool frc_strv_has(char *const *v, size_t n, const char *s);

/* Hand ownership out of a cleanup_* variable. */
#define steal_pointer(pp) __extension__({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) __extension__({ int _fd = *(fdp); *(fdp) = -1; _fd; })

void *xmalloc0(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A growing byte buffer (text or binary): data holds len bytes and, once
 * anything was added, a NUL after them (data is NULL before).  Grows by
 * doubling; add/addf never fail (allocation aborts, as xmalloc0); release
 * frees data and empties b. */
struct frc_buf
{
  char *data;
  size_t len;
  size_t cap;
};

void frc_buf_add(struct frc_buf *b, const void *data, size_t len);
void frc_buf_addf(struct frc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void frc_buf_release(struct frc_buf *b);
#define cleanup_buf __attribute__((cleanup(frc_buf_release)))

/* The value of a hex digit, -1 when c is not one. */
int frc_hex_digit(char c);

/* Opens (creating) path and takes an exclusive flock on it, waiting at most
 * until deadline_ns (CLOCK_MONOTONIC); *fd is the locked file.  what names
 * the work being waited for in the timeout message (code
 * FRC_ECODE_DEADLINE). */
int frc_lock_file(const char *path, long long deadline_ns, const char *what, int *fd,
                  frc_error_t *err);
/* The same, shared: many holders, none while an exclusive one holds it. */
int frc_lock_file_shared(const char *path, long long deadline_ns, const char *what, int *fd,
                         frc_error_t *err);

/* Reads at most max bytes; a bigger file is an error naming path and bound.
 * The result is NUL-terminated; *len (optional) excludes the NUL. */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len, frc_error_t *err);
/* The same from an open descriptor (read to its end from where it is);
 * name is the file's name in messages. */
int read_fd_bounded(int fd, const char *name, size_t max, char **out, size_t *len, frc_error_t *err);

/* What mode's file type is, for messages: "FIFO", "character device",
 * "block device", "socket", "directory", "symlink", "regular file". */
const char *frc_file_kind(mode_t mode);
/* Opens for reading (O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC) the file the
 * O_PATH descriptor pfd holds, once fstat (into *st) says it is a regular
 * file, through /proc/self/fd: that very inode, never a name looked up
 * again.  A device node, FIFO or socket is never open()ed (a device's
 * driver would run as root, a FIFO block): -2 (st says what it is).  -1
 * with errno when fstat or the reopen fails (/proc not mounted). */
int frc_reopen_regular(int pfd, struct stat *st);

/* Replaces path atomically with data: writes "<dir>/.<base>.XXXXXX", fsyncs it,
 * renames it over path, fsyncs the directory.  mode < 0 keeps the mode of the
 * existing file (0644 when there is none).  On failure path is untouched and
 * the temporary file is removed. */
int write_file_atomic(const char *path, const void *data, size_t len, int mode, frc_error_t *err);

/* The same replacement without the fsyncs: for state that a crash may lose
 * because it is worthless after one (per-container records: the containers
 * are gone too).  Readers must treat a damaged file as absent. */
int write_file_replace(const char *path, const void *data, size_t len, int mode, frc_error_t *err);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);

/* Copies s into a printable, bounded form for messages: control characters,
 * quotes, backslashes and non-ASCII bytes are escaped (\n, \xNN), and the
 * result is cut after max input bytes with "..." appended. */
char *escape_for_message(const char *s, size_t len, size_t max);

bool str_has_prefix(const char *s, const char *prefix);

/* FNV-1a 64 of s as 16 hex digits: names directories, never guards secrets. */
void frc_fnv64_hex(const char *s, char out[17]);

/* fstat of rel resolved inside the tree at root_fd the way the container
 * will resolve it (openat2 RESOLVE_IN_ROOT: absolute symlinks and ".." stay
 * inside the tree), never a file of the node outside it; follow: whether a
 * final symlink is followed.  -1 with errno when it does not resolve. */
int frc_stat_in_root(int root_fd, const char *rel, bool follow, struct stat *st);

/* Best effort: marks the directory dir as the top of directory hierarchies
 * (ext4's FS_TOPDIR_FL, `chattr +T`), so that each directory made in it
 * starts in a block group of its own with free inodes, and the files made
 * in that directory follow.  What it saves: ext4 without a journal skips
 * the inodes freed in the last minute, one by one, on every allocation, so
 * rebuilding thousands of entries where thousands were just removed (an
 * environment evicted and built again) costs ~0.5 ms per entry instead of
 * ~30 us.  Elsewhere it does nothing. */
void frc_dir_spread(const char *dir);

/* CLOCK_MONOTONIC now, in nanoseconds (deadlines). */
long long frc_now_ns(void);

/* mkdir -p with mode for every directory created. */
int frc_mkdir_p(const char *path, int mode, frc_error_t *err);
/* Removes a tree without following symlinks (read-only directories too),
 * at any depth with a bounded number of descriptors, never crossing into
 * another mount; a missing path is fine.  Whatever cannot be removed is
 * left and the error names the first such path. */
int frc_rm_rf(const char *path, frc_error_t *err);

#endif
