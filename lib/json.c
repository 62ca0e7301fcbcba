#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "json.h"
#include "util.h"

/* One pass over the text: nesting depth outside strings, and U+0000 escapes
 * inside them. */
static int
precheck(const char *text, size_t len, frc_error_t *err)
{
  int depth = 0;
  bool in_string = false;

  for (size_t i = 0; i < len; i++)
    {
      char c = text[i];
      if (in_string)
        {
          if (c == '\\' && i + 1 < len)
            {
              if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                return frc_error(err, "a JSON string contains U+0000, which is not supported");
              i++;
            }
          else if (c == '"')
            in_string = false;
          continue;
        }
      if (c == '"')
        in_string = true;
      else if (c == '{' || c == '[')
        {
          if (++depth > FRC_JSON_MAX_DEPTH)
            return frc_error(err, "JSON nested deeper than %d levels", FRC_JSON_MAX_DEPTH);
        }
      else if (c == '}' || c == ']')
        depth--;
      else if (c == '\0')
        return frc_error(err, "JSON text contains a NUL byte");
    }
  return 0;
}

int
frc_json_parse(const char *text, size_t len, yajl_val *out, frc_error_t *err)
{
  char errbuf[256] = "";
  cleanup_free char *copy = NULL;
  yajl_val v;

  if (precheck(text, len, err) < 0)
    return -1;
  /* yajl_tree_parse reads up to a NUL: parse exactly len bytes, whatever
   * follows them (precheck refused a NUL inside). */
  copy = xstrndup(text, len);
  v = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
  if (v == NULL)
    {
      /* yajl's message spans lines and quotes the input: keep its first
       * line, escaped. */
      cleanup_free char *esc = NULL;
      errbuf[strcspn(errbuf, "\n")] = '\0';
      esc = escape_for_message(errbuf, strlen(errbuf), sizeof(errbuf));
      return frc_error(err, "invalid JSON: %s", esc[0] ? esc : "parse error");
    }
  *out = v;
  return 0;
}

/* ---- frc_json_parse_strv: a tree built from yajl's events ---- */

struct strv_frame
{
  yajl_val v; /* an object or array not yet in its parent */
  char *key; /* an object's key waiting for its value */
  size_t cap;
};

struct strv_parse
{
  struct strv_frame stack[FRC_JSON_MAX_DEPTH + 1];
  int depth;
  yajl_val root;
  struct frc_json_strv *fields;
  size_t nfields;
  struct frc_json_strv *pending; /* the next value is this field's */
  struct frc_json_strv *into; /* collecting: the array's strings */
  int skip; /* > 0: inside a container where a string was due */
  bool into_object; /* the field's value is an object (being skipped) */
  bool bad;
  bool too_deep, nul; /* what cancelled the parse */
  yajl_handle h;
  size_t end; /* where the root value ends in the text */
  char **vec;
  size_t n, cap;
  /* frc_json_parse_opaque: the value of opaque[1] in the top-level
   * object's member opaque[0] is kept as its text */
  const char *const *opaque;
  const char *text;
  bool opaque_due;
  int opaque_depth; /* > 0: inside that value */
  size_t opaque_start;
};

static yajl_val
node(yajl_type t)
{
  yajl_val v = xmalloc0(sizeof(*v));
  v->type = t;
  return v;
}

/* Ends the collection of a field's value: ok or not, the last occurrence
 * of the key decides. */
static void
strv_done(struct strv_parse *p, bool ok)
{
  struct frc_json_strv *f = p->into ? p->into : p->pending;
  frc_strv_freep(&f->strv);
  f->found = true;
  if (ok && !p->bad)
    {
      if (p->vec == NULL)
        p->vec = xmalloc0(sizeof(char *));
      f->strv = p->vec;
    }
  else
    frc_strv_freep(&p->vec);
  p->vec = NULL;
  p->n = p->cap = 0;
  p->bad = false;
  p->into = p->pending = NULL;
}

/* Adds v where the parse is: the root, an array's element, an object's key
 * (a string while none waits) or its value. */
