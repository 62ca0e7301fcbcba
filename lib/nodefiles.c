#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "http.h"
#include "nodefiles.h"
#include "util.h"

#define MANIFEST FRC_INSTALL_STATE_DIR "/manifest"
#define MAX_FILE (256u << 20)

char *
frc_nodefiles_path(const struct frc_nodefiles *nf, const char *path)
{
  if (strcmp(nf->root, "/") == 0)
    return xstrdup(path);
  return xasprintf("%s%s", nf->root, path);
}

void
frc_nodefiles_sha256(const void *data, size_t len, char out[65])
{
  unsigned char d[32];
  frc_error_t ignored = NULL;
  if (frc_sha256(data, len, d, &ignored) < 0)
    {
      frc_error_release(&ignored);
      memset(d, 0, sizeof(d));
    }
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Reads a node file: *exists false when it is not there. */
int
frc_nodefiles_read(const struct frc_nodefiles *nf, const char *path, size_t max, char **text, size_t *len, bool *exists,
          int *mode, frc_error_t *err)
{
  cleanup_free char *p = frc_nodefiles_path(nf, path);
  struct stat st;
  frc_error_t rerr = NULL;
  *text = NULL;
  *len = 0;
  *exists = false;
  if (lstat(p, &st) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return frc_error_errno(err, errno, "cannot inspect %s", p);
    }
  if (!S_ISREG(st.st_mode))
    return frc_error(err, "%s is not a regular file (a symlink?): point the installer at the file "
                          "itself",
                     p);
  if (read_file_bounded(p, max, text, len, &rerr) < 0)
    {
      *err = rerr;
      return -1;
    }
  *exists = true;
  if (mode)
    *mode = (int) (st.st_mode & 07777);
  return 0;
}

static struct frc_nodefile_change *
find_change(struct frc_nodefiles *nf, const char *path)
{
  for (size_t i = 0; i < nf->nch; i++)
    if (strcmp(nf->ch[i].path, path) == 0)
      return &nf->ch[i];
  return NULL;
}

/* The text a file will have: planned, else current (NULL: absent). */
int
frc_nodefiles_planned_text(struct frc_nodefiles *nf, const char *path, char **text, frc_error_t *err)
{
  struct frc_nodefile_change *c = find_change(nf, path);
  size_t len;
  bool exists;
  if (c)
    {
      *text = c->new_exists ? xstrdup(c->new_) : NULL; /* a text file */
      return 0;
    }
  return frc_nodefiles_read(nf, path, FRC_ENGINECONF_MAX_BYTES, text, &len, &exists, NULL, err);
}

/* Plans path to hold data (NULL: to be removed) with mode (-1: the file's
 * own, 0644 for a new one); nothing when it already does. */
int
frc_nodefiles_plan(struct frc_nodefiles *nf, const char *path, const char *data, size_t len, int mode, frc_error_t *err)
{
  struct frc_nodefile_change *c = find_change(nf, path);
  if (c == NULL)
    {
      cleanup_free char *old = NULL;
      size_t old_len;
      bool exists;
      int old_mode = 0;
      if (frc_nodefiles_read(nf, path, MAX_FILE, &old, &old_len, &exists, &old_mode, err) < 0)
        return -1;
      if (mode < 0)
        mode = exists ? old_mode : 0644;
      if ((!exists && data == NULL)
          || (exists && data && old_len == len && memcmp(old, data, len) == 0 && old_mode == mode))
        return 0;
      nf->ch = xrealloc(nf->ch, (nf->nch + 1) * sizeof(*nf->ch));
      c = &nf->ch[nf->nch++];
      memset(c, 0, sizeof(*c));
      c->path = xstrdup(path);
      c->old_exists = exists;
      c->old = steal_pointer(&old);
      c->old_len = old_len;
      c->old_mode = old_mode;
    }
  if (mode < 0)
    mode = c->old_exists ? c->old_mode : 0644;
  free(c->new_);
  c->new_exists = data != NULL;
  c->new_ = NULL;
  if (data)
    {
      c->new_ = xmalloc0(len + 1); /* binaries hold NULs: no string copy */
      memcpy(c->new_, data, len);
    }
  c->new_len = data ? len : 0;
  c->mode = mode;
  return 0;
}

/* mkdir -p of a node directory, recording what it creates. */
static int
mkdirs(struct frc_nodefiles *nf, const char *path, frc_error_t *err)
{
  cleanup_free char *p = xstrdup(path);
  for (char *s = p + 1;; s++)
    if (*s == '/' || *s == '\0')
      {
        char c = *s;
        cleanup_free char *h = NULL;
        *s = '\0';
        h = frc_nodefiles_path(nf, p);
        if (mkdir(h, 0755) == 0)
          {
            nf->dirs = xrealloc(nf->dirs, (nf->ndirs + 1) * sizeof(char *));
            nf->dirs[nf->ndirs++] = xstrdup(p);
          }
        else if (errno != EEXIST)
          return frc_error_errno(err, errno, "cannot create %s", h);
        *s = c;
        if (c == '\0')
          break;
      }
  return 0;
}

static int
write_node(struct frc_nodefiles *nf, const char *path, const char *data, size_t len, int mode,
           frc_error_t *err)
{
  cleanup_free char *dir = xstrdup(path);
  cleanup_free char *h = frc_nodefiles_path(nf, path);
  *strrchr(dir, '/') = '\0';
  if (dir[0] && mkdirs(nf, dir, err) < 0)
    return -1;
  return write_file_atomic(h, data, len, mode, err);
}

void
frc_nodefiles_rollback(struct frc_nodefiles *nf)
{
  for (size_t i = nf->nch; i-- > 0;)
    {
      struct frc_nodefile_change *c = &nf->ch[i];
      cleanup_free char *h = frc_nodefiles_path(nf, c->path);
      frc_error_t ignored = NULL;
      if (!c->applied)
        continue;
      if (c->old_exists)
        write_file_atomic(h, c->old, c->old_len, c->old_mode, &ignored);
      else
        unlink(h);
      frc_error_release(&ignored);
      c->applied = false;
    }
  for (size_t i = nf->ndirs; i-- > 0;)
    {
      cleanup_free char *h = frc_nodefiles_path(nf, nf->dirs[i]);
      rmdir(h);
    }
}

int
frc_nodefiles_apply(struct frc_nodefiles *nf, frc_error_t *err)
{
  for (size_t i = 0; i < nf->nch; i++)
    {
      struct frc_nodefile_change *c = &nf->ch[i];
      if (c->new_exists)
        {
          if (write_node(nf, c->path, c->new_, c->new_len, c->mode, err) < 0)
            return -1;
        }
      else
        {
          cleanup_free char *h = frc_nodefiles_path(nf, c->path);
          if (unlink(h) < 0 && errno != ENOENT)
            return frc_error_errno(err, errno, "cannot remove %s", h);
        }
      c->applied = true;
    }
  return 0;
}

/* ------------------------------------------------------------ the record */

static void
record_release(struct frc_nodefiles *nf)
{
  for (size_t i = 0; i < nf->nm; i++)
    free(nf->m[i].path);
  free(nf->m);
  nf->m = NULL;
  nf->nm = 0;
}

int
frc_nodefiles_record_read(struct frc_nodefiles *nf, bool *present, frc_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len;
  char *save = NULL;
  int lineno = 0;
  if (frc_nodefiles_read(nf, MANIFEST, 1 << 20, &text, &len, present, NULL, err) < 0)
    return -1;
  for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
    {
      char kind[8], how[12], sha[65];
      unsigned int mode;
      int n = 0;
      struct frc_nodefile_entry *e;
      lineno++;
      if (sscanf(l, "%7s %11s %64s %o %n", kind, how, sha, &mode, &n) != 4 || n == 0 || l[n] != '/')
        return frc_error(err, "%s%s:%d: malformed: restore the node by hand (its backups are in %s)",
                         strcmp(nf->root, "/") ? nf->root : "", MANIFEST, lineno, FRC_INSTALL_STATE_DIR);
      nf->m = xrealloc(nf->m, (nf->nm + 1) * sizeof(*nf->m));
      e = &nf->m[nf->nm++];
      memset(e, 0, sizeof(*e));
      e->dir = strcmp(kind, "dir") == 0;
      e->created = strcmp(how, "created") == 0;
      e->mode = (int) (mode & 07777);
      snprintf(e->sha, sizeof(e->sha), "%s", sha);
      e->path = xstrdup(l + n);
    }
  return 0;
}

static struct frc_nodefile_entry *
record_find(struct frc_nodefiles *nf, const char *path, bool dir)
{
  for (size_t i = 0; i < nf->nm; i++)
    if (nf->m[i].dir == dir && strcmp(nf->m[i].path, path) == 0)
      return &nf->m[i];
  return NULL;
}

char *
frc_nodefiles_backup_path(const char *path)
{
  char h[17];
  frc_fnv64_hex(path, h);
  return xasprintf("%s/backup/%s", FRC_INSTALL_STATE_DIR, h);
}

static void
record_add(struct frc_nodefiles *nf, bool dir, bool created, int mode, const char *sha, const char *path)
{
  struct frc_nodefile_entry *e;
  nf->m = xrealloc(nf->m, (nf->nm + 1) * sizeof(*nf->m));
  e = &nf->m[nf->nm++];
  memset(e, 0, sizeof(*e));
  e->dir = dir;
  e->created = created;
  e->mode = mode;
  snprintf(e->sha, sizeof(e->sha), "%s", sha);
  e->path = xstrdup(path);
}

/* Records this run's changes: the first time a file is touched its old
 * content is kept as the backup. */
int
frc_nodefiles_record_update(struct frc_nodefiles *nf, frc_error_t *err)
{
  cleanup_free char *out = NULL;
  if (mkdirs(nf, FRC_INSTALL_STATE_DIR "/backup", err) < 0)
    return -1;
  for (size_t i = 0; i < nf->nch; i++)
    {
      struct frc_nodefile_change *c = &nf->ch[i];
      struct frc_nodefile_entry *e = record_find(nf, c->path, false);
      char sha[65] = "-";
      if (c->new_exists)
        frc_nodefiles_sha256(c->new_, c->new_len, sha);
      if (e)
        {
          snprintf(e->sha, sizeof(e->sha), "%s", sha);
          continue;
        }
      if (c->old_exists)
        {
          cleanup_free char *b = frc_nodefiles_backup_path(c->path);
          if (write_node(nf, b, c->old, c->old_len, 0600, err) < 0)
            return -1;
        }
      record_add(nf, false, !c->old_exists, c->old_mode, sha, c->path);
    }
  for (size_t i = 0; i < nf->ndirs; i++)
    if (!record_find(nf, nf->dirs[i], true))
      record_add(nf, true, true, 0755, "-", nf->dirs[i]);
  out = xstrdup("");
  for (size_t i = 0; i < nf->nm; i++)
    {
      char *n = xasprintf("%s%s %s %s %04o %s\n", out, nf->m[i].dir ? "dir" : "file",
                          nf->m[i].created ? "created" : "backup", nf->m[i].sha, nf->m[i].mode,
                          nf->m[i].path);
      free(out);
      out = n;
    }
  return write_node(nf, MANIFEST, out, strlen(out), 0600, err);
}

/* ------------------------------------------------------------ host tools */

static const char *const bin_dirs[] = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                        "/usr/bin",        "/sbin",           "/bin",
                                        NULL };

