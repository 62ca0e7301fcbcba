#include <errno.h>
#include <dirent.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engineconf.h"
#include "util.h"

/* --------------------------------------------------------------- findings */

static void say(const struct frc_engine_check *chk, enum frc_finding kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(const struct frc_engine_check *chk, enum frc_finding kind, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  msg = xvasprintf(fmt, ap);
  va_end(ap);
  chk->report(kind, msg, chk->data);
  free(msg);
}

/* Whether a TOML array value lets flox.dev/environment through the way
 * containerd matches annotations (globs). */
static bool
array_allows_flox(const char *v)
{
  cleanup_strv char **a = frc_toml_string_array(v);
  for (char **s = a; s && *s; s++)
    if (strcmp(*s, "flox.dev/*") == 0 || strcmp(*s, "*") == 0 || strcmp(*s, "flox.dev/environment") == 0)
      return true;
  return false;
}

/* A merged view: the keys containerd (or CRI-O) ends up with, later ones
 * winning. */
struct view
{
  const struct frc_toml_kv **kv;
  size_t n;
};

static void
view_add(struct view *v, const struct frc_toml_kv *kv)
{
  v->kv = xrealloc(v->kv, (v->n + 1) * sizeof(*v->kv));
  v->kv[v->n++] = kv;
}

static const struct frc_toml_kv *
view_get(const struct view *v, const char *table, const char *key)
{
  const struct frc_toml_kv *found = NULL;
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->kv[i]->table, table) == 0 && strcmp(v->kv[i]->key, key) == 0)
      found = v->kv[i];
  return found;
}

/* table.sub.key, or key "sub.key" in table */
static const struct frc_toml_kv *
view_get_either(const struct view *v, const char *table, const char *sub, const char *key)
{
  cleanup_free char *full = xasprintf("%s.%s", table, sub);
  cleanup_free char *dotted = xasprintf("%s.%s", sub, key);
  const struct frc_toml_kv *kv = view_get(v, full, key);
  return kv ? kv : view_get(v, table, dotted);
}

/* ------------------------------------------------------------- containerd */

static const struct
{
  const char *plugin; /* plugin id as it appears under plugins. */
  const char *runtimes; /* prefix of a runtime's table */
  long version; /* the config version that reads it */
} cri_plugins[] = {
  { "cri", "plugins.cri.containerd.runtimes.", 1 },
  { "io.containerd.grpc.v1.cri", "plugins.io.containerd.grpc.v1.cri.containerd.runtimes.", 2 },
  { "io.containerd.cri.v1.runtime", "plugins.io.containerd.cri.v1.runtime.containerd.runtimes.", 3 },
};
#define N_CRI_PLUGINS (sizeof(cri_plugins) / sizeof(cri_plugins[0]))

/* The full normalised path of a key: table.key (or key at the top). */
static char *
full_path(const struct frc_toml_kv *kv)
{
  return kv->table[0] ? xasprintf("%s.%s", kv->table, kv->key) : xstrdup(kv->key);
}

const char *
frc_containerd_cri_plugin(const char *table)
{
  for (size_t i = 0; i < N_CRI_PLUGINS; i++)
    {
      size_t n = strlen("plugins.") + strlen(cri_plugins[i].plugin);
      if (str_has_prefix(table, "plugins.")
          && strncmp(table + strlen("plugins."), cri_plugins[i].plugin, strlen(cri_plugins[i].plugin)) == 0
          && (table[n] == '\0' || table[n] == '.'))
        return cri_plugins[i].plugin;
    }
  return NULL;
}

static const char *
kv_cri_plugin(const struct frc_toml_kv *kv)
{
  cleanup_free char *p = full_path(kv);
  return frc_containerd_cri_plugin(p);
}

int
frc_containerd_last_defining(const struct frc_containerd_conf *c, const char *plugin)
{
  int last = -1;
  for (size_t f = 0; f < c->n; f++)
    for (size_t i = 0; i < c->files[f].toml.n; i++)
      {
        const char *p = kv_cri_plugin(&c->files[f].toml.kv[i]);
        if (p && strcmp(p, plugin) == 0)
          last = (int) f;
      }
  return last;
}

