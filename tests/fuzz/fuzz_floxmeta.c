/* metadata.json of a floxmeta branch (lib/floxmeta.c).
 * Properties: generation ids are sorted, unique, valid and bounded; the
 * description is text; frc_generation_parse accepts exactly the decimal form
 * it would print. */
#include <stdio.h>

#include "floxmeta.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_generations struct frc_generations g = { 0 };
  cleanup_free char *s = fuzz_cstr(data, size);
  frc_error_t err = NULL;
  unsigned v = frc_generation_parse(s);

  if (v != 0)
    {
      char back[16];
      snprintf(back, sizeof(back), "%u", v);
      FUZZ_ASSERT(strcmp(back, s) == 0 && v <= 999999999u);
    }

  if (frc_floxmeta_parse((const char *) data, size, &g, &err) == 0)
    {
      cleanup_free char *text = frc_generations_describe(&g);
      FUZZ_ASSERT(g.version == 1 || g.version == 2);
      FUZZ_ASSERT(g.n <= FRC_GENERATIONS_MAX);
      for (size_t i = 0; i < g.n; i++)
        {
          FUZZ_ASSERT(g.ids[i] >= 1 && g.ids[i] <= 999999999u);
          FUZZ_ASSERT(i == 0 || g.ids[i - 1] < g.ids[i]);
          FUZZ_ASSERT(frc_generations_has(&g, g.ids[i]));
        }
      FUZZ_ASSERT(!frc_generations_has(&g, 0));
      FUZZ_ASSERT(text != NULL);
      for (const char *c = text; *c; c++)
        FUZZ_ASSERT((unsigned char) *c >= 0x20);
    }
  fuzz_check_error(&err);
  return 0;
}