/* A program of the node (a node path), NULL when it has none. */
char *
frc_nodefiles_program(const struct frc_nodefiles *nf, const char *name, const char *const *extra)
{
  for (int pass = 0; pass < 2; pass++)
    for (const char *const *d = pass ? extra : bin_dirs; d && *d; d++)
      {
        cleanup_free char *p = xasprintf("%s/%s", *d, name);
        cleanup_free char *h = frc_nodefiles_path(nf, p);
        if (access(h, X_OK) == 0)
          return steal_pointer(&p);
      }
  return NULL;
}

/* A program of the installer's own environment. */
char *
frc_own_program(const char *name)
{
  const char *path = getenv("PATH");
  cleanup_free char *copy = xstrdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *p = xasprintf("%s/%s", d, name);
      if (d[0] == '/' && access(p, X_OK) == 0)
        return steal_pointer(&p);
    }
  for (const char *const *d = bin_dirs; *d; d++)
    {
      cleanup_free char *p = xasprintf("%s/%s", *d, name);
      if (access(p, X_OK) == 0)
        return steal_pointer(&p);
    }
  return NULL;
}

/* Runs a node program (argv[0] a node path) inside the host root. */
int
frc_nodefiles_run(const struct frc_nodefiles *nf, const char *const *argv, struct frc_proc_result *res,
            frc_error_t *err)
{
  const char *full[16];
  size_t n = 0;
  cleanup_free char *chroot_bin = NULL;
  if (strcmp(nf->root, "/") != 0)
    {
      chroot_bin = frc_own_program("chroot");
      if (chroot_bin == NULL)
        return frc_error(err, "no chroot program to run %s in %s: install coreutils or busybox in "
                              "the installer's image",
                         argv[0], nf->root);
      full[n++] = chroot_bin;
      full[n++] = nf->root;
    }
  for (; *argv && n < 15; argv++)
    full[n++] = *argv;
  full[n] = NULL;
  {
    struct frc_proc p = { .argv = full, .deadline_ns = frc_now_ns() + 60000000000LL,
                          .capture_stdout = 1 };
    return frc_proc_run(&p, res, err);
  }
}