void
frc_containerd_release(struct frc_containerd_conf *c)
{
  for (size_t i = 0; i < c->n; i++)
    {
      free(c->files[i].path);
      free(c->files[i].text);
      frc_toml_release(&c->files[i].toml);
    }
  free(c->files);
  memset(c, 0, sizeof(*c));
}

static char *
under_root(const char *host_root, const char *path)
{
  if (host_root == NULL || strcmp(host_root, "/") == 0)
    return xstrdup(path);
  return xasprintf("%s%s", host_root, path);
}

/* Go's filepath.Clean for the forms imports take: no "//", "/./", "x/..". */
static char *
clean_path(const char *p)
{
  char *out = xmalloc0(strlen(p) + 2);
  cleanup_free char *copy = xstrdup(p);
  char *save = NULL;
  bool abs = p[0] == '/';
  size_t o = 0;
  if (abs)
    out[o++] = '/';
  for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save))
    {
      if (strcmp(s, ".") == 0)
        continue;
      if (strcmp(s, "..") == 0)
        {
          char *slash;
          out[o] = '\0';
          slash = strrchr(out, '/');
          if (o > (size_t) abs)
            {
              o = slash && slash >= out + abs ? (size_t) (slash - out) : (size_t) abs;
              if (o == 0 && abs)
                o = 1;
              out[o] = '\0';
              continue;
            }
          if (abs)
            continue;
        }
      if (o > 0 && out[o - 1] != '/')
        out[o++] = '/';
      memcpy(out + o, s, strlen(s));
      o += strlen(s);
    }
  out[o] = '\0';
  if (o == 0)
    strcpy(out, ".");
  return out;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Appends the node paths an import entry names to *pending. */
static void
resolve_import(const char *host_root, const char *parent, const char *entry, char ***pending,
               size_t *npending)
{
  cleanup_free char *joined = NULL;
  cleanup_free char *path = NULL;
  if (entry[0] != '/')
    {
      cleanup_free char *dir = xstrdup(parent);
      char *slash = strrchr(dir, '/');
      if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
      joined = xasprintf("%s/%s", dir, entry);
    }
  path = clean_path(joined ? joined : entry);
  if (strpbrk(path, "*?[") != NULL)
    {
      cleanup_free char *pattern = under_root(host_root, path);
      size_t skip = strlen(pattern) - strlen(path);
      glob_t g;
      memset(&g, 0, sizeof(g));
      if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0)
        {
          size_t first = *npending;
          for (size_t i = 0; i < g.gl_pathc && *npending < FRC_ENGINECONF_MAX_FILES * 4; i++)
            {
              *pending = xrealloc(*pending, (*npending + 1) * sizeof(char *));
              (*pending)[(*npending)++] = xstrdup(g.gl_pathv[i] + skip);
            }
          qsort(*pending + first, *npending - first, sizeof(char *), cmp_str);
        }
      globfree(&g);
      return;
    }
  *pending = xrealloc(*pending, (*npending + 1) * sizeof(char *));
  (*pending)[(*npending)++] = steal_pointer(&path);
}

static long
file_version(const struct frc_toml *t)
{
  const struct frc_toml_kv *kv = frc_toml_find(t, "", "version");
  return kv ? strtol(kv->value, NULL, 10) : 1;
}

