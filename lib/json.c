#include <string.h>
#include <yajl/yajl_gen.h>

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
  cleanup_free char *text = NULL;
  size_t len;

  memset(doc, 0, sizeof(*doc));
  if (read_file_bounded(path, max, &text, &len, err) < 0)
    return -1;
  if (frc_json_parse(text, len, &doc->root, err) < 0)
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
