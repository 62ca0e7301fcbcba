#include <string.h>

#include "toml.h"
#include "util.h"

void
frc_toml_release(struct frc_toml *t)
{
  for (size_t i = 0; i < t->n; i++)
    {
      free(t->kv[i].table);
      free(t->kv[i].key);
      free(t->kv[i].value);
    }
  free(t->kv);
  memset(t, 0, sizeof(*t));
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

/* Steps the string state over s[*i] (TOML's "..." with backslash escapes,
 * '...' literal): true when s[*i] is outside every string and no quote;
 * *i moves over an escaped character. */
static bool
outside_string(const char *s, size_t *i, char *quote)
{
  if (*quote)
    {
      if (s[*i] == '\\' && *quote == '"' && s[*i + 1])
        ++*i;
      else if (s[*i] == *quote)
        *quote = 0;
      return false;
    }
  if (s[*i] == '"' || s[*i] == '\'')
    {
      *quote = s[*i];
      return false;
    }
  return true;
}

/* Strips a comment that is not inside a string. */
static void
strip_comment(char *line)
{
  char quote = 0;
  for (size_t i = 0; line[i]; i++)
    if (outside_string(line, &i, &quote) && line[i] == '#')
      {
        line[i] = '\0';
        return;
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

/* Whether an array value's brackets (outside strings) are balanced. */
static bool
array_closed(const char *v)
{
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; v[i]; i++)
    if (outside_string(v, &i, &quote))
      depth += v[i] == '[' ? 1 : v[i] == ']' ? -1 : 0;
  return depth <= 0;
}

static void
add_kv(struct frc_toml *t, const char *table, int table_line, char *key, char *value, int line,
       int end_line, const char *file)
{
  t->kv = xrealloc(t->kv, (t->n + 1) * sizeof(*t->kv));
  t->kv[t->n] = (struct frc_toml_kv){ .table = xstrdup(table), .key = key, .value = value,
                                      .line = line, .end_line = end_line,
                                      .table_line = table_line, .file = file };
  t->n++;
}

int
frc_toml_parse(const char *text, const char *name, struct frc_toml *t, frc_error_t *err)
{
  cleanup_free char *copy = xstrdup(text);
  cleanup_free char *table = xstrdup("");
  cleanup_free char *pending_key = NULL; /* a multi-line array being read */
  cleanup_free char *pending = NULL;
  int pending_line = 0, lineno = 0, table_line = 0;
  char *next = copy;

  memset(t, 0, sizeof(*t));
  while (next && *next)
    {
      char *line = next, *l, *eq, *nl = strchr(next, '\n');
      if (nl)
        *nl = '\0';
      next = nl ? nl + 1 : NULL;
      lineno++;
      strip_comment(line);
      l = trim(line);
      if (pending_key)
        {
          char *joined = xasprintf("%s %s", pending, l);
          free(pending);
          pending = joined;
          if (!array_closed(pending))
            continue;
          add_kv(t, table, table_line, steal_pointer(&pending_key), steal_pointer(&pending),
                 pending_line, lineno, name);
          continue;
        }
      if (l[0] == '\0')
        continue;
      if (l[0] == '[')
        {
          char *end = strrchr(l, ']');
          bool array_table = l[1] == '[';
          if (end == NULL || (array_table && (end == l + 1 || end[-1] != ']')))
            return frc_error(err, "%s:%d: a table header without ']': fix the file", name, lineno);
          free(table);
          table = norm_path(l + 1 + array_table,
                            (size_t) (end - l - 1 - array_table) - (array_table ? 1 : 0));
          table_line = lineno;
          if (t->first_table_line == 0)
            t->first_table_line = lineno;
          continue;
        }
      eq = strchr(l, '=');
      if (eq == NULL)
        return frc_error(err, "%s:%d: expected `key = value`: fix the file", name, lineno);
      *eq = '\0';
      {
        char *value = trim(eq + 1);
        char *key = norm_path(trim(l), strlen(trim(l)));
        if (value[0] == '"' && value[1] == '"' && value[2] == '"')
          {
            free(key);
            return frc_error(err, "%s:%d: multi-line strings are not supported here", name, lineno);
          }
        if (value[0] == '[' && !array_closed(value))
          {
            pending_key = key;
            pending = xstrdup(value);
            pending_line = lineno;
            continue;
          }
        add_kv(t, table, table_line, key, xstrdup(value), lineno, lineno, name);
      }
    }
  t->nlines = lineno;
  if (pending_key)
    return frc_error(err, "%s:%d: an array without its closing ']': fix the file", name,
                     pending_line);
  return 0;
}

const struct frc_toml_kv *
frc_toml_find(const struct frc_toml *t, const char *table, const char *key)
{
  const struct frc_toml_kv *found = NULL;
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->kv[i].table, table) == 0 && strcmp(t->kv[i].key, key) == 0)
      found = &t->kv[i];
  return found;
}

char *
frc_toml_string(const char *v)
{
  size_t n;
  if (v == NULL)
    return NULL;
  n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
    return xstrndup(v + 1, n - 2);
  return NULL;
}

char **
frc_toml_string_array(const char *v)
{
  char **out;
  size_t n = 0;
  const char *p;
  if (v == NULL || v[0] != '[')
    return NULL;
  out = xmalloc0(sizeof(char *));
  for (p = v + 1;;)
    {
      const char *end;
      char q;
      while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
      if (*p == ']')
        return out;
      if (*p != '"' && *p != '\'')
        break;
      q = *p++;
      end = strchr(p, q);
      if (end == NULL)
        break;
      frc_strv_push(&out, &n, xstrndup(p, (size_t) (end - p)));
      p = end + 1;
    }
  frc_strv_freep(&out);
  return NULL;
}
