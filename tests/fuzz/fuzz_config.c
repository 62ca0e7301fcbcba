/* The node configuration (lib/config.c) from its file's text.
 * Properties: an accepted configuration prints (frc_config_to_json) as JSON
 * that parses back to the same effective configuration with its URLs'
 * userinfo masked (frc_config_redact), prints the same again, and the print
 * never holds a URL's userinfo. */
#include "config.h"
#include "fuzz.h"
#include "json.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_config struct frc_config c = { 0 };
  cleanup_config struct frc_config again = { 0 };
  cleanup_free char *text = NULL;
  cleanup_free char *text2 = NULL;
  frc_error_t err = NULL;

  if (frc_config_parse(&c, (const char *) data, size, "fuzz.json", &err) < 0)
    {
      fuzz_check_error(&err);
      return 0;
    }
  text = frc_config_to_json(&c);
  FUZZ_ASSERT(text != NULL);
  {
    /* Unset keys print as null, which a file may not say: drop them. */
    cleanup_json yajl_val doc = NULL;
    cleanup_free char *file = NULL;
    FUZZ_ASSERT(frc_json_parse(text, strlen(text), &doc, &err) == 0);
    FUZZ_ASSERT(doc->type == yajl_t_object);
    for (size_t i = doc->u.object.len; i > 0; i--)
      if (doc->u.object.values[i - 1]->type == yajl_t_null)
        {
          cleanup_free char *key = xstrdup(doc->u.object.keys[i - 1]);
          FUZZ_ASSERT(frc_json_remove(doc, key));
        }
    file = frc_json_serialize(doc, NULL);
    if (frc_config_parse(&again, file, strlen(file), "printed", &err) < 0)
      fprintf(stderr, "printed configuration does not load: %s\n%s\n", err->msg, file);
  }
  FUZZ_ASSERT(err == NULL);
  text2 = frc_config_to_json(&again);
  FUZZ_ASSERT(strcmp(text, text2) == 0);
  frc_config_redact(&c);
  FUZZ_ASSERT(frc_config_equal(&c, &again));
  return 0;
}