int
frc_containerd_load(const char *host_root, const char *path, struct frc_containerd_conf *out,
                    frc_error_t *err)
{
  char **pending = xmalloc0(sizeof(char *));
  size_t npending = 0, next = 0;
  int ret = -1;

  memset(out, 0, sizeof(*out));
  pending[npending++] = clean_path(path);
  for (; next < npending; next++)
    {
      const char *p = pending[next];
      cleanup_free char *real = under_root(host_root, p);
      cleanup_free char *text = NULL;
      frc_error_t rerr = NULL;
      struct frc_containerd_file *f;
      bool seen = false;
      for (size_t i = 0; i < out->n; i++)
        seen = seen || strcmp(out->files[i].path, p) == 0;
      if (seen)
        continue;
      if (out->n >= FRC_ENGINECONF_MAX_FILES)
        {
          frc_error(err, "containerd config %s imports more than %d files: too many", path,
                    FRC_ENGINECONF_MAX_FILES);
          goto out;
        }
      if (read_file_bounded(real, FRC_ENGINECONF_MAX_BYTES, &text, NULL, &rerr) < 0)
        {
          bool missing = rerr->errno_ == ENOENT;
          if (!missing || next > 0)
            {
              if (missing)
                {
                  /* containerd fails on a missing explicit import; a glob
                   * only names what exists */
                  frc_error_release(&rerr);
                  frc_error(err, "%s imports %s, which does not exist: containerd will not start: "
                                 "create it or remove it from `imports`",
                            out->files[0].path, p);
                }
              else
                *err = steal_pointer(&rerr);
              goto out;
            }
          frc_error_release(&rerr);
        }
      out->files = xrealloc(out->files, (out->n + 1) * sizeof(*out->files));
      f = &out->files[out->n++];
      memset(f, 0, sizeof(*f));
      f->path = xstrdup(p);
      f->version = 1;
      if (text == NULL)
        continue;
      f->text = steal_pointer(&text);
      if (frc_toml_parse(f->text, f->path, &f->toml, err) < 0)
        goto out;
      f->version = file_version(&f->toml);
      {
        const struct frc_toml_kv *imp = frc_toml_find(&f->toml, "", "imports");
        cleanup_strv char **list = imp ? frc_toml_string_array(imp->value) : NULL;
        if (imp && list == NULL)
          {
            frc_error(err, "%s:%d: `imports` is not an array of strings: fix the file", f->path,
                      imp->line);
            goto out;
          }
        for (char **e = list; e && *e; e++)
          resolve_import(host_root, f->path, *e, &pending, &npending);
      }
    }
  out->version = out->files[0].version;
  ret = 0;
out:
  for (size_t i = 0; i < npending; i++)
    free(pending[i]);
  free(pending);
  if (ret < 0)
    frc_containerd_release(out);
  return ret;
}

/* The version of the file a key came from (c NULL: one file of version). */
static long
version_of_kv(const struct frc_containerd_conf *c, const struct frc_toml_kv *kv, long version)
{
  for (size_t i = 0; c && i < c->n; i++)
    if (strcmp(c->files[i].path, kv->file) == 0)
      return c->files[i].version;
  return version;
}