static int
add(struct strv_parse *p, yajl_val v)
{
  struct strv_frame *f;

  if (p->depth == 0)
    {
      p->root = v;
      p->end = yajl_get_bytes_consumed(p->h);
      return 1;
    }
  f = &p->stack[p->depth - 1];
  if (f->v->type == yajl_t_array)
    {
      if (f->v->u.array.len == f->cap)
        {
          f->cap = f->cap ? 2 * f->cap : 8;
          f->v->u.array.values = xrealloc(f->v->u.array.values, f->cap * sizeof(yajl_val));
        }
      f->v->u.array.values[f->v->u.array.len++] = v;
      return 1;
    }
  if (f->v->u.object.len == f->cap)
    {
      f->cap = f->cap ? 2 * f->cap : 8;
      f->v->u.object.keys = xrealloc((void *) f->v->u.object.keys, f->cap * sizeof(char *));
      f->v->u.object.values = xrealloc(f->v->u.object.values, f->cap * sizeof(yajl_val));
    }
  f->v->u.object.keys[f->v->u.object.len] = f->key;
  f->v->u.object.values[f->v->u.object.len++] = v;
  f->key = NULL;
  return 1;
}

/* A scalar where a field's value or element is due: 1 when it was taken. */
static bool
strv_scalar(struct strv_parse *p, const unsigned char *s, size_t len, bool is_string)
{
  if (p->skip > 0)
    return true;
  if (p->pending)
    {
      strv_done(p, false); /* not an array */
      return true;
    }
  if (p->into == NULL)
    return false;
  if (!is_string)
    {
      p->bad = true;
      return true;
    }
  {
    char *str = xstrndup((const char *) s, len);
    if (p->into->valid && !p->into->valid(str))
      {
        free(str);
        p->bad = true;
        return true;
      }
    if (p->n + 1 >= p->cap)
      {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->vec = xrealloc(p->vec, p->cap * sizeof(char *));
      }
    p->vec[p->n++] = str;
    p->vec[p->n] = NULL;
  }
  return true;
}

static int
on_null(void *ctx)
{
  struct strv_parse *p = ctx;
  if (p->opaque_depth > 0)
    return 1;
  p->opaque_due = false;
  return strv_scalar(p, NULL, 0, false) ? 1 : add(p, node(yajl_t_null));
}

static int
on_boolean(void *ctx, int b)
{
  struct strv_parse *p = ctx;
  if (p->opaque_depth > 0)
    return 1;
  p->opaque_due = false;
  return strv_scalar(p, NULL, 0, false) ? 1 : add(p, node(b ? yajl_t_true : yajl_t_false));
}

/* A number's integer as yajl_tree_parse makes it (yajl_parse_integer):
 * digits after an optional sign, in range: *ok; anything else (a fraction,
 * an exponent, too large) gives LLONG_MAX, or LLONG_MIN after a '-'. */
static long long
tree_integer(const char *s, bool *ok)
{
  long long ret = 0;
  int sign = 1;

  *ok = false;
  if (*s == '-')
    {
      s++;
      sign = -1;
    }
  if (*s == '+')
    s++;
  for (; *s; s++)
    {
      if (*s < '0' || *s > '9' || ret > LLONG_MAX / 10 || LLONG_MAX - ret * 10 < *s - '0')
        return sign == 1 ? LLONG_MAX : LLONG_MIN;
      ret = ret * 10 + (*s - '0');
    }
  *ok = true;
  return sign * ret;
}

static int
on_number(void *ctx, const char *s, size_t len)
{
  struct strv_parse *p = ctx;
  yajl_val v;
  char *end = NULL;
  bool ok;

  if (p->opaque_depth > 0)
    return 1;
  p->opaque_due = false;
  if (strv_scalar(p, NULL, 0, false))
    return 1;
  v = node(yajl_t_number);
  v->u.number.r = xstrndup(s, len);
  v->u.number.i = tree_integer(v->u.number.r, &ok);
  v->u.number.flags = ok ? YAJL_NUMBER_INT_VALID : 0;
  errno = 0;
  v->u.number.d = strtod(v->u.number.r, &end);
  if (errno == 0 && end && *end == '\0')
    v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
  return add(p, v);
}

