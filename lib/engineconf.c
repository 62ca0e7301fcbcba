#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engineconf.h"
#include "util.h"

#define CONF_MAX_BYTES (4u << 20)

/* One key of the flattened TOML: "table.path.key" -> raw value text. */
struct kv
{
  char *table;
  char *key;
  char *value;
};

struct toml
{
  struct kv *kv;
  size_t n;
};

static void
toml_release(struct toml *t)
{
  for (size_t i = 0; i < t->n; i++)
    {
      free(t->kv[i].table);
      free(t->kv[i].key);
      free(t->kv[i].value);
    }
  free(t->kv);
}

/* Normalises a table header or dotted key: quotes removed from segments,
 * whitespace around dots dropped. */
static char *
norm_path(const char *s, size_t len)
{
  char *out = xmalloc0(len + 1);
  size_t o = 0;
  char quote = 0;
  for (size_t i = 0; i < len; i++)
    {
      char c = s[i];
      if (quote)
        {
          if (c == quote)
            quote = 0;
          else
            out[o++] = c;
        }
      else if (c == '"' || c == '\'')
        quote = c;
      else if (c != ' ' && c != '\t')
        out[o++] = c;
    }
  out[o] = '\0';
  return out;
}

/* Strips a comment that is not inside a string. */
static void
strip_comment(char *line)
{
  char quote = 0;
  for (char *p = line; *p; p++)
    {
      if (quote)
        {
          if (*p == '\\' && quote == '"' && p[1])
            p++;
          else if (*p == quote)
            quote = 0;
        }
      else if (*p == '"' || *p == '\'')
        quote = *p;
      else if (*p == '#')
        {
          *p = '\0';
          return;
        }
    }
}

static char *
trim(char *s)
{
  char *e;
  while (*s == ' ' || *s == '\t')
    s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    *--e = '\0';
  return s;
}

static int
toml_parse(const char *text, struct toml *t, const char *path, frc_error_t *err)
{
  cleanup_free char *copy = xstrdup(text);
  cleanup_free char *table = xstrdup("");
  cleanup_free char *pending_key = NULL; /* a multi-line array being read */
  cleanup_free char *pending = NULL;
  char *save = NULL;
  int lineno = 0;

  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    {
      char *l, *eq;
      lineno++;
      strip_comment(line);
      l = trim(line);
      if (pending_key)
        {
          char *joined = xasprintf("%s %s", pending, l);
          free(pending);
          pending = joined;
          if (strchr(l, ']') == NULL)
            continue;
          t->kv = xrealloc(t->kv, (t->n + 1) * sizeof(*t->kv));
          t->kv[t->n].table = xstrdup(table);
          t->kv[t->n].key = steal_pointer(&pending_key);
          t->kv[t->n].value = steal_pointer(&pending);
          t->n++;
          continue;
        }
      if (l[0] == '\0')
        continue;
      if (l[0] == '[')
        {
          char *end = strrchr(l, ']');
          bool array_table = l[1] == '[';
          if (end == NULL)
            return frc_error(err, "%s:%d: a table header without ']'", path, lineno);
          free(table);
          table = norm_path(l + 1 + array_table, (size_t) (end - l - 1 - array_table)
                                                     - (array_table && end[-1] == ']'));
          continue;
        }
      eq = strchr(l, '=');
      if (eq == NULL)
        return frc_error(err, "%s:%d: expected `key = value`", path, lineno);
      *eq = '\0';
      {
        char *value = trim(eq + 1);
        char *key = norm_path(trim(l), strlen(trim(l)));
        if (value[0] == '[' && strchr(value, ']') == NULL)
          {
            pending_key = key;
            pending = xstrdup(value);
            continue;
          }
        t->kv = xrealloc(t->kv, (t->n + 1) * sizeof(*t->kv));
        t->kv[t->n].table = xstrdup(table);
        t->kv[t->n].key = key;
        t->kv[t->n].value = xstrdup(value);
        t->n++;
      }
    }
  return 0;
}

/* The value of key in table (exact), NULL when absent. */
static const char *
toml_get(const struct toml *t, const char *table, const char *key)
{
  const char *found = NULL;
  for (size_t i = 0; i < t->n; i++)
    {
      /* a dotted key "options.BinaryName" in the runtime table counts too */
      if (strcmp(t->kv[i].table, table) == 0 && strcmp(t->kv[i].key, key) == 0)
        found = t->kv[i].value;
    }
  return found;
}

static const char *
toml_get_either(const struct toml *t, const char *table, const char *sub, const char *key)
{
  cleanup_free char *full = xasprintf("%s.%s", table, sub);
  cleanup_free char *dotted = xasprintf("%s.%s", sub, key);
  const char *v = toml_get(t, full, key);
  return v ? v : toml_get(t, table, dotted);
}

/* The unquoted content of a TOML string value (malloc'd), NULL if not one. */
static char *
string_value(const char *v)
{
  size_t n;
  if (v == NULL)
    return NULL;
  n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
    return xstrndup(v + 1, n - 2);
  return NULL;
}

/* Whether a TOML array value holds a string matching the flox.dev/... key
 * pattern the way containerd matches annotations (glob). */
