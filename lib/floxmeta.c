#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floxmeta.h"
#include "json.h"
#include "util.h"

unsigned
frc_generation_parse(const char *s)
{
  unsigned long v = 0;
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 9 || s[0] == '0')
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return 0;
      v = v * 10 + (unsigned long) (s[i] - '0');
    }
  return (unsigned) v;
}

static unsigned
generation_of(yajl_val v)
{
  if (v == NULL)
    return 0;
  if (v->type == yajl_t_string)
    return frc_generation_parse(v->u.string);
  /* Generation ids are strings, but accept an integer written by hand. */
  if (v->type == yajl_t_number && (v->u.number.flags & YAJL_NUMBER_INT_VALID)
      && v->u.number.i > 0 && v->u.number.i <= 999999999)
    return (unsigned) v->u.number.i;
  return 0;
}

/* Appends; frc_floxmeta_parse sorts and removes repeats at the end (a
 * search per id made 100000 generations cost seconds). */
static void
add_id(struct frc_generations *g, size_t *cap, unsigned id)
{
  if (g->n == *cap)
    {
      *cap = *cap ? *cap * 2 : 16;
      g->ids = xrealloc(g->ids, *cap * sizeof(unsigned));
    }
  g->ids[g->n++] = id;
}

static int
cmp_unsigned(const void *a, const void *b)
{
  unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
  return x < y ? -1 : x > y;
}

static int
bad(frc_error_t *err, const char *what)
{
  frc_error(err, "FloxHub's metadata.json is malformed: %s", what);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

int
frc_floxmeta_parse(const char *json, size_t len, struct frc_generations *out, frc_error_t *err)
{
  cleanup_json yajl_val root = NULL;
  yajl_val version;
  size_t cap = 0, kept = 0;

  memset(out, 0, sizeof(*out));
  if (len > FRC_METADATA_MAX_BYTES)
    return bad(err, "larger than 4 MiB");
  if (frc_json_parse(json, len, &root, err) < 0)
    {
      frc_error_wrap(err, "FloxHub's metadata.json");
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  version = frc_json_get(root, "version");
  if (version == NULL || version->type != yajl_t_number
      || !(version->u.number.flags & YAJL_NUMBER_INT_VALID))
    return bad(err, "no integer \"version\"");
  out->version = (int) version->u.number.i;

  if (out->version == 2)
    {
      yajl_val history = frc_json_get(root, "history");
      yajl_val total = frc_json_get(root, "total_generations");
      if (history == NULL || history->type != yajl_t_array || history->u.array.len == 0)
        return bad(err, "version 2 without a \"history\"");
      if (history->u.array.len > FRC_GENERATIONS_MAX)
        return bad(err, "too many history entries");
      for (size_t i = 0; i < history->u.array.len; i++)
        {
          unsigned id = generation_of(frc_json_get(history->u.array.values[i], "current_generation"));
          if (id == 0)
            return bad(err, "a history entry without a valid \"current_generation\"");
          add_id(out, &cap, id);
          out->live = id; /* the last entry wins */
        }
      if (total && total->type == yajl_t_number && (total->u.number.flags & YAJL_NUMBER_INT_VALID)
          && total->u.number.i > 0 && total->u.number.i <= FRC_GENERATIONS_MAX)
        for (unsigned id = 1; id <= (unsigned) total->u.number.i; id++)
          add_id(out, &cap, id);
    }
  else if (out->version == 1)
    {
      yajl_val gens = frc_json_get(root, "generations");
      out->live = generation_of(frc_json_get(root, "currentGen"));
      if (out->live == 0)
        return bad(err, "version 1 without a valid \"currentGen\"");
      add_id(out, &cap, out->live);
      if (gens && gens->type == yajl_t_object)
        {
          if (gens->u.object.len > FRC_GENERATIONS_MAX)
            return bad(err, "too many generations");
          for (size_t i = 0; i < gens->u.object.len; i++)
            {
              unsigned id = frc_generation_parse(gens->u.object.keys[i]);
              if (id == 0)
                return bad(err, "a generation id that is not a positive number");
              add_id(out, &cap, id);
            }
        }
    }
  else
    {
      frc_error(err, "FloxHub's metadata.json has version %d, which this flox-runc does not know: "
                     "update flox-runc",
                out->version);
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  qsort(out->ids, out->n, sizeof(unsigned), cmp_unsigned);
  for (size_t i = 0; i < out->n; i++)
    if (kept == 0 || out->ids[kept - 1] != out->ids[i])
      out->ids[kept++] = out->ids[i];
  out->n = kept;
  return 0;
}

int
frc_generations_has(const struct frc_generations *g, unsigned id)
{
  for (size_t i = 0; i < g->n; i++)
    if (g->ids[i] == id)
      return 1;
  return 0;
}

char *
frc_generations_describe(const struct frc_generations *g)
{
  size_t cap = 64 + g->n * 24, used = 0;
  char *out = xmalloc0(cap);
  size_t i = 0;
  int ranges = 0;

  used += (size_t) snprintf(out + used, cap - used, "available generations: ");
  while (i < g->n && ranges < 8)
    {
      size_t j = i;
      while (j + 1 < g->n && g->ids[j + 1] == g->ids[j] + 1)
        j++;
      if (j == i)
        used += (size_t) snprintf(out + used, cap - used, "%s%u", ranges ? ", " : "", g->ids[i]);
      else
        used += (size_t) snprintf(out + used, cap - used, "%s%u-%u", ranges ? ", " : "", g->ids[i],
                                  g->ids[j]);
      ranges++;
      i = j + 1;
    }
  if (i < g->n)
    used += (size_t) snprintf(out + used, cap - used, ", ...");
  snprintf(out + used, cap - used, "; the live one is %u", g->live);
  return out;
}

void
frc_generations_release(struct frc_generations *g)
{
  free(g->ids);
  memset(g, 0, sizeof(*g));
}