/* The registrations of flox-runc in a merged view, with their checks. */
static int
judge_containerd_runtimes(const struct view *v, const struct frc_containerd_conf *c,
                          const char *where, long version, const struct frc_engine_check *chk,
                          int *found)
{
  int problems = 0;
  cleanup_strv char **seen = xmalloc0(sizeof(char *));
  size_t nseen = 0;

  for (size_t i = 0; i < v->n; i++)
    for (size_t p = 0; p < N_CRI_PLUGINS; p++)
      {
        const char *table = v->kv[i]->table, *prefix = cri_plugins[p].runtimes, *name;
        cleanup_free char *bin = NULL, *type = NULL, *label = NULL;
        const struct frc_toml_kv *bkv, *tkv, *pods;
        bool read;
        long fversion;
        size_t nlen;
        if (!str_has_prefix(table, prefix))
          continue;
        name = table + strlen(prefix);
        nlen = strcspn(name, ".");
        if (name[nlen] != '\0' && strcmp(name + nlen, ".options") != 0)
          continue;
        {
          cleanup_free char *rt = xasprintf("%.*s/%zu", (int) nlen, name, p);
          if (frc_strv_has(seen, nseen, rt))
            continue;
          frc_strv_push(&seen, &nseen, steal_pointer(&rt));
        }
        {
          cleanup_free char *rtable = xasprintf("%.*s", (int) (strlen(prefix) + nlen), table);
          bkv = view_get_either(v, rtable, "options", "BinaryName");
          bin = bkv ? frc_toml_string(bkv->value) : NULL;
          if (bin == NULL || !chk->is_self(bin, chk->self_data))
            continue;
          tkv = view_get(v, rtable, "runtime_type");
          pods = view_get(v, rtable, "pod_annotations");
        }
        type = tkv ? frc_toml_string(tkv->value) : NULL;
        label = where ? xstrdup(where) : xstrdup(bkv->file);
        /* a file reads the plugin id of its own version: v1 "cri", v2
         * the grpc id, v3 the runtime id (containerd migrates each older
         * file up, so a version 2 drop-in of a version 3 root is read) */
        fversion = version_of_kv(c, bkv, version);
        read = fversion == cri_plugins[p].version;
        if (!read)
          {
            problems++;
            say(chk, FRC_FINDING_PROBLEM,
                "containerd (%s): runtime \"%.*s\" is registered under plugins.\"%s\", which a "
                "config of version %ld does not read: use the table of docs/install-containerd.md "
                "for version %ld (or run `flox-runc install`)",
                label, (int) nlen, name, cri_plugins[p].plugin, fversion, fversion);
            continue;
          }
        (*found)++;
        say(chk, FRC_FINDING_OK, "containerd (%s): runtime \"%.*s\" runs flox-runc (BinaryName %s)",
            label, (int) nlen, name, bin);
        if (type == NULL || strcmp(type, "io.containerd.runc.v2") != 0)
          {
            problems++;
            say(chk, FRC_FINDING_PROBLEM,
                "containerd (%s): runtime \"%.*s\" has runtime_type %s: set runtime_type = "
                "\"io.containerd.runc.v2\" (flox-runc is called by the stock runc shim)",
                label, (int) nlen, name, type ? type : "(none)");
          }
        if (!array_allows_flox(pods ? pods->value : NULL))
          {
            problems++;
            say(chk, FRC_FINDING_PROBLEM,
                "containerd (%s): runtime \"%.*s\" does not pass pod annotations: add "
                "pod_annotations = [\"flox.dev/*\"] (and container_annotations), or no flox.dev/* "
                "annotation reaches flox-runc",
                label, (int) nlen, name);
          }
        else
          say(chk, FRC_FINDING_OK, "containerd (%s): runtime \"%.*s\" passes flox.dev/* pod annotations",
              label, (int) nlen, name);
      }
  return problems;
}

static void
not_found(const struct frc_engine_check *chk, const char *where, long version)
{
  say(chk, FRC_FINDING_PROBLEM,
      "containerd (%s): no runtime has BinaryName pointing at this flox-runc: add "
      "[plugins.%s.containerd.runtimes.flox] with runtime_type = \"io.containerd.runc.v2\" and "
      "options BinaryName, or run `flox-runc install` (docs/install-containerd.md)",
      where, version >= 3 ? "'io.containerd.cri.v1.runtime'" : "\"io.containerd.grpc.v1.cri\"");
}

static bool
merges(const struct frc_containerd_conf *c, const struct frc_engine_check *chk)
{
  return c->version >= 3 || chk->containerd_major >= 2;
}

