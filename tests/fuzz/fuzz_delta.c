/* Git deltas (lib/pack.c), against a reference.
 *
 * Input: a flag byte (bit 0: REF_DELTA by the base's id, else OFS_DELTA),
 * two bytes of base length (little endian, cut to what is there), the base,
 * then the delta.  The harness wraps them in a valid two-object pack (zlib
 * stored blocks, the SHA-1 trailer), so every mutation reaches the delta
 * interpreter.  Property: the pack is accepted exactly when the reference
 * below (git's patch_delta rules) applies the delta within the limits, and
 * then the store holds the reference's result under its id. */
#include "dl.h"
#include "fuzz.h"
#include "pack.h"

#define MAX_OBJECT (1u << 20)

struct bytes
{
  unsigned char *d;
  size_t len, cap;
};

static void
put(struct bytes *b, const void *d, size_t n)
{
  if (b->cap - b->len < n)
    {
      b->cap = (b->len + n) * 2 + 64;
      b->d = xrealloc(b->d, b->cap);
    }
  memcpy(b->d + b->len, d, n);
  b->len += n;
}

static void
put_byte(struct bytes *b, unsigned char c)
{
  put(b, &c, 1);
}

/* A zlib stream of stored (uncompressed) blocks. */
static void
put_zlib_stored(struct bytes *b, const unsigned char *d, size_t n)
{
  unsigned long a = 1, s2 = 0;
  size_t off = 0;
  put_byte(b, 0x78);
  put_byte(b, 0x01);
  do
    {
      size_t chunk = n - off > 65535 ? 65535 : n - off;
      unsigned char hdr[5] = { off + chunk == n ? 1 : 0, (unsigned char) (chunk & 0xff),
                               (unsigned char) (chunk >> 8), (unsigned char) (~chunk & 0xff),
                               (unsigned char) ((~chunk >> 8) & 0xff) };
      put(b, hdr, sizeof(hdr));
      put(b, d + off, chunk);
      off += chunk;
    }
  while (off < n);
  for (size_t i = 0; i < n; i++)
    {
      a = (a + d[i]) % 65521;
      s2 = (s2 + a) % 65521;
    }
  put_byte(b, (unsigned char) (s2 >> 8));
  put_byte(b, (unsigned char) s2);
  put_byte(b, (unsigned char) (a >> 8));
  put_byte(b, (unsigned char) a);
}

static void
put_obj_header(struct bytes *b, unsigned type, size_t size)
{
  unsigned char c = (unsigned char) (type << 4 | (size & 15));
  size >>= 4;
  while (size)
    {
      put_byte(b, c | 0x80);
      c = size & 0x7f;
      size >>= 7;
    }
  put_byte(b, c);
}

static void
put_ofs(struct bytes *b, size_t ofs)
{
  unsigned char tmp[16];
  size_t i = sizeof(tmp) - 1;
  tmp[i] = ofs & 0x7f;
  while (ofs >>= 7)
    tmp[--i] = (unsigned char) (0x80 | (--ofs & 0x7f));
  put(b, tmp + i, sizeof(tmp) - i);
}

static bool
ref_varint(const unsigned char *d, size_t len, size_t *pos, uint64_t *out)
{
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 63; shift += 7) /* 9 bytes hold any size */
    {
      unsigned char c;
      if (*pos >= len)
        return false;
      c = d[(*pos)++];
      v |= (uint64_t) (c & 0x7f) << shift;
      if (!(c & 0x80))
        {
          *out = v;
          return true;
        }
    }
  return false;
}