/* After a successful uninstall: the record and the directories it created. */
void
frc_nodefiles_forget(struct frc_nodefiles *nf, frc_finding_fn report, void *data)
{
  cleanup_free char *m = frc_nodefiles_path(nf, MANIFEST);
  for (size_t i = 0; i < nf->nm; i++)
    if (!nf->m[i].dir && !nf->m[i].created)
      {
        cleanup_free char *b = frc_nodefiles_backup_path(nf->m[i].path);
        cleanup_free char *h = frc_nodefiles_path(nf, b);
        unlink(h);
      }
  unlink(m);
  {
    cleanup_free char *bd = frc_nodefiles_path(nf, FRC_INSTALL_STATE_DIR "/backup");
    cleanup_free char *sd = frc_nodefiles_path(nf, FRC_INSTALL_STATE_DIR);
    rmdir(bd);
    rmdir(sd);
  }
  for (size_t i = nf->nm; i-- > 0;)
    if (nf->m[i].dir)
      {
        cleanup_free char *h = frc_nodefiles_path(nf, nf->m[i].path);
        if (rmdir(h) < 0 && errno != ENOENT && report)
          {
            cleanup_free char *msg = xasprintf("%s is not removed: %s (it holds files flox-runc "
                                               "did not install)",
                                               nf->m[i].path, strerror(errno));
            report(FRC_FINDING_NOTE, msg, data);
          }
      }
}

void
frc_nodefiles_release(struct frc_nodefiles *nf)
{
  for (size_t i = 0; i < nf->nch; i++)
    {
      free(nf->ch[i].path);
      free(nf->ch[i].old);
      free(nf->ch[i].new_);
    }
  free(nf->ch);
  for (size_t i = 0; i < nf->ndirs; i++)
    free(nf->dirs[i]);
  free(nf->dirs);
  record_release(nf);
}