static int
on_string(void *ctx, const unsigned char *s, size_t len)
{
  struct strv_parse *p = ctx;
  yajl_val v;

  if (memchr(s, '\0', len)) /* a \u0000: the tree's strings end at a NUL */
    {
      p->nul = true;
      return 0;
    }
  if (p->opaque_depth > 0)
    return 1;
  p->opaque_due = false;
  if (strv_scalar(p, s, len, true))
    return 1;
  v = node(yajl_t_string);
  v->u.string = xstrndup((const char *) s, len);
  return add(p, v);
}

static int
on_key(void *ctx, const unsigned char *s, size_t len)
{
  struct strv_parse *p = ctx;
  struct strv_frame *f = &p->stack[p->depth - 1];

  if (memchr(s, '\0', len))
    {
      p->nul = true;
      return 0;
    }
  if (p->skip > 0 || p->opaque_depth > 0)
    return 1;
  if (p->opaque && p->depth == 2 && p->stack[0].key && strcmp(p->stack[0].key, p->opaque[0]) == 0
      && p->stack[1].v->type == yajl_t_object && strlen(p->opaque[1]) == len
      && memcmp(p->opaque[1], s, len) == 0)
    p->opaque_due = true;
  if (p->depth == 1)
    for (size_t i = 0; i < p->nfields; i++)
      if (strlen(p->fields[i].key) == len && memcmp(p->fields[i].key, s, len) == 0)
        {
          p->pending = &p->fields[i];
          return 1;
        }
  f->key = xstrndup((const char *) s, len);
  return 1;
}

/* The opaque value's text as a node that serialises verbatim; one with a
 * '/' (a comment, which the text may hold and the output must not) as a
 * tree. */
static yajl_val
opaque_node(const char *text, size_t len)
{
  yajl_val v = NULL;
  frc_error_t ignored = NULL;

  if (memchr(text, '/', len))
    {
      if (frc_json_parse(text, len, &v, &ignored) == 0)
        return v;
      frc_error_release(&ignored); /* (cannot be: the whole text parsed) */
      return node(yajl_t_null);
    }
  v = node(yajl_t_number);
  v->u.number.r = xstrndup(text, len);
  v->u.number.flags = FRC_JSON_OPAQUE;
  return v;
}

static int
on_start(struct strv_parse *p, yajl_type t)
{
  /* the nesting of the text, skipped containers and a field's array
   * included */
  if (p->depth + p->skip + (p->into ? 1 : 0) + p->opaque_depth >= FRC_JSON_MAX_DEPTH)
    {
      p->too_deep = true;
      return 0;
    }
  if (p->opaque_depth > 0 || p->opaque_due)
    {
      if (p->opaque_depth++ == 0) /* at its '{' or '[' */
        p->opaque_start = yajl_get_bytes_consumed(p->h) - 1;
      p->opaque_due = false;
      return 1;
    }
  if (p->skip > 0 || p->into)
    {
      p->bad = true; /* a container among the strings: skipped */
      p->skip++;
      return 1;
    }
  if (p->pending)
    {
      p->into = p->pending;
      p->pending = NULL;
      if (t == yajl_t_array)
        return 1;
      p->bad = p->into_object = true; /* skipped, then the field is done */
      p->skip = 1;
      return 1;
    }
  p->stack[p->depth].v = node(t);
  p->stack[p->depth].key = NULL;
  p->stack[p->depth].cap = 0;
  p->depth++;
  return 1;
}

static int
on_end(struct strv_parse *p)
{
  yajl_val v;

  if (p->opaque_depth > 0)
    {
      if (--p->opaque_depth > 0)
        return 1;
      return add(p, opaque_node(p->text + p->opaque_start,
                                yajl_get_bytes_consumed(p->h) - p->opaque_start));
    }
  if (p->skip > 0)
    {
      if (--p->skip == 0 && p->into_object)
        {
          p->into_object = false;
          strv_done(p, false);
        }
      return 1;
    }
  if (p->into)
    {
      strv_done(p, true);
      return 1;
    }
  v = p->stack[--p->depth].v;
  return add(p, v);
}

static int
on_start_map(void *ctx)
{
  return on_start(ctx, yajl_t_object);
}

static int
on_start_array(void *ctx)
{
  return on_start(ctx, yajl_t_array);
}

