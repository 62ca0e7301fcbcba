#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "dl.h"
#include "pack.h"
#include "util.h"

#define PACK_HDR 12
#define PACK_TRAILER 20
#define MIN_OBJECT_BYTES 3 /* a header byte and the smallest zlib stream */

void
frc_pack_limits_default(struct frc_pack_limits *l)
{
  l->max_pack = (size_t) 64 << 20;
  l->max_objects = 200000;
  l->max_object = (size_t) 32 << 20;
  l->max_total = (size_t) 256 << 20;
  l->max_delta_depth = 64;
}

const char *
frc_obj_type_name(enum frc_obj_type type)
{
  switch (type)
    {
    case FRC_OBJ_COMMIT: return "commit";
    case FRC_OBJ_TREE: return "tree";
    case FRC_OBJ_BLOB: return "blob";
    case FRC_OBJ_TAG: return "tag";
    case FRC_OBJ_OFS_DELTA: return "ofs-delta";
    case FRC_OBJ_REF_DELTA: return "ref-delta";
    case FRC_OBJ_NONE: break;
    }
  return "unknown";
}

int
frc_oid_from_hex(const char *s, size_t len, unsigned char out[FRC_OID_RAW])
{
  if (len != FRC_OID_HEX)
    return -1;
  for (size_t i = 0; i < FRC_OID_RAW; i++)
    {
      int hi = frc_hex_digit(s[2 * i]), lo = frc_hex_digit(s[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return -1;
      out[i] = (unsigned char) (hi << 4 | lo);
    }
  return 0;
}

/* ---- object ids ---------------------------------------------------------- */

struct md_ctx
{
  const struct frc_crypto_api *c;
  EVP_MD_CTX *ctx;
};

static void
md_ctx_release(struct md_ctx *m)
{
  if (m->ctx)
    m->c->EVP_MD_CTX_free(m->ctx);
  m->ctx = NULL;
}

int
frc_object_id(enum frc_obj_type type, const void *data, size_t len,
              unsigned char out[FRC_OID_RAW], frc_error_t *err)
{
  __attribute__((cleanup(md_ctx_release))) struct md_ctx m = { NULL, NULL };
  char hdr[64];
  int n = snprintf(hdr, sizeof(hdr), "%s %zu", frc_obj_type_name(type), len);
  unsigned int outlen = 0;

  m.c = frc_dl_crypto(err);
  if (m.c == NULL)
    return -1;
  m.ctx = m.c->EVP_MD_CTX_new();
  if (m.ctx == NULL || !m.c->EVP_DigestInit_ex(m.ctx, m.c->EVP_sha1(), NULL)
      || !m.c->EVP_DigestUpdate(m.ctx, hdr, (size_t) n + 1)
      || !m.c->EVP_DigestUpdate(m.ctx, data, len) || !m.c->EVP_DigestFinal_ex(m.ctx, out, &outlen)
      || outlen != FRC_OID_RAW)
    return frc_error(err, "libcrypto failed to compute a SHA-1");
  return 0;
}

/* ---- the store ----------------------------------------------------------- */

static void
object_free(struct frc_object *o)
{
  if (o)
    free(o->data);
  free(o);
}

void
frc_odb_init(struct frc_odb *db, const struct frc_pack_limits *limits)
{
  memset(db, 0, sizeof(*db));
  if (limits)
    db->limits = *limits;
  else
    frc_pack_limits_default(&db->limits);
  if (getrandom(&db->seed, sizeof(db->seed), GRND_NONBLOCK) != (ssize_t) sizeof(db->seed))
    db->seed = (unsigned long long) (uintptr_t) db ^ 0x5bd1e9955bd1e995ull;
}

void
frc_odb_release(struct frc_odb *db)
{
  for (size_t i = 0; i < db->cap; i++)
    object_free(db->slots[i]);
  free(db->slots);
  db->slots = NULL;
  db->cap = db->count = db->total = 0;
}

static size_t
slot_of(const struct frc_odb *db, const unsigned char id[FRC_OID_RAW])
{
  uint64_t k;
  memcpy(&k, id, sizeof(k));
  k ^= db->seed;
  k *= 0x9e3779b97f4a7c15ull;
  k ^= k >> 29;
  return (size_t) k & (db->cap - 1);
}

const struct frc_object *
frc_odb_lookup(const struct frc_odb *db, const unsigned char id[FRC_OID_RAW])
{
  if (db->cap == 0)
    return NULL;
  for (size_t i = slot_of(db, id);; i = (i + 1) & (db->cap - 1))
    {
      const struct frc_object *o = db->slots[i];
      if (o == NULL)
        return NULL;
      if (memcmp(o->id, id, FRC_OID_RAW) == 0)
        return o;
    }
}

/* Takes o, whose id is not in db yet. */
static void
odb_put(struct frc_odb *db, struct frc_object *o)
{
  if ((db->count + 1) * 2 > db->cap)
    {
      struct frc_object **old = db->slots;
      size_t old_cap = db->cap;
      db->cap = old_cap ? old_cap * 2 : 64;
      db->slots = xmalloc0(db->cap * sizeof(*db->slots));
      for (size_t i = 0; i < old_cap; i++)
        if (old[i])
          {
            size_t j = slot_of(db, old[i]->id);
            while (db->slots[j])
              j = (j + 1) & (db->cap - 1);
            db->slots[j] = old[i];
          }
      free(old);
    }
  {
    size_t j = slot_of(db, o->id);
    while (db->slots[j])
      j = (j + 1) & (db->cap - 1);
    db->slots[j] = o;
  }
  db->count++;
  db->total += o->len;
}

/* ---- pack parsing -------------------------------------------------------- */

struct entry
{
  size_t offset; /* of the object's header in the pack */
  enum frc_obj_type type; /* as stored: may be a delta */
  unsigned char *raw; /* inflated: the object, or the delta */
  size_t raw_len;
  size_t base; /* OFS_DELTA: index of the base entry */
  unsigned char base_id[FRC_OID_RAW]; /* REF_DELTA */
  const struct frc_object *obj; /* once resolved */
  unsigned depth;
};

struct parse
{
  struct frc_odb *db;
  struct frc_odb fresh; /* objects of this pack not already in db */
  const struct frc_pack_limits *l;
  const unsigned char *pack;
  size_t end; /* where the trailer starts */
  struct entry *entries;
  size_t n;
  size_t used; /* bytes inflated or resolved so far, with db->total */
  const struct frc_zlib_api *z;
  z_stream zs;
  bool zs_live;
};

static void
parse_release(struct parse *p)
{
  for (size_t i = 0; i < p->n; i++)
    free(p->entries[i].raw);
  free(p->entries);
  frc_odb_release(&p->fresh);
  if (p->zs_live)
    p->z->inflateEnd(&p->zs);
}

static int
corrupt(frc_error_t *err, const char *what, size_t offset)
{
  frc_error(err, "FloxHub sent a corrupt git pack (%s, object at byte %zu): retry; if it "
                 "persists the repository on FloxHub is damaged", what, offset);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

static int
too_big(frc_error_t *err, const char *what, unsigned long long value, size_t limit)
{
  frc_error(err, "git pack from FloxHub exceeds a limit (%s: %llu > %zu): the environment's "
                 "repository is larger than flox-runc accepts", what, value, limit);
  return frc_error_code(err, FRC_ECODE_TOO_BIG);
}

/* Accounts n more bytes held in memory against max_total. */
static int
charge(struct parse *p, size_t n, frc_error_t *err)
{
  if (n > p->l->max_total || p->used > p->l->max_total - n)
    return too_big(err, "bytes of objects in memory", (unsigned long long) p->used + n,
                   p->l->max_total);
  p->used += n;
  return 0;
}

/* Inflates the zlib stream at *pos into exactly size bytes (plus a NUL) and
 * moves *pos past the compressed bytes it used. */
static int
inflate_at(struct parse *p, size_t *pos, size_t size, size_t offset, unsigned char **out,
           frc_error_t *err)
{
  cleanup_free unsigned char *buf = NULL;
  int rc;

  if (charge(p, size, err) < 0)
    return -1;
  buf = xmalloc0(size + 1);
  if (!p->zs_live)
    {
      memset(&p->zs, 0, sizeof(p->zs));
      if (p->z->inflateInit_(&p->zs, ZLIB_VERSION, (int) sizeof(z_stream)) != Z_OK)
        return frc_error(err, "zlib failed to initialise");
      p->zs_live = true;
    }
  else if (p->z->inflateReset(&p->zs) != Z_OK)
    return frc_error(err, "zlib failed to reset");
  p->zs.next_in = (unsigned char *) p->pack + *pos;
  p->zs.next_out = buf;
  /* One spare byte: a stream longer than declared is caught, not cut. */
  if (size >= UINT32_MAX)
    return too_big(err, "object size", (unsigned long long) size, UINT32_MAX - 1);
  /* One call's worth of input is plenty for any object of that size. */
  p->zs.avail_in = p->end - *pos > UINT32_MAX ? UINT32_MAX : (uInt) (p->end - *pos);
  p->zs.avail_out = (uInt) (size + 1);
  do
    rc = p->z->inflate(&p->zs, Z_NO_FLUSH);
  while (rc == Z_OK);
  if (rc != Z_STREAM_END)
    return corrupt(err,
                   rc == Z_BUF_ERROR ? "zlib data truncated or longer than declared"
                                     : "bad zlib data",
                   offset);
  if ((size_t) p->zs.total_out != size)
    return corrupt(err, "object size differs from its header", offset);
  *pos += (size_t) p->zs.total_in;
  *out = steal_pointer(&buf);
  return 0;
}

static int
read_header(struct parse *p, size_t *pos, struct entry *e, frc_error_t *err)
{
  const unsigned char *d = p->pack;
  unsigned char c;
  uint64_t size;
  unsigned shift = 4;

  if (*pos >= p->end)
    return corrupt(err, "pack ends before its last object", *pos);
  c = d[(*pos)++];
  e->type = (enum frc_obj_type) ((c >> 4) & 7);
  size = c & 15;
  while (c & 0x80)
    {
      if (*pos >= p->end)
        return corrupt(err, "truncated object header", e->offset);
      if (shift > 57)
        return too_big(err, "declared object size", UINT64_MAX, p->l->max_object);
      c = d[(*pos)++];
      size += (uint64_t) (c & 0x7f) << shift;
      shift += 7;
    }
  if (size > p->l->max_object)
    return too_big(err, "declared object size", (unsigned long long) size, p->l->max_object);
  e->raw_len = (size_t) size;
  switch (e->type)
    {
    case FRC_OBJ_COMMIT:
    case FRC_OBJ_TREE:
    case FRC_OBJ_BLOB:
    case FRC_OBJ_TAG:
    case FRC_OBJ_REF_DELTA: return 0;
    case FRC_OBJ_OFS_DELTA: break;
    case FRC_OBJ_NONE:
    default: return corrupt(err, "invalid object type", e->offset);
    }
  {
    uint64_t ofs;
    size_t lo = 0, hi;
    if (*pos >= p->end)
      return corrupt(err, "truncated delta offset", e->offset);
    c = d[(*pos)++];
    ofs = c & 0x7f;
    while (c & 0x80)
      {
        if (*pos >= p->end)
          return corrupt(err, "truncated delta offset", e->offset);
        if (ofs >= (UINT64_MAX >> 7) - 1)
          return corrupt(err, "delta offset out of range", e->offset);
        c = d[(*pos)++];
        ofs = ((ofs + 1) << 7) + (c & 0x7f);
      }
    if (ofs == 0 || ofs > e->offset - PACK_HDR)
      return corrupt(err, "delta base offset out of range", e->offset);
    /* The base must start exactly where an earlier object starts. */
    hi = (size_t) (e - p->entries);
    while (lo < hi)
      {
        size_t mid = lo + (hi - lo) / 2;
        if (p->entries[mid].offset < e->offset - ofs)
          lo = mid + 1;
        else
          hi = mid;
      }
    if (lo == (size_t) (e - p->entries) || p->entries[lo].offset != e->offset - ofs)
      return corrupt(err, "delta base offset is not an object", e->offset);
    e->base = lo;
  }
  return 0;
}

static int
read_objects(struct parse *p, size_t count, frc_error_t *err)
{
  size_t pos = PACK_HDR;

  p->entries = xmalloc0((count ? count : 1) * sizeof(*p->entries));
  for (size_t i = 0; i < count; i++)
    {
      struct entry *e = &p->entries[i];
      e->offset = pos;
      p->n = i + 1;
      if (read_header(p, &pos, e, err) < 0)
        return -1;
      if (e->type == FRC_OBJ_REF_DELTA)
        {
          if (p->end - pos < FRC_OID_RAW)
            return corrupt(err, "truncated delta base id", e->offset);
          memcpy(e->base_id, p->pack + pos, FRC_OID_RAW);
          pos += FRC_OID_RAW;
        }
      if (inflate_at(p, &pos, e->raw_len, e->offset, &e->raw, err) < 0)
        return -1;
    }
  if (pos != p->end)
    return corrupt(err, "bytes after the last object", pos);
  return 0;
}

static int
delta_varint(const unsigned char *d, size_t len, size_t *pos, uint64_t *out)
{
  uint64_t v = 0;
  unsigned shift = 0;
  unsigned char c;
  do
    {
      if (*pos >= len || shift > 57)
        return -1;
      c = d[(*pos)++];
      v |= (uint64_t) (c & 0x7f) << shift;
      shift += 7;
    }
  while (c & 0x80);
  *out = v;
  return 0;
}

/* Applies delta e->raw to base, giving a new object of the base's type. */
static int
apply_delta(struct parse *p, const struct entry *e, const struct frc_object *base,
            struct frc_object **out, frc_error_t *err)
{
  const unsigned char *d = e->raw;
  size_t len = e->raw_len, pos = 0, o = 0;
  uint64_t src, tgt;
  cleanup_free unsigned char *buf = NULL;

  if (delta_varint(d, len, &pos, &src) < 0 || delta_varint(d, len, &pos, &tgt) < 0)
    return corrupt(err, "truncated delta header", e->offset);
  if (src != base->len)
    return corrupt(err, "delta base size mismatch", e->offset);
  if (tgt > p->l->max_object)
    return too_big(err, "delta result size", (unsigned long long) tgt, p->l->max_object);
  if (charge(p, (size_t) tgt, err) < 0)
    return -1;
  buf = xmalloc0((size_t) tgt + 1);
  while (pos < len)
    {
      unsigned char c = d[pos++];
      if (c & 0x80)
        {
          uint64_t off = 0, sz = 0;
          for (unsigned b = 0; b < 7; b++)
            {
              if (!(c & (1u << b)))
                continue;
              if (pos >= len)
                return corrupt(err, "truncated delta copy instruction", e->offset);
              if (b < 4)
                off |= (uint64_t) d[pos++] << (8 * b);
              else
                sz |= (uint64_t) d[pos++] << (8 * (b - 4));
            }
          if (sz == 0)
            sz = 0x10000;
          if (off > base->len || sz > base->len - off)
            return corrupt(err, "delta copies from outside its base", e->offset);
          if (sz > tgt - o)
            return corrupt(err, "delta writes past its declared size", e->offset);
          memcpy(buf + o, base->data + off, (size_t) sz);
          o += (size_t) sz;
        }
      else if (c != 0)
        {
          if (c > len - pos)
            return corrupt(err, "truncated delta insert instruction", e->offset);
          if (c > tgt - o)
            return corrupt(err, "delta writes past its declared size", e->offset);
          memcpy(buf + o, d + pos, c);
          pos += c;
          o += c;
        }
      else
        return corrupt(err, "reserved delta instruction 0", e->offset);
    }
  if (o != tgt)
    return corrupt(err, "delta result shorter than declared", e->offset);
  *out = xmalloc0(sizeof(**out));
  (*out)->type = base->type;
  (*out)->data = steal_pointer(&buf);
  (*out)->len = o;
  return 0;
}

/* Makes e's object known: by id in the fresh store, or the existing one. */
static int
settle(struct parse *p, struct entry *e, struct frc_object *o, frc_error_t *err)
{
  const struct frc_object *old;
  if (frc_object_id(o->type, o->data, o->len, o->id, err) < 0)
    {
      object_free(o);
      return -1;
    }
  old = frc_odb_lookup(&p->fresh, o->id);
  if (old == NULL)
    old = frc_odb_lookup(p->db, o->id);
  if (old)
    {
      object_free(o);
      e->obj = old;
      return 0;
    }
  if (p->fresh.count + p->db->count >= p->l->max_objects)
    {
      object_free(o);
      return too_big(err, "objects held", (unsigned long long) p->fresh.count + p->db->count + 1,
                     p->l->max_objects);
    }
  odb_put(&p->fresh, o);
  e->obj = o;
  return 0;
}

/* 1: resolved, 0: its base is not known yet, -1: error.  level counts the
 * deltas above this one, so recursion is bounded by max_delta_depth. */
static int
resolve(struct parse *p, size_t i, unsigned level, frc_error_t *err)
{
  struct entry *e = &p->entries[i];
  const struct frc_object *base;
  unsigned base_depth = 0;
  struct frc_object *o = NULL;

  if (e->obj)
    return 1;
  if (e->type != FRC_OBJ_OFS_DELTA && e->type != FRC_OBJ_REF_DELTA)
    {
      o = xmalloc0(sizeof(*o));
      o->type = e->type;
      o->data = steal_pointer(&e->raw);
      o->len = e->raw_len;
      return settle(p, e, o, err) < 0 ? -1 : 1;
    }
  if (level >= p->l->max_delta_depth)
    {
      frc_error(err, "git pack from FloxHub has a delta chain longer than %u (object at byte "
                     "%zu): the environment's repository is larger than flox-runc accepts",
                p->l->max_delta_depth, e->offset);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  if (e->type == FRC_OBJ_OFS_DELTA)
    {
      int r = resolve(p, e->base, level + 1, err);
      if (r <= 0)
        return r;
      base = p->entries[e->base].obj;
      base_depth = p->entries[e->base].depth;
    }
  else
    {
      base = frc_odb_lookup(&p->fresh, e->base_id);
      if (base)
        base_depth = base->depth;
      else if ((base = frc_odb_lookup(p->db, e->base_id)) == NULL)
        return 0;
    }
  if (base_depth + 1 > p->l->max_delta_depth)
    {
      frc_error(err, "git pack from FloxHub has a delta chain longer than %u (object at byte "
                     "%zu): the environment's repository is larger than flox-runc accepts",
                p->l->max_delta_depth, e->offset);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  if (apply_delta(p, e, base, &o, err) < 0)
    return -1;
  e->depth = o->depth = base_depth + 1;
  free(e->raw);
  e->raw = NULL;
  p->used -= e->raw_len;
  if (e->depth > p->db->last.max_depth)
    p->db->last.max_depth = e->depth;
  return settle(p, e, o, err) < 0 ? -1 : 1;
}

static int
resolve_all(struct parse *p, frc_error_t *err)
{
  size_t left = p->n;
  while (left > 0)
    {
      size_t before = left;
      left = 0;
      for (size_t i = 0; i < p->n; i++)
        {
          int r = resolve(p, i, 0, err);
          if (r < 0)
            return -1;
          if (r == 0)
            left++;
        }
      if (left == before)
        {
          frc_error(err, "FloxHub sent a git pack with %zu deltas whose base is missing: retry; "
                         "if it persists the repository on FloxHub is damaged", left);
          return frc_error_code(err, FRC_ECODE_SERVER);
        }
    }
  return 0;
}

int
frc_odb_add_pack(struct frc_odb *db, const void *pack, size_t len, frc_error_t *err)
{
  __attribute__((cleanup(parse_release))) struct parse p;
  const unsigned char *d = pack;
  unsigned char sum[FRC_OID_RAW];
  uint32_t version, count;

  memset(&p, 0, sizeof(p));
  frc_odb_init(&p.fresh, &db->limits);
  p.db = db;
  p.l = &db->limits;
  p.pack = d;
  p.used = db->total;
  memset(&db->last, 0, sizeof(db->last));

  if (len > p.l->max_pack)
    return too_big(err, "pack bytes", (unsigned long long) len, p.l->max_pack);
  if (len < PACK_HDR + PACK_TRAILER || memcmp(d, "PACK", 4) != 0)
    return corrupt(err, "not a packfile", 0);
  version = (uint32_t) d[4] << 24 | (uint32_t) d[5] << 16 | (uint32_t) d[6] << 8 | d[7];
  count = (uint32_t) d[8] << 24 | (uint32_t) d[9] << 16 | (uint32_t) d[10] << 8 | d[11];
  if (version != 2 && version != 3)
    return corrupt(err, "unsupported pack version", 0);
  if (count > p.l->max_objects)
    return too_big(err, "objects in pack", count, p.l->max_objects);
  p.end = len - PACK_TRAILER;
  if (count > (p.end - PACK_HDR) / MIN_OBJECT_BYTES)
    return corrupt(err, "object count larger than the pack", 0);
  if (frc_sha1(d, p.end, sum, err) < 0)
    return -1;
  if (memcmp(sum, d + p.end, FRC_OID_RAW) != 0)
    return corrupt(err, "trailing SHA-1 does not match", p.end);
  p.z = frc_dl_zlib(err);
  if (p.z == NULL)
    return -1;

  if (read_objects(&p, count, err) < 0 || resolve_all(&p, err) < 0)
    return -1;

  db->last.objects = p.n;
  for (size_t i = 0; i < p.n; i++)
    {
      if (p.entries[i].type == FRC_OBJ_OFS_DELTA)
        db->last.ofs_deltas++;
      else if (p.entries[i].type == FRC_OBJ_REF_DELTA)
        db->last.ref_deltas++;
    }
  /* Move the fresh objects into the store. */
  for (size_t i = 0; i < p.fresh.cap; i++)
    if (p.fresh.slots[i])
      {
        odb_put(db, p.fresh.slots[i]);
        p.fresh.slots[i] = NULL;
        db->last.added++;
      }
  return 0;
}

/* ---- commits and trees --------------------------------------------------- */

int
frc_commit_tree(const struct frc_object *commit, unsigned char tree[FRC_OID_RAW], frc_error_t *err)
{
  const char *d = (const char *) commit->data;
  if (commit->type != FRC_OBJ_COMMIT || commit->len < 5 + FRC_OID_HEX + 1
      || memcmp(d, "tree ", 5) != 0 || d[5 + FRC_OID_HEX] != '\n'
      || frc_oid_from_hex(d + 5, FRC_OID_HEX, tree) < 0)
    {
      char hex[FRC_OID_HEX + 1];
      frc_hex(commit->id, FRC_OID_RAW, hex);
      frc_error(err, "git object %s from FloxHub is not a valid commit", hex);
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  return 0;
}

static int
bad_tree(const struct frc_object *tree, const char *what, frc_error_t *err)
{
  char hex[FRC_OID_HEX + 1];
  frc_hex(tree->id, FRC_OID_RAW, hex);
  frc_error(err, "git tree %s from FloxHub is invalid (%s)", hex, what);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

static int
normal_mode(unsigned mode)
{
  switch (mode)
    {
    case FRC_MODE_TREE:
    case FRC_MODE_BLOB:
    case FRC_MODE_EXEC:
    case FRC_MODE_LINK:
    case FRC_MODE_GITLINK: return (int) mode;
    case 0100664: return FRC_MODE_BLOB;
    default: return -1;
    }
}

int
frc_tree_parse(const struct frc_object *tree, size_t max_entries,
               struct frc_tree_entry **entries, size_t *n, frc_error_t *err)
{
  const char *d = (const char *) tree->data;
  size_t len = tree->len, pos = 0, cap = 0, count = 0;
  cleanup_free struct frc_tree_entry *v = NULL;

  if (tree->type != FRC_OBJ_TREE)
    return bad_tree(tree, "not a tree object", err);
  while (pos < len)
    {
      unsigned mode = 0;
      size_t digits = 0;
      const char *name, *nul;
      int m;
      struct frc_tree_entry *t;

      while (pos < len && d[pos] >= '0' && d[pos] <= '7' && digits < 7)
        {
          mode = mode * 8 + (unsigned) (d[pos++] - '0');
          digits++;
        }
      if (digits == 0 || pos >= len || d[pos] != ' ')
        return bad_tree(tree, "bad entry mode", err);
      if ((m = normal_mode(mode)) < 0)
        return bad_tree(tree, "unknown entry mode", err);
      name = d + ++pos;
      nul = memchr(name, '\0', len - pos);
      if (nul == NULL || (size_t) (d + len - nul) < 1 + FRC_OID_RAW)
        return bad_tree(tree, "truncated entry", err);
      if (nul == name || memchr(name, '/', (size_t) (nul - name)) || strcmp(name, ".") == 0
          || strcmp(name, "..") == 0)
        return bad_tree(tree, "bad entry name", err);
      if (count == max_entries)
        return bad_tree(tree, "too many entries", err);
      if (count == cap)
        {
          cap = cap ? cap * 2 : 16;
          v = xrealloc(v, cap * sizeof(*v));
        }
      t = &v[count++];
      t->mode = (unsigned) m;
      t->name = name;
      t->name_len = (size_t) (nul - name);
      t->id = (const unsigned char *) nul + 1;
      pos = (size_t) (nul + 1 + FRC_OID_RAW - d);
    }
  *entries = steal_pointer(&v);
  *n = count;
  return 0;
}