int
frc_check_containerd_sections(const struct frc_containerd_conf *c, const struct frc_engine_check *chk)
{
  int problems = 0;
  if (c->n == 0 || c->files[0].text == NULL)
    return 0;
  if (c->version >= 3 && chk->containerd_major == 1)
    {
      say(chk, FRC_FINDING_PROBLEM,
          "containerd (%s): config version %ld, which containerd 1.x does not read (it ignores its "
          "plugin sections): write a version 2 config, or upgrade to containerd 2",
          c->files[0].path, c->version);
      problems++;
    }
  if (merges(c, chk))
    return problems;
  /* containerd 1.x: a later file's CRI section replaces the whole section of
   * an earlier one */
  for (size_t p = 0; p < N_CRI_PLUGINS; p++)
    {
      int last = frc_containerd_last_defining(c, cri_plugins[p].plugin);
      for (int f = 0; f < last; f++)
        {
          bool defines = false;
          for (size_t i = 0; i < c->files[f].toml.n && !defines; i++)
            {
              const char *pl = kv_cri_plugin(&c->files[f].toml.kv[i]);
              defines = pl && strcmp(pl, cri_plugins[p].plugin) == 0;
            }
          if (!defines)
            continue;
          if (chk->containerd_major == 1)
            problems++;
          say(chk, chk->containerd_major == 1 ? FRC_FINDING_PROBLEM : FRC_FINDING_NOTE,
              "containerd (%s): its [plugins.\"%s\"] settings are ignored%s: %s replaces that whole "
              "section (containerd 1.x merges imports by plugin section): keep all of the plugin's "
              "settings in one file",
              c->files[f].path, cri_plugins[p].plugin,
              chk->containerd_major == 1 ? "" : " by containerd 1.x", c->files[last].path);
        }
    }
  return problems;
}

int
frc_check_containerd(const struct frc_containerd_conf *c, const struct frc_engine_check *chk)
{
  struct view v = { 0 };
  bool merge = merges(c, chk);
  int problems, found = 0, last[N_CRI_PLUGINS];

  if (c->n == 0 || c->files[0].text == NULL)
    {
      say(chk, FRC_FINDING_PROBLEM,
          "containerd: %s does not exist: containerd runs with its defaults and no flox runtime: "
          "run `flox-runc install` (docs/install-containerd.md)",
          c->n ? c->files[0].path : "config.toml");
      return 1;
    }
  problems = frc_check_containerd_sections(c, chk);
  for (size_t p = 0; p < N_CRI_PLUGINS; p++)
    last[p] = frc_containerd_last_defining(c, cri_plugins[p].plugin);
  for (size_t f = 0; f < c->n; f++)
    for (size_t i = 0; i < c->files[f].toml.n; i++)
      {
        const struct frc_toml_kv *kv = &c->files[f].toml.kv[i];
        const char *plugin = kv_cri_plugin(kv);
        size_t p;
        for (p = 0; plugin && p < N_CRI_PLUGINS; p++)
          if (strcmp(cri_plugins[p].plugin, plugin) == 0)
            break;
        if (!merge && plugin && last[p] != (int) f)
          continue; /* replaced by a later file's section */
        view_add(&v, kv);
      }
  problems += judge_containerd_runtimes(&v, c, NULL, c->version, chk, &found);
  free(v.kv);
  if (found == 0)
    {
      cleanup_free char *where
          = c->n > 1 ? xasprintf("%s and %zu imported file%s", c->files[0].path, c->n - 1,
                                 c->n > 2 ? "s" : "")
                     : xstrdup(c->files[0].path);
      not_found(chk, where, c->version);
      problems++;
    }
  return problems;
}

int
frc_containerd_parse_major(const char *v)
{
  for (const char *p = v; p && (p = strchr(p, ' ')) != NULL; p++)
    {
      const char *n = p[1] == 'v' ? p + 2 : p + 1;
      if (n[0] >= '1' && n[0] <= '9' && n[1] == '.')
        return n[0] - '0';
    }
  return 0;
}

int
frc_check_containerd_dump(const char *dump, const char *label, const struct frc_engine_check *chk,
                          frc_error_t *err)
{
  struct frc_toml t __attribute__((cleanup(frc_toml_release))) = { 0 };
  struct view v = { 0 };
  int problems, found = 0;
  long version;

  if (frc_toml_parse(dump, label, &t, err) < 0)
    return -1;
  version = file_version(&t);
  for (size_t i = 0; i < t.n; i++)
    view_add(&v, &t.kv[i]);
  problems = judge_containerd_runtimes(&v, NULL, label, version, chk, &found);
  free(v.kv);
  if (found == 0)
    {
      not_found(chk, label, version);
      problems++;
    }
  return problems;
}

/* ------------------------------------------------------------------ CRI-O */

