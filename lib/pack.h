/* pack.h - git packfiles and the objects they carry, in memory.
 *
 * Owns: parsing a packfile (version 2 or 3) received from a git server:
 * object headers, zlib inflation of each object (through lib/dl), OFS_DELTA
 * and REF_DELTA resolution with bounded chains, the pack's trailing SHA-1,
 * and the SHA-1 of every resolved object computed as git does, so an object
 * found by id is the object with that id.  Also the in-memory object store
 * filled from packs, and the commit and tree parsers the git client walks
 * with.  Every size read from the wire is bounded by struct frc_pack_limits.
 */
#ifndef FRC_PACK_H
#define FRC_PACK_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define FRC_OID_RAW 20
#define FRC_OID_HEX 40

enum frc_obj_type
{
  FRC_OBJ_NONE = 0,
  FRC_OBJ_COMMIT = 1,
  FRC_OBJ_TREE = 2,
  FRC_OBJ_BLOB = 3,
  FRC_OBJ_TAG = 4,
  FRC_OBJ_OFS_DELTA = 6,
  FRC_OBJ_REF_DELTA = 7,
};

struct frc_pack_limits
{
  size_t max_pack; /* bytes of one packfile */
  size_t max_objects; /* objects in one pack, and in a store */
  size_t max_object; /* bytes of one object, inflated (and of one delta) */
  size_t max_total; /* bytes of all objects held by a store */
  unsigned max_delta_depth; /* deltas on the way from an object to its base */
};

/* 64 MiB pack, 200000 objects, 32 MiB object, 256 MiB in all, depth 64. */
void frc_pack_limits_default(struct frc_pack_limits *l);

struct frc_object
{
  unsigned char id[FRC_OID_RAW];
  enum frc_obj_type type; /* commit, tree, blob or tag */
  unsigned char *data; /* owned by the store; len bytes plus a NUL */
  size_t len;
  unsigned depth; /* deltas applied to make it, within its pack (0: stored whole) */
};

/* What the last frc_odb_add_pack() saw (tests check deltas really occur). */
struct frc_pack_stats
{
  size_t objects; /* in the pack */
  size_t added; /* new to the store */
  size_t ofs_deltas;
  size_t ref_deltas;
  unsigned max_depth; /* longest delta chain resolved */
};

struct frc_odb
{
  struct frc_pack_limits limits;
  struct frc_object **slots; /* open addressing on a keyed hash of the id */
  size_t cap; /* 0 or a power of two */
  size_t count;
  unsigned long long seed; /* per store: ids chosen by a server cannot pile up */
  size_t total; /* bytes of object data held */
  struct frc_pack_stats last;
};

/* limits NULL: the defaults. */
void frc_odb_init(struct frc_odb *db, const struct frc_pack_limits *limits);
void frc_odb_release(struct frc_odb *db);

/* Verifies and parses one whole packfile and adds its objects to the store.
 * REF_DELTA bases may be in the pack or already in the store.  On error the
 * store keeps only what it held before.  Errors: a corrupt pack
 * (FRC_ECODE_SERVER), a bound exceeded (FRC_ECODE_TOO_BIG). */
int frc_odb_add_pack(struct frc_odb *db, const void *pack, size_t len, frc_error_t *err);

/* NULL when absent. */
const struct frc_object *frc_odb_lookup(const struct frc_odb *db,
                                        const unsigned char id[FRC_OID_RAW]);

/* The id of type + data as git computes it: SHA-1 of "<type> <len>\0" data. */
int frc_object_id(enum frc_obj_type type, const void *data, size_t len,
                  unsigned char out[FRC_OID_RAW], frc_error_t *err);

const char *frc_obj_type_name(enum frc_obj_type type);

/* 40 hex digits (either case) to 20 bytes; -1 when s is not exactly that. */
int frc_oid_from_hex(const char *s, size_t len, unsigned char out[FRC_OID_RAW]);

/* The tree id of a commit object's data. */
int frc_commit_tree(const struct frc_object *commit, unsigned char tree[FRC_OID_RAW],
                    frc_error_t *err);

#define FRC_MODE_TREE 0040000u
#define FRC_MODE_BLOB 0100644u
#define FRC_MODE_EXEC 0100755u
#define FRC_MODE_LINK 0120000u
#define FRC_MODE_GITLINK 0160000u

struct frc_tree_entry
{
  unsigned mode; /* one of FRC_MODE_* (0100664 reads as FRC_MODE_BLOB) */
  const char *name; /* NUL-terminated, inside the tree object's data */
  size_t name_len;
  const unsigned char *id; /* FRC_OID_RAW bytes inside the tree object's data */
};

/* Parses a tree object into a malloc'd array of *n entries (pointing into
 * the object, which must outlive them).  More than max_entries entries, an
 * unknown mode, or a name that is empty, ".", "..", or holds '/' is an error. */
int frc_tree_parse(const struct frc_object *tree, size_t max_entries,
                   struct frc_tree_entry **entries, size_t *n, frc_error_t *err);

#endif
