/* floxmeta.h - an environment's generations, from FloxHub's metadata.json.
 *
 * Owns: parsing metadata.json of a floxmeta branch, versions 2 (the live
 * generation is `current_generation` of the LAST history entry, so a
 * switch_generation back to an older one counts) and 1 (`currentGen`), into
 * the live generation and the generation ids it names; and the message for a
 * pinned generation that does not exist.
 */
#ifndef FRC_FLOXMETA_H
#define FRC_FLOXMETA_H

#include <stddef.h>

#include "error.h"

#define FRC_METADATA_MAX_BYTES (4u << 20)
#define FRC_GENERATIONS_MAX 100000

struct frc_generations
{
  int version; /* metadata version: 1 or 2 */
  unsigned live;
  unsigned *ids; /* sorted, unique */
  size_t n;
};

int frc_floxmeta_parse(const char *json, size_t len, struct frc_generations *out, frc_error_t *err);
void frc_generations_release(struct frc_generations *g);
#define cleanup_generations __attribute__((cleanup(frc_generations_release)))

/* Parses a generation id ("1".."999999999"); 0 when invalid. */
unsigned frc_generation_parse(const char *s);
int frc_generations_has(const struct frc_generations *g, unsigned id);
/* "generations 1-4 and 6 exist; the live one is 6" style text (malloc'd). */
char *frc_generations_describe(const struct frc_generations *g);

#endif