static int
on_end_container(void *ctx)
{
  return on_end(ctx);
}

static void
strv_parse_release(struct strv_parse *p)
{
  for (int i = p->depth - 1; i >= 0; i--)
    {
      free(p->stack[i].key);
      yajl_tree_free(p->stack[i].v);
    }
  p->depth = 0;
  frc_strv_freep(&p->vec);
}

/* The parse of frc_json_parse_strv and frc_json_parse_opaque.  compat:
 * frc_json_parse's acceptance exactly (its pre-pass, the text up to a NUL,
 * what yajl lets follow the value); else the bounds are checked in the
 * callbacks and only white space may follow. */
static int
parse_events(const char *text, size_t len, struct frc_json_strv *fields, size_t nfields,
             const char *const *opaque, bool compat, yajl_val *out, frc_error_t *err)
{
  static const yajl_callbacks cb = { on_null,      on_boolean,     NULL,   NULL,
                                     on_number,    on_string,      on_start_map, on_key,
                                     on_end_container, on_start_array, on_end_container };
  struct strv_parse p = { .fields = fields, .nfields = nfields, .opaque = opaque, .text = text };
  yajl_handle h;
  yajl_status st;

  *out = NULL;
  for (size_t i = 0; i < nfields; i++)
    {
      fields[i].found = false;
      fields[i].strv = NULL;
    }
  if (compat)
    {
      const char *nul = memchr(text, '\0', len);
      if (precheck(text, len, err) < 0)
        return -1;
      if (nul) /* (yajl_tree_parse reads a NUL-terminated copy) */
        len = (size_t) (nul - text);
    }
  h = p.h = yajl_alloc(&cb, NULL, &p);
  if (h == NULL)
    return frc_error(err, "out of memory");
  yajl_config(h, yajl_allow_comments, 1);
  st = yajl_parse(h, (const unsigned char *) text, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(h);
  /* nothing but white space after the value (yajl's end of input lets an
   * unterminated string or a comment through there) */
  while (!compat && st == yajl_status_ok && p.root && p.end < len && text[p.end]
         && strchr(" \t\r\n", text[p.end]))
    p.end++;
  if (!compat && st == yajl_status_ok && p.root && p.end < len)
    {
      yajl_free(h);
      yajl_tree_free(p.root);
      frc_json_strv_release(fields, nfields);
      return frc_error(err, "invalid JSON: trailing garbage");
    }
  if (st != yajl_status_ok || p.root == NULL)
    {
      unsigned char *msg = yajl_get_error(h, 1, (const unsigned char *) text, len);
      char line[256];
      cleanup_free char *esc = NULL;
      snprintf(line, sizeof(line), "%s", msg ? (const char *) msg : "");
      yajl_free_error(h, msg);
      yajl_free(h);
      strv_parse_release(&p);
      yajl_tree_free(p.root);
      frc_json_strv_release(fields, nfields);
      if (p.too_deep)
        return frc_error(err, "JSON nested deeper than %d levels", FRC_JSON_MAX_DEPTH);
      if (p.nul)
        return frc_error(err, "a JSON string contains U+0000, which is not supported");
      line[strcspn(line, "\n")] = '\0';
      esc = escape_for_message(line, strlen(line), sizeof(line));
      return frc_error(err, "invalid JSON: %s", esc[0] ? esc : "parse error");
    }
  yajl_free(h);
  *out = p.root;
  return 0;
}

int
frc_json_parse_strv(const char *text, size_t len, struct frc_json_strv *fields, size_t nfields,
                    yajl_val *out, frc_error_t *err)
{
  return parse_events(text, len, fields, nfields, NULL, false, out, err);
}

int
frc_json_parse_opaque(const char *text, size_t len, const char *outer, const char *inner,
                      yajl_val *out, frc_error_t *err)
{
  const char *const path[2] = { outer, inner };
  return parse_events(text, len, NULL, 0, path, true, out, err);
}

/* frc_json_doc_load and frc_json_doc_load_opaque: outer NULL parses the
 * whole document as a tree (frc_json_parse). */
static int
doc_load(struct frc_json_doc *doc, const char *path, size_t max, const char *outer,
         const char *inner, frc_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len;

  memset(doc, 0, sizeof(*doc));
  if (read_file_bounded(path, max, &text, &len, err) < 0)
    return -1;
  if ((outer ? frc_json_parse_opaque(text, len, outer, inner, &doc->root, err)
             : frc_json_parse(text, len, &doc->root, err))
      < 0)
    return frc_error_wrap(err, "cannot load `%s`", path);
  if (doc->root->type != yajl_t_object)
    {
      frc_json_freep(&doc->root);
      return frc_error(err, "cannot load `%s`: the top level is not a JSON object", path);
    }
  doc->path = xstrdup(path);
  return 0;
}

int
frc_json_doc_load_opaque(struct frc_json_doc *doc, const char *path, size_t max, const char *outer,
                         const char *inner, frc_error_t *err)
{
  return doc_load(doc, path, max, outer, inner, err);
}

void
frc_json_strv_release(struct frc_json_strv *fields, size_t nfields)
{
  for (size_t i = 0; i < nfields; i++)
    frc_strv_freep(&fields[i].strv);
}

void
frc_json_freep(yajl_val *v)
{
  if (*v)
    yajl_tree_free(*v);
  *v = NULL;
}

static yajl_val
new_node(yajl_type t)
{
  yajl_val v = xmalloc0(sizeof(*v));
  v->type = t;
  return v;
}

yajl_val
frc_json_new_string(const char *s)
{
  yajl_val v = new_node(yajl_t_string);
  v->u.string = xstrdup(s);
  return v;
}

yajl_val
frc_json_new_object(void)
{
  return new_node(yajl_t_object);
}

yajl_val
frc_json_new_array(void)
{
  return new_node(yajl_t_array);
}

yajl_val
frc_json_new_bool(bool b)
{
  return new_node(b ? yajl_t_true : yajl_t_false);
}

yajl_val
frc_json_new_int(long long n)
{
  yajl_val v = new_node(yajl_t_number);
  v->u.number.i = n;
  v->u.number.d = (double) n;
  v->u.number.r = xasprintf("%lld", n);
  v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
  return v;
}

yajl_val
frc_json_get(yajl_val obj, const char *key)
{
  if (obj == NULL || obj->type != yajl_t_object)
    return NULL;
  for (size_t i = obj->u.object.len; i > 0; i--)
    if (strcmp(obj->u.object.keys[i - 1], key) == 0)
      return obj->u.object.values[i - 1];
  return NULL;
}

const char *
frc_json_get_string(yajl_val obj, const char *key)
{
  yajl_val v = frc_json_get(obj, key);
  return v && v->type == yajl_t_string ? v->u.string : NULL;
}

static void
remove_at(yajl_val obj, size_t i)
{
  free((char *) obj->u.object.keys[i]);
  yajl_tree_free(obj->u.object.values[i]);
  memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1],
          (obj->u.object.len - i - 1) * sizeof(obj->u.object.keys[0]));
  memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1],
          (obj->u.object.len - i - 1) * sizeof(obj->u.object.values[0]));
  obj->u.object.len--;
}

