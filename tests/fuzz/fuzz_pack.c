/* Packfiles (lib/pack.c): headers, zlib inflation, OFS_DELTA and REF_DELTA
 * chains, then the commit and tree parsers on what came out.
 *
 * Input: one flag byte, then the pack.  Flag bit 0 set: the harness appends
 * the pack's SHA-1 trailer itself, so that mutations get past the checksum
 * (a server computes it too; what follows it is what is worth fuzzing).
 * Properties: every object in the store has the id of its type and content,
 * the store respects its limits, a failed pack leaves the store as it was,
 * and the same pack added twice adds nothing. */
#include "dl.h"
#include "fuzz.h"
#include "pack.h"

static void
check_store(const struct frc_odb *db)
{
  size_t count = 0, total = 0;
  for (size_t i = 0; i < db->cap; i++)
    {
      const struct frc_object *o = db->slots[i];
      unsigned char id[FRC_OID_RAW];
      frc_error_t err = NULL;
      if (o == NULL)
        continue;
      count++;
      total += o->len;
      FUZZ_ASSERT(o->len <= db->limits.max_object);
      FUZZ_ASSERT(o->depth <= db->limits.max_delta_depth);
      FUZZ_ASSERT(o->data[o->len] == '\0');
      FUZZ_ASSERT(frc_object_id(o->type, o->data, o->len, id, &err) == 0);
      FUZZ_ASSERT(memcmp(id, o->id, FRC_OID_RAW) == 0);
      FUZZ_ASSERT(frc_odb_lookup(db, o->id) == o);
      if (o->type == FRC_OBJ_COMMIT)
        {
          unsigned char tree[FRC_OID_RAW];
          (void) frc_commit_tree(o, tree, &err);
          fuzz_check_error(&err);
        }
      else if (o->type == FRC_OBJ_TREE)
        {
          cleanup_free struct frc_tree_entry *ents = NULL;
          size_t n = 0;
          if (frc_tree_parse(o, 1000, &ents, &n, &err) == 0)
            for (size_t j = 0; j < n; j++)
              {
                const char *start = (const char *) o->data, *end = start + o->len;
                FUZZ_ASSERT(n <= 1000);
                FUZZ_ASSERT(ents[j].name > start && ents[j].name + ents[j].name_len < end);
                FUZZ_ASSERT(strlen(ents[j].name) == ents[j].name_len && ents[j].name_len > 0);
                FUZZ_ASSERT(strchr(ents[j].name, '/') == NULL);
                FUZZ_ASSERT(strcmp(ents[j].name, ".") != 0 && strcmp(ents[j].name, "..") != 0);
                FUZZ_ASSERT((const char *) ents[j].id + FRC_OID_RAW <= end);
              }
          fuzz_check_error(&err);
        }
    }
  FUZZ_ASSERT(count == db->count && count <= db->limits.max_objects);
  FUZZ_ASSERT(total == db->total && total <= db->limits.max_total);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct frc_pack_limits limits = {
    .max_pack = 1u << 20,
    .max_objects = 2000,
    .max_object = 1u << 20,
    .max_total = 8u << 20,
    .max_delta_depth = 16,
  };
  struct frc_odb db;
  frc_error_t err = NULL;
  cleanup_free unsigned char *pack = NULL;
  size_t len;

  if (size < 1)
    return 0;
  len = size - 1;
  pack = xmalloc0(len + FRC_OID_RAW + 1);
  memcpy(pack, data + 1, len);
  if (data[0] & 1)
    {
      FUZZ_ASSERT(frc_sha1(pack, len, pack + len, &err) == 0);
      len += FRC_OID_RAW;
    }

  frc_odb_init(&db, &limits);
  if (frc_odb_add_pack(&db, pack, len, &err) == 0)
    {
      size_t count = db.count, total = db.total;
      FUZZ_ASSERT(db.last.added == count && db.last.objects >= count);
      check_store(&db);
      /* Again: every object is known, REF_DELTA bases now come from the store. */
      FUZZ_ASSERT(frc_odb_add_pack(&db, pack, len, &err) == 0);
      FUZZ_ASSERT(db.count == count && db.total == total && db.last.added == 0);
    }
  else
    {
      FUZZ_ASSERT(db.count == 0 && db.total == 0);
    }
  fuzz_check_error(&err);
  check_store(&db);
  frc_odb_release(&db);
  return 0;
}
