#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bindhook.h"
#include "config.h"
#include "dl.h"
#include "http.h"
#include "install.h"
#include "nodebash.h"
#include "nodefiles.h"
#include "proc.h"
#include "util.h"

#define BEGIN_MARK "# flox-runc: begin"
#define END_MARK "# flox-runc: end"
#define DEFAULT_DROPIN_GLOB "/etc/containerd/conf.d/*.toml"
#define CRIO_DROPIN "/etc/crio/crio.conf.d/50-flox-runc.conf"
#define MAX_BINARY (256u << 20)

struct inst
{
  const struct frc_install_opts *o;
  struct frc_nodefiles nf; /* the files, the record, the host root */
  const char *dest; /* node path of the binary */
  const char *name; /* runtime name */
  bool containerd, crio; /* engines touched */
  char *containerd_bin; /* node path */
  const char *containerd_config;
  char *where; /* what the containerd registration is, said once it is done */
};

static void report(struct inst *in, enum frc_finding kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
report(struct inst *in, enum frc_finding kind, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  msg = xvasprintf(fmt, ap);
  va_end(ap);
  if (in->o->report)
    in->o->report(kind, msg, in->o->data);
  free(msg);
}

/* ------------------------------------------------------------ containerd */

static const char *
plugin_header(long version)
{
  return version <= 1 ? "plugins.cri"
                      : version == 2 ? "plugins.\"io.containerd.grpc.v1.cri\""
                                     : "plugins.'io.containerd.cri.v1.runtime'";
}

static const char *
plugin_norm(long version)
{
  return version <= 1 ? "plugins.cri"
                      : version == 2 ? "plugins.io.containerd.grpc.v1.cri"
                                     : "plugins.io.containerd.cri.v1.runtime";
}

/* Byte range [*b, *e) of flox-runc's marked block in text (with the blank
 * line before it that the installer adds); false when none. */
static bool
find_block(const char *text, size_t *b, size_t *e)
{
  const char *s = text, *end;
  while ((s = strstr(s, BEGIN_MARK)) != NULL && !(s == text || s[-1] == '\n'))
    s++;
  if (s == NULL)
    return false;
  end = strstr(s, "\n" END_MARK);
  if (end == NULL)
    return false;
  end += 1 + strlen(END_MARK);
  end += strcspn(end, "\n");
  if (*end == '\n')
    end++;
  if (s - text >= 2 && s[-1] == '\n' && s[-2] == '\n')
    s--;
  *b = (size_t) (s - text);
  *e = (size_t) (end - text);
  return true;
}

/* Lines [first, last] of the block in text, 0 when none. */
static void
block_lines(const char *text, int *first, int *last)
{
  size_t b, e;
  int line = 1;
  *first = *last = 0;
  if (text == NULL || !find_block(text, &b, &e))
    return;
  for (size_t i = 0; i < e; i++)
    {
      if (i == b)
        *first = line;
      if (text[i] == '\n')
        line++;
    }
  *last = line;
}

static char *
without_block(const char *text)
{
  size_t b, e;
  if (!find_block(text, &b, &e))
    return xstrdup(text);
  return xasprintf("%.*s%s", (int) b, text, text + e);
}

static char *
with_block(const char *text, const char *block)
{
  size_t b, e;
  if (text == NULL || text[0] == '\0')
    return xstrdup(block + 1); /* no blank line first */
  if (find_block(text, &b, &e))
    return xasprintf("%.*s%s%s", (int) b, text, b == 0 ? block + 1 : block, text + e);
  return xasprintf("%s%s%s", text, text[strlen(text) - 1] == '\n' ? "" : "\n", block);
}

/* Byte offset of the start of line (1-based); the end for a line past it. */
static size_t
line_offset(const char *text, int line)
{
  const char *p = text;
  for (int l = 1; l < line && p; l++)
    {
      p = strchr(p, '\n');
      if (p)
        p++;
    }
  return p ? (size_t) (p - text) : strlen(text);
}

char *
frc_install_add_import(const char *text, const struct frc_toml *t, const char *entry)
{
  const struct frc_toml_kv *imp = frc_toml_find(t, "", "imports");
  cleanup_strv char **list = imp ? frc_toml_string_array(imp->value) : NULL;
  cleanup_free char *quoted = xasprintf("\"%s\"", entry);
  const struct frc_toml_kv *ver;
  size_t at;

  for (char **e = list; e && *e; e++)
    if (strcmp(*e, entry) == 0)
      return NULL;
  if (imp)
    {
      /* insert into the list, after its last element */
      size_t p = line_offset(text, imp->line), open = 0, close = 0, last = 0;
      int depth = 0;
      char quote = 0;
      bool comment = false;
      p += strcspn(text + p, "=");
      for (; text[p]; p++)
        {
          char c = text[p];
          if (comment)
            {
              comment = c != '\n';
              continue;
            }
          if (quote)
            {
              if (c == '\\' && quote == '"' && text[p + 1])
                p++;
              else if (c == quote)
                quote = 0, last = p;
              continue;
            }
          if (c == '#')
            comment = true;
          else if (c == '"' || c == '\'')
            quote = c;
          else if (c == '[')
            {
              if (depth++ == 0)
                open = last = p;
            }
          else if (c == ']')
            {
              if (--depth == 0)
                {
                  close = p;
                  break;
                }
            }
          else if (c == ',')
            last = p;
        }
      if (close == 0)
        return NULL;
      if (last == open)
        return xasprintf("%.*s%s%s", (int) close, text, quoted, text + close);
      if (text[last] == ',')
        {
          /* a trailing comma: a new element line when ']' starts its line */
          size_t ls = close;
          while (ls > 0 && text[ls - 1] != '\n')
            ls--;
          if (strspn(text + ls, " \t") == close - ls && ls > open)
            {
              size_t ps = last;
              while (ps > 0 && text[ps - 1] != '\n')
                ps--;
              return xasprintf("%.*s%.*s%s,\n%s", (int) ls, text, (int) strspn(text + ps, " \t"),
                               text + ps, quoted, text + ls);
            }
          return xasprintf("%.*s %s%s", (int) close, text, quoted, text + close);
        }
      return xasprintf("%.*s, %s%s", (int) last + 1, text, quoted, text + last + 1);
    }
  /* a new top-level key: after `version`, else before the first table */
  ver = frc_toml_find(t, "", "version");
  at = ver ? line_offset(text, ver->end_line + 1)
           : t->first_table_line ? line_offset(text, t->first_table_line) : strlen(text);
  return xasprintf("%.*s%simports = [%s]\n%s", (int) at, text,
                   at > 0 && text[at - 1] != '\n' ? "\n" : "", quoted, text + at);
}

/* The directory of an import glob "DIR/<star>.toml" (node path), NULL if not one. */
static char *
import_dir(const char *root_config, const char *entry)
{
  size_t n = strlen(entry);
  cleanup_free char *dir = NULL;
  if (n < 8 || strcmp(entry + n - 7, "/*.toml") != 0 || strpbrk(entry, "?[") != NULL
      || strchr(entry, '*') != entry + n - 6)
    return NULL;
  dir = xstrndup(entry, n - 7);
  if (dir[0] != '/')
    {
      cleanup_free char *base = xstrdup(root_config);
      *strrchr(base, '/') = '\0';
      return xasprintf("%s/%s", base, dir);
    }
  return steal_pointer(&dir);
}

static bool
is_dest(const char *path, void *data)
{
  return strcmp(path, (const char *) data) == 0;
}

struct collect
{
  char *text;
  int problems;
};

static void
collect(enum frc_finding kind, const char *text, void *data)
{
  struct collect *c = data;
  char *n;
  if (kind != FRC_FINDING_PROBLEM)
    return;
  c->problems++;
  n = xasprintf("%s%s%s", c->text ? c->text : "", c->text ? "; " : "", text);
  free(c->text);
  c->text = n;
}

static int
containerd_major(struct inst *in)
{
  const char *argv[] = { in->containerd_bin, "--version", NULL };
  cleanup_proc_result struct frc_proc_result res = { 0 };
  frc_error_t ignored = NULL;
  if (frc_nodefiles_run(&in->nf, argv, &res, &ignored) < 0 || res.status != 0)
    {
      frc_error_release(&ignored);
      return 0;
    }
  return frc_containerd_parse_major(res.out);
}

/* The options of the default runtime (runc), to give flox the same
 * (SystemdCgroup, Root, ...): "    KEY = VALUE\n" lines. */
static char *
default_options(const struct frc_containerd_conf *c, long version)
{
  cleanup_free char *ctable = xasprintf("%s.containerd", plugin_norm(version));
  cleanup_free char *def = NULL;
  cleanup_free char *otable = NULL;
  char *out = xstrdup("");
  for (size_t f = 0; f < c->n; f++)
    {
      const struct frc_toml_kv *kv = frc_toml_find(&c->files[f].toml, ctable, "default_runtime_name");
      if (kv)
        {
          free(def);
          def = frc_toml_string(kv->value);
        }
    }
  otable = xasprintf("%s.runtimes.%s.options", ctable, def ? def : "runc");
  for (size_t f = 0; f < c->n; f++)
    {
      const struct frc_toml *t = &c->files[f].toml;
      int bfirst, blast;
      block_lines(c->files[f].text, &bfirst, &blast);
      for (size_t i = 0; i < t->n; i++)
        {
          const struct frc_toml_kv *kv = &t->kv[i];
          cleanup_free char *line = NULL;
          char *n, *dup;
          if (strcmp(kv->table, otable) != 0 || strcmp(kv->key, "BinaryName") == 0
              || strpbrk(kv->key, ".\"' ") != NULL || (kv->line >= bfirst && kv->line <= blast))
            continue;
          /* a later value of the same key replaces the earlier line */
          line = xasprintf("    %s = ", kv->key);
          if ((dup = strstr(out, line)) != NULL && (dup == out || dup[-1] == '\n'))
            {
              char *eol = strchr(dup, '\n');
              memmove(dup, eol + 1, strlen(eol + 1) + 1);
            }
          n = xasprintf("%s%s%s\n", out, line, kv->value);
          free(out);
          out = n;
        }
    }
  return out;
}

static char *
containerd_block(const struct inst *in, long version, const char *options)
{
  const char *p = plugin_header(version);
  return xasprintf("\n" BEGIN_MARK " (`flox-runc install`; `flox-runc install --uninstall` removes it)\n"
                   "[%s.containerd.runtimes.%s]\n"
                   "  runtime_type = \"io.containerd.runc.v2\"\n"
                   "  pod_annotations = [\"flox.dev/*\"]\n"
                   "  container_annotations = [\"flox.dev/*\"]\n"
                   "  [%s.containerd.runtimes.%s.options]\n"
                   "    BinaryName = \"%s\"\n"
                   "%s" END_MARK "\n",
                   p, in->name, p, in->name, in->dest, options);
}

/* A definition of the runtime outside flox-runc's block: refuse to guess. */
static int
check_conflict(const struct inst *in, const struct frc_containerd_conf *c, frc_error_t *err)
{
  static const long versions[] = { 1, 2, 3 };
  for (size_t f = 0; f < c->n; f++)
    {
      int bfirst, blast;
      block_lines(c->files[f].text, &bfirst, &blast);
      for (size_t i = 0; i < c->files[f].toml.n; i++)
        {
          const struct frc_toml_kv *kv = &c->files[f].toml.kv[i];
          if (kv->line >= bfirst && kv->line <= blast)
            continue;
          for (size_t v = 0; v < 3; v++)
            {
              cleanup_free char *pre = xasprintf("%s.containerd.runtimes.%s", plugin_norm(versions[v]),
                                                 in->name);
              size_t n = strlen(pre);
              if (strncmp(kv->table, pre, n) == 0 && (kv->table[n] == '\0' || kv->table[n] == '.'))
                return frc_error(err, "%s:%d already defines the containerd runtime \"%s\": remove "
                                      "it (flox-runc install writes its own), or pass --runtime-name",
                                 c->files[f].path, kv->table_line, in->name);
            }
        }
    }
  return 0;
}

static int
plan_containerd(struct inst *in, frc_error_t *err)
{
  struct frc_containerd_conf c __attribute__((cleanup(frc_containerd_release))) = { 0 };
  const char *cfg = in->containerd_config;
  cleanup_free char *options = NULL, *block = NULL, *target = NULL, *text = NULL, *next = NULL;
  long version;
  int major;

  in->containerd_bin = frc_nodefiles_program(&in->nf, "containerd", NULL);
  if (in->containerd_bin == NULL)
    return frc_error(err, "containerd is not installed in %s (no containerd in /usr/bin, "
                          "/usr/local/bin, ...): the registration cannot be validated: install "
                          "containerd first, or pass --engine crio",
                     in->nf.root);
  major = containerd_major(in);
  if (frc_containerd_load(in->nf.root, cfg, &c, err) < 0)
    return frc_error_wrap(err, "containerd config");
  if (check_conflict(in, &c, err) < 0)
    return -1;
  version = c.files[0].text ? c.version : major >= 2 ? 3 : 2;
  if (c.files[0].text == NULL)
    {
      cleanup_free char *fresh = xasprintf("version = %ld\n", version);
      if (frc_nodefiles_plan(&in->nf, cfg, fresh, strlen(fresh), -1, err) < 0)
        return -1;
    }
  options = default_options(&c, version);
  block = containerd_block(in, version, options);
  if (version <= 2)
    {
      /* the file whose CRI section containerd keeps: the last one with it */
      int last = frc_containerd_last_defining(&c, version <= 1 ? "cri" : "io.containerd.grpc.v1.cri");
      target = xstrdup(c.files[last < 0 ? 0 : last].path);
    }
  else
    {
      /* a drop-in in a directory containerd already imports, else in
       * /etc/containerd/conf.d, added to `imports` */
      const struct frc_toml_kv *imp = frc_toml_find(&c.files[0].toml, "", "imports");
      cleanup_strv char **list = imp ? frc_toml_string_array(imp->value) : NULL;
      cleanup_free char *dir = NULL;
      for (char **e = list; e && *e && dir == NULL; e++)
        dir = import_dir(cfg, *e);
      if (dir == NULL)
        {
          cleanup_free char *root_text = NULL;
          struct frc_toml t __attribute__((cleanup(frc_toml_release))) = { 0 };
          if (frc_nodefiles_planned_text(&in->nf, cfg, &root_text, err) < 0
              || frc_toml_parse(root_text, cfg, &t, err) < 0)
            return -1;
          next = frc_install_add_import(root_text, &t, DEFAULT_DROPIN_GLOB);
          if (next && frc_nodefiles_plan(&in->nf, cfg, next, strlen(next), -1, err) < 0)
            return -1;
          dir = xstrdup("/etc/containerd/conf.d");
        }
      target = xasprintf("%s/flox-runc.toml", dir);
      free(next);
      next = NULL;
    }
  /* flox-runc's block anywhere else goes */
  for (size_t f = 0; f < c.n; f++)
    if (c.files[f].text && strcmp(c.files[f].path, target) != 0 && strstr(c.files[f].text, BEGIN_MARK))
      {
        cleanup_free char *cur = NULL, *w = NULL;
        if (frc_nodefiles_planned_text(&in->nf, c.files[f].path, &cur, err) < 0)
          return -1;
        w = without_block(cur);
        if (frc_nodefiles_plan(&in->nf, c.files[f].path, w, strlen(w), -1, err) < 0)
          return -1;
      }
  if (frc_nodefiles_planned_text(&in->nf, target, &text, err) < 0)
    return -1;
  if (version >= 3 && text == NULL)
    text = xasprintf("version = %ld\n", version);
  next = with_block(text, block);
  if (frc_nodefiles_plan(&in->nf, target, next, strlen(next), -1, err) < 0)
    return -1;
  in->containerd = true;
  in->where = xasprintf("containerd%s, config version %ld: runtime \"%s\" registered in %s%s",
                        major ? (major == 1 ? " 1.x" : " 2.x") : "", version, in->name, target,
                        version <= 2 ? " (the file whose CRI section containerd uses)" : "");
  return 0;
}

static int
validate_containerd(struct inst *in, bool installed, frc_error_t *err)
{
  const char *argv[] = { in->containerd_bin, "--config", in->containerd_config, "config", "dump", NULL };
  cleanup_proc_result struct frc_proc_result res = { 0 };
  struct collect col = { 0 };
  struct frc_engine_check chk = { .is_self = is_dest, .self_data = (void *) in->dest,
                                  .report = collect, .data = &col };
  int problems;

  if (!installed)
    {
      /* uninstalled down to no config at all: containerd's defaults */
      cleanup_free char *h = frc_nodefiles_path(&in->nf, in->containerd_config);
      if (access(h, F_OK) != 0)
        return 0;
    }
  if (frc_nodefiles_run(&in->nf, argv, &res, err) < 0)
    return -1;
  if (res.status != 0)
    return frc_error(err, "containerd does not accept the configuration: %s",
                     res.last_err && res.last_err[0] ? res.last_err : "config dump failed");
  if (!installed)
    return 0;
  problems = frc_check_containerd_dump(res.out, "containerd config dump", &chk, err);
  if (problems != 0)
    {
      if (problems > 0)
        frc_error(err, "containerd does not read the runtime as written: %s", col.text);
      free(col.text);
      return -1;
    }
  report(in, FRC_FINDING_OK,
         "containerd validated the configuration: `containerd config dump` has runtime \"%s\" "
         "running %s",
         in->name, in->dest);
  return 0;
}

/* ------------------------------------------------------------------ CRI-O */

static int
plan_crio(struct inst *in, frc_error_t *err)
{
  cleanup_strv char **files = frc_crio_files(in->nf.root);
  cleanup_free char *text
      = xasprintf("# written by `flox-runc install`; `flox-runc install --uninstall` removes it\n"
                  "[crio.runtime.runtimes.%s]\n"
                  "runtime_path = \"%s\"\n"
                  "runtime_type = \"oci\"\n"
                  "runtime_root = \"/run/flox-runc\"\n",
                  in->name, in->dest);
  cleanup_free char *table = xasprintf("crio.runtime.runtimes.%s", in->name);
  for (char **f = files; *f; f++)
    {
      cleanup_free char *t = NULL;
      size_t len;
      bool exists;
      struct frc_toml toml __attribute__((cleanup(frc_toml_release))) = { 0 };
      if (strcmp(*f, CRIO_DROPIN) == 0)
        continue;
      if (frc_nodefiles_read(&in->nf, *f, FRC_ENGINECONF_MAX_BYTES, &t, &len, &exists, NULL, err) < 0
          || frc_toml_parse(t, *f, &toml, err) < 0)
        return -1;
      for (size_t i = 0; i < toml.n; i++)
        if (strcmp(toml.kv[i].table, table) == 0)
          return frc_error(err, "%s:%d already defines the CRI-O runtime \"%s\": remove it (flox-runc "
                                "install writes its own), or pass --runtime-name",
                           *f, toml.kv[i].table_line, in->name);
    }
  in->crio = true;
  return frc_nodefiles_plan(&in->nf, CRIO_DROPIN, text, strlen(text), 0644, err);
}

static int
validate_crio(struct inst *in, frc_error_t *err)
{
  cleanup_strv char **files = frc_crio_files(in->nf.root);
  struct collect col = { 0 };
  struct frc_engine_check chk = { .is_self = is_dest, .self_data = (void *) in->dest,
                                  .report = collect, .data = &col };
  int problems = frc_check_crio(in->nf.root, (const char *const *) files, &chk, err);
  if (problems != 0)
    {
      if (problems > 0)
        frc_error(err, "CRI-O would not run flox-runc as written: %s", col.text);
      free(col.text);
      return -1;
    }
  report(in, FRC_FINDING_OK,
         "CRI-O: runtime \"%s\" runs %s in crio.conf and its drop-ins as read by flox-runc (crio "
         "itself was not run: `crio config` on the node shows CRI-O's own reading)",
         in->name, in->dest);
  return 0;
}

/* ------------------------------------------------------------- restarting */

static int
restart(struct inst *in, frc_error_t *err)
{
  const char *units[2] = { in->containerd ? "containerd" : NULL, in->crio ? "crio" : NULL };
  cleanup_free char *systemd = frc_nodefiles_path(&in->nf, "/run/systemd/system");
  for (int u = 0; u < 2; u++)
    {
      cleanup_proc_result struct frc_proc_result res = { 0 };
      cleanup_free char *nsenter = NULL;
      if (units[u] == NULL)
        continue;
      if (in->o->no_restart)
        {
          report(in, FRC_FINDING_NOTE, "%s not restarted (--no-restart): restart it for the change "
                                       "to take effect",
                 units[u]);
          continue;
        }
      if (in->o->restart_command)
        {
          cleanup_free char *engine = xasprintf("FLOX_RUNC_ENGINE=%s", units[u]);
          cleanup_free char *root = xasprintf("FLOX_RUNC_HOST_ROOT=%s", in->nf.root);
          const char *env[] = { engine, root, NULL };
          const char *argv[] = { "/bin/sh", "-c", in->o->restart_command, NULL };
          struct frc_proc p = { .argv = argv, .extra_env = env,
                                .deadline_ns = frc_now_ns() + 120000000000LL };
          if (frc_proc_run(&p, &res, err) < 0)
            return -1;
          if (res.status != 0)
            return frc_error(err, "--restart-command for %s failed (status %d): %s: the "
                                  "configuration is in place; restart %s yourself",
                             units[u], res.status, res.last_err ? res.last_err : "", units[u]);
          report(in, FRC_FINDING_OK, "%s restarted (--restart-command)", units[u]);
          continue;
        }
      if (access(systemd, F_OK) != 0)
        {
          report(in, FRC_FINDING_NOTE, "%s not restarted: the node does not run systemd: restart it "
                                       "yourself (or pass --restart-command)",
                 units[u]);
          continue;
        }
      {
        /* on the node: systemctl; from a container: in PID 1's namespaces
         * (the DaemonSet has hostPID) */
        const char *direct[] = { "systemctl", "restart", units[u], NULL };
        const char *entered[] = { NULL, "-t", "1", "-m", "-u", "-i", "-n", "-p", "--",
                                  "systemctl", "restart", units[u], NULL };
        cleanup_free char *systemctl = frc_own_program("systemctl");
        struct frc_proc p = { .deadline_ns = frc_now_ns() + 120000000000LL };
        if (strcmp(in->nf.root, "/") == 0)
          {
            direct[0] = systemctl ? systemctl : "/usr/bin/systemctl";
            p.argv = direct;
          }
        else
          {
            nsenter = frc_own_program("nsenter");
            if (nsenter == NULL)
              return frc_error(err, "no nsenter to restart %s on the node: add it to the "
                                    "installer's image, or pass --restart-command",
                               units[u]);
            entered[0] = nsenter;
            p.argv = entered;
          }
        if (frc_proc_run(&p, &res, err) < 0)
          return -1;
        if (res.status != 0)
          return frc_error(err, "systemctl restart %s failed (status %d): %s: the configuration is "
                                "in place; see `journalctl -u %s`",
                           units[u], res.status, res.last_err ? res.last_err : "", units[u]);
        report(in, FRC_FINDING_OK, "%s restarted (systemctl)", units[u]);
      }
    }
  return 0;
}

/* ---------------------------------------------------------- node checks */

/* What the node needs besides flox-runc, as the node config in effect (the
 * one being installed, else the node's) names it: warnings, not failures
 * (the node may get them after flox-runc). */
static void
check_node(struct inst *in)
{
  static const char *const nix_dirs[] = { "/nix/var/nix/profiles/default/bin", NULL };
  cleanup_free char *nix = frc_nodefiles_program(&in->nf, "nix-store", nix_dirs);
  cleanup_free char *node_cfg = frc_nodefiles_path(&in->nf, "/etc/flox-runc/config.json");
  const char *cfg_path = in->o->node_config ? in->o->node_config : node_cfg;
  struct frc_config c;
  cleanup_error frc_error_t err = NULL;
  const char *bash = FRC_DEFAULT_BASH;
  bool loaded = false;

  if (access(cfg_path, F_OK) == 0)
    {
      if (frc_config_load(&c, cfg_path, &err) == 0)
        loaded = true;
      else if (in->o->node_config == NULL)
        report(in, FRC_FINDING_PROBLEM, "the node's /etc/flox-runc/config.json: %s", err->msg);
    }
  if (nix == NULL)
    report(in, FRC_FINDING_PROBLEM, "the node has no nix-store: Flox containers fail until Nix is "
                                    "installed (Debian: apt-get install nix-bin)");
  if (loaded && c.runtime)
    {
      cleanup_free char *rt = frc_nodefiles_path(&in->nf, c.runtime);
      if (access(rt, X_OK) != 0)
        report(in, FRC_FINDING_PROBLEM, "the node config's `runtime` %s is not on the node: install "
                                        "it or fix the key",
               c.runtime);
    }
  else
    {
      cleanup_free char *runc = frc_nodefiles_program(&in->nf, "runc", NULL);
      cleanup_free char *crun = frc_nodefiles_program(&in->nf, "crun", NULL);
      if (runc == NULL && crun == NULL)
        report(in, FRC_FINDING_PROBLEM, "the node has no runc or crun: install one (apt-get install "
                                        "runc)");
    }
  if (loaded && c.bash)
    bash = c.bash;
  if (!str_has_prefix(bash, "/nix/store/"))
    {
      cleanup_free char *b = frc_nodefiles_path(&in->nf, bash);
      if (access(b, X_OK) != 0)
        report(in, FRC_FINDING_PROBLEM, "the node has no %s (the node config's `bash`): environments "
                                        "with vars or a hook need it (Debian: apt-get install "
                                        "bash-static)",
               bash);
    }
  if (loaded)
    frc_config_release(&c);
}

/* ------------------------------------------------------ the node's bash */

/* In the host root as a create on the node sees it (the node config at
 * /etc/flox-runc/config.json, its nix-store, its store): the node's bash
 * added to its store and rooted (lib/nodebash.h), or, uninstalling, its
 * root released.  Writes one line to fd: "ok ...", "note ..." or "warn ...". */
static void
node_bash_in_host(int fd, bool uninstall)
{
  struct frc_config c;
  cleanup_error frc_error_t err = NULL;
  cleanup_free char *line = NULL;
  cleanup_free char *nix = NULL;
  bool loaded = frc_config_load(&c, "/etc/flox-runc/config.json", &err) == 0;

  if (!loaded)
    line = xasprintf("warn the node config: %s", err->msg);
  else if (uninstall)
    line = frc_node_bash_release(&c, &err) < 0
               ? xasprintf("warn the node's bash stays rooted: %s", err->msg)
               : xstrdup("ok the node's bash is no longer rooted (gcroots/flox-runc/node): Nix's GC "
                         "may collect it");
  else if (c.bash_package)
    line = xasprintf("ok the node config's `bash` %s is a store path: realised with each "
                     "environment",
                     c.bash);
  else if (access(c.bash, X_OK) != 0)
    line = xasprintf("note the node's bash is not in the store yet (no %s on the node): the first "
                     "Flox create that needs it adds it",
                     c.bash);
  else if ((nix = frc_nix_store_find()) == NULL)
    line = xstrdup("note the node's bash is not in the store yet (no nix-store on the node): the "
                   "first Flox create that needs it adds it");
  else
    {
      struct frc_store s = { &c, NULL, frc_now_ns() + (long long) c.deadline_seconds * 1000000000LL };
      cleanup_free char *pkg = NULL;
      bool added = false;
      if (frc_node_bash(&s, &pkg, &added, &err) < 0)
        line = xasprintf("warn the node's bash is not in the store (the first Flox create that "
                         "needs it adds it): %s",
                         err->msg);
      else
        line = xasprintf("ok %s %s the node's store as %s, rooted (gcroots/flox-runc/node/bash)",
                         c.bash, added ? "added to" : "already in", pkg);
    }
  if (line)
    write_all(fd, line, strlen(line));
  if (loaded)
    frc_config_release(&c);
}

/* node_bash_in_host, in a child chrooted into the host root (not "/"),
 * reported here.  Never a failure: a create adds the bash when missing. */
static void
node_bash(struct inst *in, bool uninstall)
{
  int p[2];
  pid_t pid;
  char buf[4096];
  size_t n = 0;
  ssize_t r;
  int status;

  if (pipe2(p, O_CLOEXEC) < 0)
    {
      report(in, FRC_FINDING_PROBLEM, "cannot add the node's bash to its store: pipe: %s",
             strerror(errno));
      return;
    }
  fflush(NULL);
  pid = fork();
  if (pid == 0)
    {
      close(p[0]);
      if (strcmp(in->nf.root, "/") != 0 && (chroot(in->nf.root) < 0 || chdir("/") < 0))
        {
          const char *m = "warn cannot enter the host root to add the node's bash";
          write_all(p[1], m, strlen(m));
          _exit(1);
        }
      node_bash_in_host(p[1], uninstall);
      _exit(0);
    }
  close(p[1]);
  if (pid < 0)
    {
      close(p[0]);
      report(in, FRC_FINDING_PROBLEM, "cannot add the node's bash to its store: fork: %s",
             strerror(errno));
      return;
    }
  while (n < sizeof(buf) - 1 && ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
    if (r > 0)
      n += (size_t) r;
  buf[n] = '\0';
  close(p[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (str_has_prefix(buf, "ok "))
    report(in, FRC_FINDING_OK, "%s", buf + 3);
  else if (str_has_prefix(buf, "note "))
    report(in, FRC_FINDING_NOTE, "%s", buf + 5);
  else
    report(in, FRC_FINDING_PROBLEM, "%s", n > 5 ? buf + 5 : "adding the node's bash failed");
}

/* ------------------------------------------------------------- the verbs */

/* The static closure hook (cmd/flox-runc-hook) beside the installed
 * flox-runc when the flox-runc installed has one beside it (create runs
 * it instead of `flox-runc bind-closure`, lib/bindhook.h); when it has
 * none, an older one there goes (it would run with this flox-runc's
 * arguments). */
static int
plan_hook(struct inst *in, frc_error_t *err)
{
  const struct frc_install_opts *o = in->o;
  char self[PATH_MAX];
  const char *from = o->binary;
  const char *slash;
  cleanup_free char *src = NULL, *dest = NULL, *bin = NULL;
  size_t len = 0;
  frc_error_t rerr = NULL;

  if (from == NULL)
    {
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      if (n <= 0)
        return frc_error_errno(err, errno, "cannot find the running flox-runc's file");
      self[n] = '\0';
      from = self;
    }
  slash = strrchr(from, '/');
  src = slash ? xasprintf("%.*s/" FRC_BINDHOOK_PROGRAM, (int) (slash - from), from)
              : xstrdup(FRC_BINDHOOK_PROGRAM);
  slash = strrchr(in->dest, '/');
  dest = xasprintf("%.*s/" FRC_BINDHOOK_PROGRAM, slash ? (int) (slash - in->dest) : 0, in->dest);
  if (read_file_bounded(src, MAX_BINARY, &bin, &len, &rerr) < 0)
    {
      if (rerr == NULL || rerr->errno_ != ENOENT)
        {
          *err = rerr;
          return frc_error_wrap(err, "the closure hook beside the flox-runc to install");
        }
      frc_error_release(&rerr);
      return frc_nodefiles_plan(&in->nf, dest, NULL, 0, 0, err);
    }
  return frc_nodefiles_plan(&in->nf, dest, bin, len, 0755, err);
}

static int
plan_install(struct inst *in, frc_error_t *err)
{
  const struct frc_install_opts *o = in->o;
  cleanup_free char *bin = NULL;
  size_t len;
  frc_error_t rerr = NULL;
  bool want_cd, want_crio;
  cleanup_free char *cd_bin = frc_nodefiles_program(&in->nf, "containerd", NULL);
  cleanup_free char *crio_bin = frc_nodefiles_program(&in->nf, "crio", NULL);
  cleanup_free char *cd_cfg = frc_nodefiles_path(&in->nf, in->containerd_config);
  cleanup_free char *crio_dir = frc_nodefiles_path(&in->nf, "/etc/crio");

  if (read_file_bounded(o->binary ? o->binary : "/proc/self/exe", MAX_BINARY, &bin, &len, &rerr) < 0)
    {
      *err = rerr;
      return frc_error_wrap(err, "the flox-runc to install");
    }
  if (frc_nodefiles_plan(&in->nf, in->dest, bin, len, 0755, err) < 0
      || plan_hook(in, err) < 0)
    return -1;
  if (o->node_config)
    {
      struct frc_config c;
      cleanup_free char *text = NULL;
      size_t tlen;
      if (frc_config_load(&c, o->node_config, err) < 0)
        return frc_error_wrap(err, "--node-config %s", o->node_config);
      frc_config_release(&c);
      if (read_file_bounded(o->node_config, 1 << 20, &text, &tlen, err) < 0
          || frc_nodefiles_plan(&in->nf, "/etc/flox-runc/config.json", text, tlen, 0644, err) < 0)
        return -1;
    }
  want_cd = o->engine == FRC_INSTALL_CONTAINERD
            || (o->engine == FRC_INSTALL_AUTO && (cd_bin || access(cd_cfg, F_OK) == 0));
  want_crio = o->engine == FRC_INSTALL_CRIO
              || (o->engine == FRC_INSTALL_AUTO && (crio_bin || access(crio_dir, F_OK) == 0));
  if (!want_cd && !want_crio)
    return frc_error(err, "neither containerd nor CRI-O is on the node under %s: install one, or "
                          "pass --engine containerd|crio",
                     in->nf.root);
  if (want_cd && plan_containerd(in, err) < 0)
    return -1;
  if (want_crio && plan_crio(in, err) < 0)
    return -1;
  return 0;
}

static int
plan_uninstall(struct inst *in, frc_error_t *err)
{
  for (size_t i = 0; i < in->nf.nm; i++)
    {
      struct frc_nodefile_entry *e = &in->nf.m[i];
      cleanup_free char *cur = NULL;
      size_t len;
      bool exists;
      char sha[65] = "";
      if (e->dir)
        continue;
      if (frc_nodefiles_read(&in->nf, e->path, MAX_BINARY, &cur, &len, &exists, NULL, err) < 0)
        return -1;
      if (exists)
        frc_nodefiles_sha256(cur, len, sha);
      if (exists ? strcmp(sha, e->sha) == 0 : strcmp(e->sha, "-") == 0)
        {
          if (e->created)
            {
              if (frc_nodefiles_plan(&in->nf, e->path, NULL, 0, 0, err) < 0)
                return -1;
            }
          else
            {
              cleanup_free char *b = frc_nodefiles_backup_path(e->path);
              cleanup_free char *old = NULL;
              size_t olen;
              bool bexists;
              if (frc_nodefiles_read(&in->nf, b, MAX_BINARY, &old, &olen, &bexists, NULL, err) < 0)
                return -1;
              if (!bexists)
                return frc_error(err, "the backup of %s (%s) is missing: restore it by hand",
                                 e->path, b);
              if (frc_nodefiles_plan(&in->nf, e->path, old, olen, e->mode, err) < 0)
                return -1;
            }
        }
      else if (exists && strstr(cur, BEGIN_MARK))
        {
          cleanup_free char *w = without_block(cur);
          report(in, FRC_FINDING_NOTE, "%s changed since flox-runc was installed: only flox-runc's "
                                       "block is removed",
                 e->path);
          if (frc_nodefiles_plan(&in->nf, e->path, w, strlen(w), -1, err) < 0)
            return -1;
        }
      else
        report(in, FRC_FINDING_NOTE, "%s changed since flox-runc was installed: left as it is",
               e->path);
      /* containerd's files are TOML, CRI-O's drop-ins .conf */
      if (strcmp(e->path, in->containerd_config) == 0
          || (strlen(e->path) > 5 && strcmp(e->path + strlen(e->path) - 5, ".toml") == 0))
        in->containerd = true;
      if (str_has_prefix(e->path, "/etc/crio/"))
        in->crio = true;
    }
  if (in->containerd && (in->containerd_bin = frc_nodefiles_program(&in->nf, "containerd", NULL)) == NULL)
    in->containerd = false; /* nothing to validate with, nothing to restart */
  return 0;
}

static void
inst_release(struct inst *in)
{
  frc_nodefiles_release(&in->nf);
  free(in->containerd_bin);
  free(in->where);
}

static bool
safe_toml_path(const char *p)
{
  if (p == NULL || p[0] != '/')
    return false;
  for (const char *s = p; *s; s++)
    if (*s == '"' || *s == '\\' || *s == '\'' || (unsigned char) *s < 0x20 || *s == 0x7f)
      return false;
  return strstr(p, "/../") == NULL;
}

int
frc_install(const struct frc_install_opts *o, frc_error_t *err)
{
  struct inst in __attribute__((cleanup(inst_release))) = { 0 };
  bool present = false;
  int ret = -1;

  in.o = o;
  in.nf.root = o->host_root ? o->host_root : "/";
  in.dest = o->binary_dest ? o->binary_dest : "/usr/local/bin/flox-runc";
  in.name = o->runtime_name ? o->runtime_name : "flox";
  in.containerd_config = o->containerd_config ? o->containerd_config : "/etc/containerd/config.toml";
  if (in.nf.root[0] != '/' || (strlen(in.nf.root) > 1 && in.nf.root[strlen(in.nf.root) - 1] == '/'))
    return frc_error(err, "--host-root %s: give an absolute directory without a trailing '/'", in.nf.root);
  if (!safe_toml_path(in.dest) || !safe_toml_path(in.containerd_config))
    return frc_error(err, "the binary and config paths must be absolute, without quotes, "
                          "backslashes or control characters");
  if (in.name[0] == '\0' || strspn(in.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-")
                                != strlen(in.name))
    return frc_error(err, "--runtime-name %s: use letters, digits, '-' and '_'", in.name);
  if (frc_nodefiles_record_read(&in.nf, &present, err) < 0)
    return -1;

  if (o->uninstall)
    {
      if (!present)
        {
          report(&in, FRC_FINDING_OK, "nothing to uninstall: no record of `flox-runc install` "
                                      "under %s",
                 in.nf.root);
          return 0;
        }
      if (plan_uninstall(&in, err) < 0)
        return -1;
    }
  else
    {
      check_node(&in);
      if (plan_install(&in, err) < 0)
        return -1;
      if (in.nf.nch == 0)
        {
          report(&in, FRC_FINDING_OK, "nothing to change: flox-runc is installed and registered");
          node_bash(&in, false);
          return 0;
        }
    }

  /* with the node config that is about to go */
  if (o->uninstall)
    node_bash(&in, true);
  if (frc_nodefiles_apply(&in.nf, err) < 0)
    goto undo;
  if (in.containerd && validate_containerd(&in, !o->uninstall, err) < 0)
    goto undo;
  if (in.crio && !o->uninstall && validate_crio(&in, err) < 0)
    goto undo;
  if (!o->uninstall && frc_nodefiles_record_update(&in.nf, err) < 0)
    goto undo;
  for (size_t i = 0; i < in.nf.nch; i++)
    report(&in, FRC_FINDING_OK, "%s %s", in.nf.ch[i].new_exists ? (in.nf.ch[i].old_exists ? "updated" : "created")
                                                            : "removed",
           in.nf.ch[i].path);
  if (in.where && !o->uninstall)
    report(&in, FRC_FINDING_OK, "%s", in.where);
  if (o->uninstall)
    frc_nodefiles_forget(&in.nf, o->report, o->data);
  if (!o->uninstall)
    node_bash(&in, false);
  ret = restart(&in, err);
  return ret;

undo:
  frc_nodefiles_rollback(&in.nf);
  return frc_error_wrap(err, "nothing changed on the node");
}