/* git's patch_delta, with the size limit; NULL when the delta is invalid. */
static unsigned char *
ref_apply(const unsigned char *base, size_t blen, const unsigned char *d, size_t len,
          size_t *out_len)
{
  size_t pos = 0, o = 0;
  uint64_t src, tgt;
  unsigned char *out;
  if (!ref_varint(d, len, &pos, &src) || !ref_varint(d, len, &pos, &tgt) || src != blen
      || tgt > MAX_OBJECT)
    return NULL;
  out = xmalloc0((size_t) tgt + 1);
  while (pos < len)
    {
      unsigned char c = d[pos++];
      size_t off = 0, sz = 0;
      if (c == 0)
        goto bad;
      if (!(c & 0x80))
        {
          if (c > len - pos || c > tgt - o)
            goto bad;
          memcpy(out + o, d + pos, c);
          pos += c;
          o += c;
          continue;
        }
      for (unsigned i = 0; i < 4; i++)
        if (c & (1u << i))
          {
            if (pos >= len)
              goto bad;
            off |= (size_t) d[pos++] << (8 * i);
          }
      for (unsigned i = 0; i < 3; i++)
        if (c & (0x10u << i))
          {
            if (pos >= len)
              goto bad;
            sz |= (size_t) d[pos++] << (8 * i);
          }
      if (sz == 0)
        sz = 0x10000;
      if (off + sz > blen || sz > tgt - o)
        goto bad;
      memcpy(out + o, base + off, sz);
      o += sz;
    }
  if (o != tgt)
    goto bad;
  *out_len = o;
  return out;
bad:
  free(out);
  return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct frc_pack_limits limits = {
    .max_pack = 4u << 20,
    .max_objects = 10,
    .max_object = MAX_OBJECT,
    .max_total = 4 * MAX_OBJECT,
    .max_delta_depth = 4,
  };
  struct bytes pack = { NULL, 0, 0 };
  struct frc_odb db;
  frc_error_t err = NULL;
  const unsigned char *base, *delta;
  size_t blen, dlen, off2, want_len = 0;
  cleanup_free unsigned char *want = NULL;
  unsigned char base_id[FRC_OID_RAW], sum[FRC_OID_RAW];
  bool ref;
  int rc;

  if (size < 3)
    return 0;
  ref = data[0] & 1;
  blen = (size_t) data[1] | (size_t) data[2] << 8;
  if (blen > size - 3)
    blen = size - 3;
  base = data + 3;
  delta = base + blen;
  dlen = size - 3 - blen;

  put(&pack, "PACK\0\0\0\2\0\0\0\2", 12);
  put_obj_header(&pack, FRC_OBJ_BLOB, blen);
  put_zlib_stored(&pack, base, blen);
  off2 = pack.len;
  put_obj_header(&pack, ref ? FRC_OBJ_REF_DELTA : FRC_OBJ_OFS_DELTA, dlen);
  FUZZ_ASSERT(frc_object_id(FRC_OBJ_BLOB, base, blen, base_id, &err) == 0);
  if (ref)
    put(&pack, base_id, sizeof(base_id));
  else
    put_ofs(&pack, off2 - 12);
  put_zlib_stored(&pack, delta, dlen);
  FUZZ_ASSERT(frc_sha1(pack.d, pack.len, sum, &err) == 0);
  put(&pack, sum, sizeof(sum));

  want = ref_apply(base, blen, delta, dlen, &want_len);
  frc_odb_init(&db, &limits);
  rc = frc_odb_add_pack(&db, pack.d, pack.len, &err);
  if (want == NULL)
    FUZZ_ASSERT(rc < 0);
  else
    {
      unsigned char id[FRC_OID_RAW];
      const struct frc_object *o;
      if (rc < 0)
        fprintf(stderr, "refused a delta the reference applies: %s\n", err->msg);
      FUZZ_ASSERT(rc == 0);
      FUZZ_ASSERT(frc_object_id(FRC_OBJ_BLOB, want, want_len, id, &err) == 0);
      o = frc_odb_lookup(&db, id);
      FUZZ_ASSERT(o != NULL && o->type == FRC_OBJ_BLOB && o->len == want_len);
      FUZZ_ASSERT(memcmp(o->data, want, want_len) == 0 && o->depth <= 1);
      FUZZ_ASSERT(db.last.ofs_deltas + db.last.ref_deltas == 1);
    }
  fuzz_check_error(&err);
  frc_odb_release(&db);
  free(pack.d);
  return 0;
}