void
frc_json_set(yajl_val obj, const char *key, yajl_val v)
{
  bool placed = false;

  for (size_t i = 0; i < obj->u.object.len;)
    {
      if (strcmp(obj->u.object.keys[i], key) != 0)
        {
          i++;
          continue;
        }
      if (!placed)
        {
          yajl_tree_free(obj->u.object.values[i]);
          obj->u.object.values[i] = v;
          placed = true;
          i++;
        }
      else
        remove_at(obj, i);
    }
  if (placed)
    return;
  obj->u.object.keys = xrealloc(obj->u.object.keys, (obj->u.object.len + 1) * sizeof(char *));
  obj->u.object.values = xrealloc(obj->u.object.values, (obj->u.object.len + 1) * sizeof(yajl_val));
  obj->u.object.keys[obj->u.object.len] = xstrdup(key);
  obj->u.object.values[obj->u.object.len] = v;
  obj->u.object.len++;
}

bool
frc_json_remove(yajl_val obj, const char *key)
{
  bool found = false;
  if (obj == NULL || obj->type != yajl_t_object)
    return false;
  for (size_t i = 0; i < obj->u.object.len;)
    if (strcmp(obj->u.object.keys[i], key) == 0)
      {
        remove_at(obj, i);
        found = true;
      }
    else
      i++;
  return found;
}

