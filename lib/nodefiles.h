/* nodefiles.h - changing a node's files all or not at all, and remembering
 * what they were.
 *
 * Owns: files of a node named by their node paths and read and written under
 * a host root ("/" on the node, /host from a container); a plan of new
 * contents (unchanged files are left out, so an empty plan means nothing to
 * do), applying it (atomic writes, directories created as needed) and
 * putting every file back byte for byte (and removing those directories)
 * when a later step fails; the record under /var/lib/flox-runc/install of
 * what each file was before flox-runc first changed it (a backup, or "did
 * not exist") and the sha256 of what it wrote, so that an uninstall can
 * tell an untouched file from one changed since; the node's own programs,
 * found and run inside the host root (chroot).  Used by lib/install.c.
 */
#ifndef FRC_NODEFILES_H
#define FRC_NODEFILES_H

#include <stdbool.h>
#include <stddef.h>

#include "engineconf.h"
#include "error.h"
#include "proc.h"

#define FRC_INSTALL_STATE_DIR "/var/lib/flox-runc/install"

/* One file the plan changes. */
struct frc_nodefile_change
{
  char *path; /* node path */
  bool old_exists, new_exists;
  char *old, *new_;
  size_t old_len, new_len;
  int old_mode, mode;
  bool applied;
};

/* One line of the record: what a file was before the first change. */
struct frc_nodefile_entry
{
  bool dir; /* a directory the installation created */
  bool created; /* a file that did not exist */
  int mode; /* of the backup */
  char sha[65]; /* of what the installation wrote */
  char *path;
};

struct frc_nodefiles
{
  const char *root; /* the host root, "/" or an absolute path without a final '/' */
  struct frc_nodefile_change *ch; /* the plan */
  size_t nch;
  char **dirs; /* directories created while applying (node paths) */
  size_t ndirs;
  struct frc_nodefile_entry *m; /* the record */
  size_t nm;
};

/* The path of a node path under the host root (malloc'd). */
char *frc_nodefiles_path(const struct frc_nodefiles *nf, const char *path);
/* Reads a node file of at most max bytes: *exists false when there is none;
 * a symlink or a non-regular file is an error. */
int frc_nodefiles_read(const struct frc_nodefiles *nf, const char *path, size_t max, char **text,
                       size_t *len, bool *exists, int *mode, frc_error_t *err);
/* The text a file will have: planned, else current (NULL: none). */
int frc_nodefiles_planned_text(struct frc_nodefiles *nf, const char *path, char **text,
                               frc_error_t *err);
/* Plans path to hold len bytes of data (NULL: to be removed) with mode (-1:
 * the file's own, 0644 for a new one); nothing when it already does. */
int frc_nodefiles_plan(struct frc_nodefiles *nf, const char *path, const char *data, size_t len,
                       int mode, frc_error_t *err);
int frc_nodefiles_apply(struct frc_nodefiles *nf, frc_error_t *err);
/* Puts back every applied file and removes the directories applying made. */
void frc_nodefiles_rollback(struct frc_nodefiles *nf);
/* The record: read it (*present false when there is none), add the plan to
 * it (a file's first change keeps its backup), forget it (after an
 * uninstall: backups, record and the directories it created, those not
 * empty said through report). */
int frc_nodefiles_record_read(struct frc_nodefiles *nf, bool *present, frc_error_t *err);
int frc_nodefiles_record_update(struct frc_nodefiles *nf, frc_error_t *err);
void frc_nodefiles_forget(struct frc_nodefiles *nf, frc_finding_fn report, void *data);
/* The node path of a file's backup. */
char *frc_nodefiles_backup_path(const char *path);
void frc_nodefiles_sha256(const void *data, size_t len, char out[65]);
void frc_nodefiles_release(struct frc_nodefiles *nf);

/* A program of the node (node path; the usual bin directories, then
 * extra), NULL when it has none. */
char *frc_nodefiles_program(const struct frc_nodefiles *nf, const char *name,
                            const char *const *extra);
/* A program of the caller's own environment (PATH, then the usual
 * directories). */
char *frc_own_program(const char *name);
/* Runs argv (argv[0] a node path) inside the host root, stdout captured. */
int frc_nodefiles_run(const struct frc_nodefiles *nf, const char *const *argv,
                      struct frc_proc_result *res, frc_error_t *err);

#endif
