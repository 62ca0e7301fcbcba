/* JSON documents (lib/json.c): parse, serialise, parse again.
 * Properties: a document that parses serialises to one that parses to an
 * equal tree (frc_json_equal), and the serialisation is a fixed point. */
#include "fuzz.h"
#include "json.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_json yajl_val v = NULL;
  cleanup_json yajl_val again = NULL;
  cleanup_free char *text = NULL;
  cleanup_free char *text2 = NULL;
  frc_error_t err = NULL;
  size_t len = 0, len2 = 0;

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