void
frc_json_append(yajl_val arr, yajl_val v)
{
  arr->u.array.values = xrealloc(arr->u.array.values, (arr->u.array.len + 1) * sizeof(yajl_val));
  arr->u.array.values[arr->u.array.len++] = v;
}

size_t
frc_json_array_remove_if(yajl_val arr, bool (*drop)(yajl_val v, const void *data),
                         const void *data)
{
  size_t out = 0, removed = 0;
  if (arr == NULL || arr->type != yajl_t_array)
    return 0;
  for (size_t i = 0; i < arr->u.array.len; i++)
    {
      yajl_val v = arr->u.array.values[i];
      if (drop(v, data))
        {
          yajl_tree_free(v);
          removed++;
        }
      else
        arr->u.array.values[out++] = v;
    }
  arr->u.array.len = out;
  return removed;
}

bool
frc_json_equal(yajl_val a, yajl_val b)
{
  if (a == NULL || b == NULL)
    return a == b;
  if (a->type != b->type)
    return false;
  switch (a->type)
    {
    case yajl_t_string:
      return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
      return strcmp(a->u.number.r, b->u.number.r) == 0;
    case yajl_t_array:
      if (a->u.array.len != b->u.array.len)
        return false;
      for (size_t i = 0; i < a->u.array.len; i++)
        if (!frc_json_equal(a->u.array.values[i], b->u.array.values[i]))
          return false;
      return true;
    case yajl_t_object:
      /* As maps: every key of either side maps to equal values. */
      for (size_t i = 0; i < a->u.object.len; i++)
        if (!frc_json_equal(frc_json_get(a, a->u.object.keys[i]),
                            frc_json_get(b, a->u.object.keys[i])))
          return false;
      for (size_t i = 0; i < b->u.object.len; i++)
        if (frc_json_get(a, b->u.object.keys[i]) == NULL)
          return false;
      return true;
    default:
      return true; /* true, false, null */
    }
}

static void
gen_value(yajl_gen g, yajl_val v)
{
  switch (v->type)
    {
    case yajl_t_string:
      yajl_gen_string(g, (const unsigned char *) v->u.string, strlen(v->u.string));
      break;
    case yajl_t_number:
      yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
      break;
    case yajl_t_object:
      yajl_gen_map_open(g);
      for (size_t i = 0; i < v->u.object.len; i++)
        {
          const char *k = v->u.object.keys[i];
          yajl_gen_string(g, (const unsigned char *) k, strlen(k));
          gen_value(g, v->u.object.values[i]);
        }
      yajl_gen_map_close(g);
      break;
    case yajl_t_array:
      yajl_gen_array_open(g);
      for (size_t i = 0; i < v->u.array.len; i++)
        gen_value(g, v->u.array.values[i]);
      yajl_gen_array_close(g);
      break;
    case yajl_t_true:
      yajl_gen_bool(g, 1);
      break;
    case yajl_t_false:
      yajl_gen_bool(g, 0);
      break;
    default:
      yajl_gen_null(g);
      break;
    }
}

char *
frc_json_serialize(yajl_val v, size_t *len)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t n;
  char *out;

  gen_value(g, v);
  yajl_gen_get_buf(g, &buf, &n);
  out = xmalloc0(n + 1);
  memcpy(out, buf, n);
  yajl_gen_free(g);
  if (len)
    *len = n;
  return out;
}

int
frc_json_doc_load(struct frc_json_doc *doc, const char *path, size_t max, frc_error_t *err)
{
  return doc_load(doc, path, max, NULL, NULL, err);
}

int
frc_json_doc_save(struct frc_json_doc *doc, frc_error_t *err)
{
  size_t len;
  cleanup_free char *text = frc_json_serialize(doc->root, &len);
  return write_file_replace(doc->path, text, len, -1, err);
}

void
frc_json_doc_release(struct frc_json_doc *doc)
{
  frc_json_freep(&doc->root);
  free(doc->path);
  doc->path = NULL;
}
