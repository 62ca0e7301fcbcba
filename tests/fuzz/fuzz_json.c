/* JSON documents (lib/json.c): parse, serialise, parse again.
 * Properties: a document that parses serialises to one that parses to an
 * equal tree (frc_json_equal), and the serialisation is a fixed point; and
 * frc_json_parse_strv and frc_json_parse_opaque agree with frc_json_parse
 * (check_strv, check_opaque). */
#include "fuzz.h"
#include "json.h"
#include "jsonsame.h"

/* frc_json_parse_strv against frc_json_parse: what the first accepts the
 * second does (which also lets an unterminated string or a comment follow
 * the value), texts with comments or NUL bytes aside (frc_json_parse's
 * nesting pass reads brackets and quotes in comments, and yajl_tree_parse
 * reads up to the first NUL); the tree is frc_json_parse's without the
 * fields' keys, and a field's vector is the last occurrence's strings when
 * that is an array of strings. */
static void
check_strv(const uint8_t *data, size_t size)
{
  cleanup_json yajl_val v = NULL;
  cleanup_json yajl_val w = NULL;
  frc_error_t err = NULL, err2 = NULL;
  struct frc_json_strv f[2] = { { .key = "pins" }, { .key = "a" } };
  int a, b;

  if (memmem(data, size, "/*", 2) || memmem(data, size, "//", 2) || memchr(data, '\0', size))
    return;
  a = frc_json_parse((const char *) data, size, &v, &err);
  b = frc_json_parse_strv((const char *) data, size, f, 2, &w, &err2);
  fuzz_check_error(&err2);
  /* (frc_json_parse refuses the text \u0000 wherever it is; the strings of
   * frc_json_parse_strv as decoded, where yajl may take it as half of a
   * surrogate pair: no NUL) */
  if (b == 0 && a < 0 && strstr(err->msg, "U+0000"))
    {
      frc_error_release(&err);
      frc_json_strv_release(f, 2);
      return;
    }
  frc_error_release(&err);
  FUZZ_ASSERT(b < 0 || a == 0);
  if (b < 0)
    {
      FUZZ_ASSERT(w == NULL && f[0].strv == NULL && f[1].strv == NULL);
      return;
    }
  for (int k = 0; k < 2; k++)
    {
      yajl_val x = v->type == yajl_t_object ? frc_json_get(v, f[k].key) : NULL;
      bool strings = x && x->type == yajl_t_array;
      for (size_t i = 0; strings && i < x->u.array.len; i++)
        strings = x->u.array.values[i]->type == yajl_t_string;
      FUZZ_ASSERT(f[k].found == (x != NULL));
      FUZZ_ASSERT((f[k].strv != NULL) == strings);
      for (size_t i = 0; strings && i < x->u.array.len; i++)
        FUZZ_ASSERT(f[k].strv[i] && strcmp(f[k].strv[i], x->u.array.values[i]->u.string) == 0);
      FUZZ_ASSERT(!strings || f[k].strv[x->u.array.len] == NULL);
      if (v->type == yajl_t_object)
        frc_json_remove(v, f[k].key);
    }
  FUZZ_ASSERT(frc_json_equal(v, w) && frc_json_equal(w, v));
  frc_json_strv_release(f, 2);
}

/* frc_json_parse_opaque against frc_json_parse: the same texts accepted,
 * the same tree (numbers' fields included) with linux.seccomp read from
 * its text, and its serialisation parses to frc_json_parse's tree. */
static void
check_opaque(const uint8_t *data, size_t size)
{
  cleanup_json yajl_val v = NULL;
  cleanup_json yajl_val w = NULL;
  cleanup_json yajl_val again = NULL;
  cleanup_free char *text = NULL;
  frc_error_t err = NULL, err2 = NULL;
  size_t len = 0;
  int a = frc_json_parse((const char *) data, size, &v, &err);
  int b = frc_json_parse_opaque((const char *) data, size, "linux", "seccomp", &w, &err2);

  fuzz_check_error(&err2);
  frc_error_release(&err);
  FUZZ_ASSERT(a == b);
  if (a < 0)
    return;
  FUZZ_ASSERT(json_same_tree(w, v));
  text = frc_json_serialize(w, &len);
  FUZZ_ASSERT(frc_json_parse(text, len, &again, &err) == 0);
  FUZZ_ASSERT(frc_json_equal(again, v) && frc_json_equal(v, again));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_json yajl_val v = NULL;
  cleanup_json yajl_val again = NULL;
  cleanup_free char *text = NULL;
  cleanup_free char *text2 = NULL;
  frc_error_t err = NULL;
  size_t len = 0, len2 = 0;

  check_strv(data, size);
  check_opaque(data, size);
  if (frc_json_parse((const char *) data, size, &v, &err) < 0)
    {
      fuzz_check_error(&err);
      return 0;
    }
  text = frc_json_serialize(v, &len);
  FUZZ_ASSERT(text != NULL && strlen(text) == len);
  if (frc_json_parse(text, len, &again, &err) < 0)
    fprintf(stderr, "own output does not parse: %s\n%s\n", err->msg, text);
  FUZZ_ASSERT(again != NULL);
  FUZZ_ASSERT(frc_json_equal(v, again) && frc_json_equal(again, v));
  text2 = frc_json_serialize(again, &len2);
  FUZZ_ASSERT(len == len2 && memcmp(text, text2, len) == 0);

  /* Lookups and edits on whatever came out. */
  (void) frc_json_get_string(v, "a");
  if (v->type == yajl_t_object)
    {
      frc_json_set(v, "flox", frc_json_new_string("x"));
      FUZZ_ASSERT(strcmp(frc_json_get_string(v, "flox"), "x") == 0);
      FUZZ_ASSERT(frc_json_remove(v, "flox") && frc_json_get(v, "flox") == NULL);
    }
  return 0;
}
