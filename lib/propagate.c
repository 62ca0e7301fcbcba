/* Propagated packages as buildenv/builder.pl links them (addPkg,
 * builder.pl:313-372, and the drain of %postponed, builder.pl:839-873). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "propagate.h"
#include "util.h"

#define STORE_PREFIX "/nix/store/"
#define STORE_PREFIX_LEN (sizeof(STORE_PREFIX) - 1)

/* builder.pl parseStorePath: the name is the part of "<hash>-<name>" before
 * the first "-<digit>", the version the part up to the next one. */
static void
name_version(const char *path, size_t *nlen, const char **ver, size_t *vlen)
{
  const char *p = path + STORE_PREFIX_LEN;
  const char *end = p + strcspn(p, "/");
  const char *dash = memchr(p, '-', (size_t) (end - p));
  const char *name = dash ? dash + 1 : end, *s;

  for (s = name; s < end; s++)
    if (s[0] == '-' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
      break;
  *nlen = (size_t) (s - name);
  *ver = s < end ? s + 1 : end;
  for (s = *ver; s < end; s++)
    if (s[0] == '-' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
      break;
  *vlen = (size_t) (s - *ver);
}

static int
cmp_part(const char *a, size_t alen, const char *b, size_t blen)
{
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c != 0)
    return c < 0 ? -1 : 1;
  return alen < blen ? -1 : alen > blen;
}

int
frc_store_path_cmp(const char *a, const char *b)
{
  const char *av, *bv;
  size_t an, bn, avl, bvl;
  const char *aname, *bname;
  int c;

  if (!str_has_prefix(a, STORE_PREFIX) || !str_has_prefix(b, STORE_PREFIX))
    return strcmp(a, b);
  name_version(a, &an, &av, &avl);
  name_version(b, &bn, &bv, &bvl);
  aname = strchr(a + STORE_PREFIX_LEN, '-');
  bname = strchr(b + STORE_PREFIX_LEN, '-');
  if (aname && bname && (c = cmp_part(aname + 1, an, bname + 1, bn)) != 0)
    return c;
  if ((c = cmp_part(av, avl, bv, bvl)) != 0)
    return c;
  /* basename (what follows the store path: nothing here), then the path */
  c = strcmp(a, b);
  return c < 0 ? -1 : c > 0;
}

struct pending
{
  char *path;
  long priority;
};

static int
cmp_pending(const void *x, const void *y)
{
  return frc_store_path_cmp(((const struct pending *) x)->path, ((const struct pending *) y)->path);
}

struct walk
{
  int store_fd;
  bool dev;
  struct frc_strset done;
  char **owned; /* strings the sets point to */
  size_t nowned;
  struct pending *post; /* %postponed */
  size_t npost;
  struct frc_strset postset;
  struct frc_propagated *out;
  size_t nout;
  size_t calls; /* drain calls: builder.pl's counter moves on each */
};

static const char *
own(struct walk *w, const char *s)
{
  w->owned = xrealloc(w->owned, (w->nowned + 1) * sizeof(char *));
  return w->owned[w->nowned++] = xstrdup(s);
}

static void
walk_release(struct walk *w)
{
  for (size_t i = 0; i < w->nowned; i++)
    free(w->owned[i]);
  free(w->owned);
  for (size_t i = 0; i < w->npost; i++)
    free(w->post[i].path);
  free(w->post);
  frc_strset_release(&w->done);
  frc_strset_release(&w->postset);
  frc_propagated_free(w->out, w->nout);
  if (w->store_fd >= 0)
    close(w->store_fd);
}

/* The first line of <path>/nix-support/<file> (builder.pl reads one line),
 * NULL when there is none. */
static int
read_list(struct walk *w, const char *path, const char *file, char **text, frc_error_t *err)
{
  struct open_how how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  cleanup_free char *rel = xasprintf("%s/nix-support/%s", path + STORE_PREFIX_LEN, file);
  cleanup_close int fd = (int) syscall(SYS_openat2, w->store_fd, rel, &how, sizeof(how));
  cleanup_free char *buf = NULL;
  size_t len = 0;
  struct stat st;

  *text = NULL;
  if (fd < 0 && (errno == ENOSYS || errno == EPERM))
    fd = openat(w->store_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return 0; /* absent, or not a plain path in the store: builder.pl's -e */
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return 0;
  buf = xmalloc0(FRC_PROPAGATE_FILE_MAX + 1);
  for (;;)
    {
      ssize_t r = read(fd, buf + len, FRC_PROPAGATE_FILE_MAX - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return frc_error_errno(err, errno, "cannot read %s/nix-support/%s", path, file);
      if (r == 0 || memchr(buf + len, '\n', (size_t) r) != NULL)
        {
          len += (size_t) r;
          break;
        }
      len += (size_t) r;
      if (len == FRC_PROPAGATE_FILE_MAX)
        {
          frc_error(err, "%s/nix-support/%s is larger than %u KiB: the store contents are "
                         "unusual or hostile",
                    path, file, FRC_PROPAGATE_FILE_MAX >> 10);
          return frc_error_code(err, FRC_ECODE_TOO_BIG);
        }
    }
  buf[strcspn(buf, "\n")] = '\0';
  *text = steal_pointer(&buf);
  return 0;
}

static int
postpone(struct walk *w, const char *p, long priority)
{
  if (frc_strset_has(&w->done, p))
    return 0;
  if (frc_strset_has(&w->postset, p))
    {
      for (size_t i = 0; i < w->npost; i++) /* `$postponed{$p} = $priority`: the last one */
        if (strcmp(w->post[i].path, p) == 0)
          w->post[i].priority = priority;
      return 0;
    }
  w->post = xrealloc(w->post, (w->npost + 1) * sizeof(*w->post));
  w->post[w->npost].path = xstrdup(p);
  w->post[w->npost++].priority = priority;
  frc_strset_add(&w->postset, w->post[w->npost - 1].path);
  return 0;
}

static int
follow(struct walk *w, const char *path, const char *file, long priority, bool skip_stubs,
       frc_error_t *err)
{
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (read_list(w, path, file, &text, err) < 0)
    return -1;
  for (char *t = text ? strtok_r(text, " \t\r\f\v", &save) : NULL; t;
       t = strtok_r(NULL, " \t\r\f\v", &save))
    {
      size_t tl = strlen(t);
      if (skip_stubs && tl >= 6 && strcmp(t + tl - 6, "-stubs") == 0) /* builder.pl:349 */
        continue;
      if (!frc_store_path_valid(t))
        {
          cleanup_free char *m = escape_for_message(t, tl, 120);
          return frc_error(err, "%s/nix-support/%s names `%s`, which is not a store path", path,
                           file, m);
        }
      if (postpone(w, t, priority) < 0)
        return -1;
    }
  return 0;
}

/* builder.pl addPkg: each path once; dev first queues its propagated build
 * inputs (builder.pl:332-357), both modes its propagated user-env packages
 * (builder.pl:360-370), at the priority it was linked at. */
static int
add_pkg(struct walk *w, const char *path, long priority, frc_error_t *err)
{
  if (frc_strset_has(&w->done, path))
    return 0;
  frc_strset_add(&w->done, own(w, path));
  if (w->dev && follow(w, path, "propagated-build-inputs", priority, true, err) < 0)
    return -1;
  return follow(w, path, "propagated-user-env-packages", priority, false, err);
}

static int
walk_mode(struct walk *w, const struct frc_lockfile *l, enum frc_mode mode, size_t counter,
          frc_error_t *err)
{
  /* The explicit packages in the order builder.pl adds them
   * (builder.pl:820-837); one entry's paths share a priority, so their
   * order there does not matter here. */
  cleanup_free struct frc_lock_link *links = NULL;
  size_t nlinks = frc_lock_links(l, mode, &links);
  for (size_t i = 0; i < nlinks; i++)
    if (add_pkg(w, links[i].path, links[i].priority, err) < 0)
      return -1;
  /* The drain, batch by batch in byPackageName order (builder.pl:860-873). */
  while (w->npost > 0)
    {
      struct pending *batch = w->post;
      size_t nbatch = w->npost;
      int rc = 0;

      w->post = NULL;
      w->npost = 0;
      frc_strset_release(&w->postset);
      qsort(batch, nbatch, sizeof(*batch), cmp_pending);
      for (size_t i = 0; i < nbatch && rc == 0; i++)
        {
          const char *path = batch[i].path;
          long prio = batch[i].priority, final;
          struct stat st;
          if (prio < FRC_LOCK_DEMOTE)
            prio *= FRC_LOCK_DEMOTE;
          final = prio + (long) counter++;
          w->calls++;
          if (frc_strset_has(&w->done, path))
            continue;
          if (w->nout >= FRC_LOCK_STORE_PATHS_MAX)
            {
              frc_error(err, "the packages propagate more than %d store paths: the store "
                             "contents are unusual or hostile",
                        FRC_LOCK_STORE_PATHS_MAX);
              rc = frc_error_code(err, FRC_ECODE_TOO_BIG);
              break;
            }
          if (fstatat(w->store_fd, path + STORE_PREFIX_LEN, &st, AT_SYMLINK_NOFOLLOW) < 0)
            {
              rc = frc_error(err, "the propagated package %s is not in the store: realise the "
                                  "environment's packages first",
                             path);
              break;
            }
          w->out = xrealloc(w->out, (w->nout + 1) * sizeof(*w->out));
          w->out[w->nout].path = xstrdup(path);
          w->out[w->nout++].priority = final;
          rc = add_pkg(w, path, final, err);
        }
      for (size_t i = 0; i < nbatch; i++)
        free(batch[i].path);
      free(batch);
      if (rc < 0)
        return -1;
    }
  return 0;
}

int
frc_propagate(const char *store_root, const struct frc_lockfile *l, enum frc_mode mode,
              struct frc_propagated **out, size_t *n, frc_error_t *err)
{
  const char *root = store_root && *store_root ? store_root : "/";
  cleanup_free char *store = xasprintf("%s%s", strcmp(root, "/") == 0 ? "" : root, "/nix/store");
  size_t base = 2 * l->n_other + l->n_build; /* builder.pl:773-791 */
  struct walk w = { .store_fd = -1 };
  int rc = -1;

  *out = NULL;
  *n = 0;
  w.store_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w.store_fd < 0)
    return frc_error_errno(err, errno, "cannot open the Nix store `%s`", store);
  /* The run environment is built first and moves the counter
   * (builder.pl:996-1011): a dev build counts on from there. */
  if (walk_mode(&w, l, FRC_MODE_RUN, base, err) < 0)
    goto out;
  if (mode == FRC_MODE_DEV)
    {
      size_t run_calls = w.calls;
      int fd = w.store_fd;
      w.store_fd = -1;
      walk_release(&w);
      memset(&w, 0, sizeof(w));
      w.store_fd = fd;
      w.dev = true;
      if (walk_mode(&w, l, FRC_MODE_DEV, base + run_calls, err) < 0)
        goto out;
    }
  *out = steal_pointer(&w.out);
  *n = w.nout;
  w.nout = 0;
  rc = 0;
out:
  walk_release(&w);
  return rc;
}

void
frc_propagated_free(struct frc_propagated *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i].path);
  free(v);
}