static bool
array_allows_flox(const char *v)
{
  if (v == NULL)
    return false;
  return strstr(v, "\"flox.dev/*\"") || strstr(v, "'flox.dev/*'") || strstr(v, "\"*\"")
         || strstr(v, "\"flox.dev/environment\"");
}

static void
say(frc_finding_fn report, void *data, bool ok, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
say(frc_finding_fn report, void *data, bool ok, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  msg = xvasprintf(fmt, ap);
  va_end(ap);
  report(ok, msg, data);
  free(msg);
}

static const char *const containerd_prefixes[] = {
  "plugins.io.containerd.grpc.v1.cri.containerd.runtimes.",
  "plugins.io.containerd.cri.v1.runtime.containerd.runtimes.",
  NULL,
};

int
frc_check_containerd_config(const char *path, bool (*is_self)(const char *), frc_finding_fn report,
                            void *data, frc_error_t *err)
{
  cleanup_free char *text = NULL;
  struct toml t __attribute__((cleanup(toml_release))) = { 0 };
  int problems = 0, found = 0;

  if (read_file_bounded(path, CONF_MAX_BYTES, &text, NULL, err) < 0
      || toml_parse(text, &t, path, err) < 0)
    return -1;
  for (size_t i = 0; i < t.n; i++)
    for (const char *const *p = containerd_prefixes; *p; p++)
      {
        const char *table = t.kv[i].table;
        cleanup_free char *rt = NULL;
        cleanup_free char *bin = NULL;
        cleanup_free char *type = NULL;
        const char *name, *pods;
        if (!str_has_prefix(table, *p) || strchr(table + strlen(*p), '.') != NULL)
          continue;
        /* one pass per runtime table: take its first key */
        if (i > 0 && strcmp(t.kv[i - 1].table, table) == 0)
          continue;
        name = table + strlen(*p);
        bin = string_value(toml_get_either(&t, table, "options", "BinaryName"));
        if (bin == NULL || !is_self(bin))
          continue;
        found++;
        type = string_value(toml_get(&t, table, "runtime_type"));
        pods = toml_get(&t, table, "pod_annotations");
        say(report, data, true, "containerd (%s): runtime \"%s\" runs flox-runc (BinaryName %s)", path,
            name, bin);
        if (type == NULL || strcmp(type, "io.containerd.runc.v2") != 0)
          {
            problems++;
            say(report, data, false,
                "containerd (%s): runtime \"%s\" has runtime_type %s: set runtime_type = "
                "\"io.containerd.runc.v2\" (flox-runc is called by the stock runc shim)",
                path, name, type ? type : "(none)");
          }
        if (!array_allows_flox(pods))
          {
            problems++;
            say(report, data, false,
                "containerd (%s): runtime \"%s\" does not pass pod annotations: add pod_annotations = "
                "[\"flox.dev/*\"] (and container_annotations), or no flox.dev/* annotation reaches "
                "flox-runc",
                path, name);
          }
        else
          say(report, data, true, "containerd (%s): runtime \"%s\" passes flox.dev/* pod annotations",
              path, name);
      }
  if (found == 0)
    {
      problems++;
      say(report, data, false,
          "containerd (%s): no runtime has BinaryName pointing at this flox-runc: add "
          "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.flox] with runtime_type = "
          "\"io.containerd.runc.v2\" and options BinaryName (docs/install-containerd.md)",
          path);
    }
  return problems;
}

int
frc_check_crio_config(const char *const *paths, bool (*is_self)(const char *), frc_finding_fn report,
                      void *data, frc_error_t *err)
{
  static const char prefix[] = "crio.runtime.runtimes.";
  int problems = 0, found = 0;

  for (const char *const *path = paths; *path; path++)
    {
      cleanup_free char *text = NULL;
      struct toml t __attribute__((cleanup(toml_release))) = { 0 };
      if (read_file_bounded(*path, CONF_MAX_BYTES, &text, NULL, err) < 0
          || toml_parse(text, &t, *path, err) < 0)
        return -1;
      for (size_t i = 0; i < t.n; i++)
        {
          const char *table = t.kv[i].table;
          cleanup_free char *bin = NULL;
          cleanup_free char *type = NULL;
          if (!str_has_prefix(table, prefix) || strchr(table + strlen(prefix), '.') != NULL
              || strcmp(t.kv[i].key, "runtime_path") != 0)
            continue;
          bin = string_value(t.kv[i].value);
          if (bin == NULL || !is_self(bin))
            continue;
          found++;
          type = string_value(toml_get(&t, table, "runtime_type"));
          say(report, data, true, "CRI-O (%s): runtime \"%s\" runs flox-runc (runtime_path %s)",
              *path, table + strlen(prefix), bin);
          if (type && strcmp(type, "oci") != 0)
            {
              problems++;
              say(report, data, false,
                  "CRI-O (%s): runtime \"%s\" has runtime_type %s: use runtime_type = \"oci\"",
                  *path, table + strlen(prefix), type);
            }
        }
    }
  if (found == 0)
    {
      problems++;
      say(report, data, false,
          "CRI-O: no [crio.runtime.runtimes.<name>] has runtime_path pointing at this flox-runc: add "
          "one with runtime_type = \"oci\" (docs/install-crio.md)");
    }
  return problems;
}