char **
frc_crio_files(const char *host_root)
{
  char **out = xmalloc0(sizeof(char *));
  size_t n = 0, first;
  cleanup_free char *conf = under_root(host_root, "/etc/crio/crio.conf");
  cleanup_free char *dir = under_root(host_root, "/etc/crio/crio.conf.d");
  DIR *d;
  struct dirent *e;

  if (access(conf, F_OK) == 0)
    {
      out = xrealloc(out, 2 * sizeof(char *));
      out[n++] = xstrdup("/etc/crio/crio.conf");
      out[n] = NULL;
    }
  first = n;
  if ((d = opendir(dir)) != NULL)
    {
      while ((e = readdir(d)) != NULL && n < FRC_ENGINECONF_MAX_FILES)
        {
          size_t len = strlen(e->d_name);
          if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
          frc_strv_push(&out, &n, xasprintf("/etc/crio/crio.conf.d/%s", e->d_name));
        }
      closedir(d);
    }
  qsort(out + first, n - first, sizeof(char *), cmp_str);
  return out;
}

int
frc_check_crio(const char *host_root, const char *const *paths, const struct frc_engine_check *chk,
               frc_error_t *err)
{
  static const char prefix[] = "crio.runtime.runtimes.";
  struct frc_toml *docs = NULL;
  size_t ndocs = 0;
  struct view v = { 0 };
  cleanup_strv char **seen = xmalloc0(sizeof(char *));
  size_t nseen = 0;
  int problems = 0, found = 0, ret = -1;

  for (const char *const *path = paths; *path; path++)
    {
      cleanup_free char *real = under_root(host_root, *path);
      cleanup_free char *text = NULL;
      docs = xrealloc(docs, (ndocs + 1) * sizeof(*docs));
      memset(&docs[ndocs], 0, sizeof(*docs));
      ndocs++;
      if (read_file_bounded(real, FRC_ENGINECONF_MAX_BYTES, &text, NULL, err) < 0
          || frc_toml_parse(text, *path, &docs[ndocs - 1], err) < 0)
        goto out;
      for (size_t i = 0; i < docs[ndocs - 1].n; i++)
        view_add(&v, &docs[ndocs - 1].kv[i]);
    }
  for (size_t i = 0; i < v.n; i++)
    {
      const char *table = v.kv[i]->table, *name;
      const struct frc_toml_kv *pkv, *tkv;
      cleanup_free char *bin = NULL, *type = NULL;
      if (!str_has_prefix(table, prefix) || strchr(table + strlen(prefix), '.') != NULL)
        continue;
      name = table + strlen(prefix);
      if (frc_strv_has(seen, nseen, name))
        continue;
      frc_strv_push(&seen, &nseen, xstrdup(name));
      pkv = view_get(&v, table, "runtime_path");
      bin = pkv ? frc_toml_string(pkv->value) : NULL;
      if (bin == NULL || !chk->is_self(bin, chk->self_data))
        continue;
      found++;
      tkv = view_get(&v, table, "runtime_type");
      type = tkv ? frc_toml_string(tkv->value) : NULL;
      say(chk, FRC_FINDING_OK, "CRI-O (%s): runtime \"%s\" runs flox-runc (runtime_path %s)",
          pkv->file, name, bin);
      if (type && strcmp(type, "oci") != 0)
        {
          problems++;
          say(chk, FRC_FINDING_PROBLEM,
              "CRI-O (%s): runtime \"%s\" has runtime_type %s: use runtime_type = \"oci\"",
              tkv->file, name, type);
        }
    }
  if (found == 0)
    {
      problems++;
      say(chk, FRC_FINDING_PROBLEM,
          "CRI-O: no [crio.runtime.runtimes.<name>] has runtime_path pointing at this flox-runc: add "
          "one with runtime_type = \"oci\", or run `flox-runc install` (docs/install-crio.md)");
    }
  ret = problems;
out:
  for (size_t i = 0; i < ndocs; i++)
    frc_toml_release(&docs[i]);
  free(docs);
  free(v.kv);
  return ret;
}
