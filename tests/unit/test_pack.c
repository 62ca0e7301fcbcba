/* Packfiles, deltas, the object store, commits and trees (lib/pack.c).
 *
 * Real packs come from the real git at test time (git pack-objects over a
 * repository of many similar generations, so deltas really occur; with and
 * without --delta-base-offset).  Corrupt packs are either real packs with a
 * byte changed (and the trailer recomputed, so the parser itself meets the
 * damage) or small packs built here with stored zlib blocks. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl.h"
#include "pack.h"
#include "pktline.h"
#include "util.h"

static char tmpdir[] = "/tmp/frc-test-pack-XXXXXX";

static void
run_sh(const char *script)
{
  cleanup_free char *cmd = xasprintf(
      "set -e; cd '%s'; export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME='%s' "
      "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t "
      "GIT_COMMITTER_EMAIL=t@example.com GIT_AUTHOR_DATE='1700000000 +0000' "
      "GIT_COMMITTER_DATE='1700000000 +0000'; %s",
      tmpdir, tmpdir, script);
  int rc = system(cmd);
  ck_assert_msg(rc == 0, "shell step failed (%d): %s", rc, script);
}

/* A repository of 40 generations of a FloxHub-like tree: every version of
 * manifest.lock changes one more line of the last, so blobs delta in chains. */
static void
setup(void)
{
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  run_sh("git init -q repo && cd repo && mkdir -p 1/env && seq 1 600 > ../lock && "
         "for i in $(seq 1 40); do "
         "  sed -i \"$((i * 13))s/.*/changed line $i $(echo $i | sha256sum | cut -c1-40)/\" ../lock; "
         "  cp ../lock 1/env/manifest.lock; "
         "  printf '{\"version\":2,\"gen\":%d}\\n' $i > metadata.json; "
         "  git add -A && git commit -q -m \"generation $i\"; "
         "done && "
         "git rev-list --objects --all | git pack-objects -q --stdout --delta-base-offset > ../ofs.pack && "
         "git rev-list --objects --all | git pack-objects -q --stdout > ../ref.pack && "
         "git cat-file --batch-all-objects --batch > ../objects.txt && "
         "git rev-parse HEAD > ../head && git rev-parse HEAD^{tree} > ../tree && "
         "git index-pack ../ofs.pack >/dev/null && "
         "git verify-pack -v ../ofs.pack | awk '$2==\"blob\" && NF==5 {print $5, $4; exit}' > ../blob-at");
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("rm -rf '%s'", tmpdir);
  (void) !system(cmd);
}

static char *
slurp(const char *name, size_t *len)
{
  cleanup_free char *path = xasprintf("%s/%s", tmpdir, name);
  cleanup_error frc_error_t err = NULL;
  char *data = NULL;
  ck_assert_msg(read_file_bounded(path, 64 << 20, &data, len, &err) == 0, "%s", err ? err->msg : "");
  return data;
}

static void
oid(const char *hex, unsigned char out[FRC_OID_RAW])
{
  ck_assert_int_eq(frc_oid_from_hex(hex, strlen(hex), out), 0);
}

/* Every object git has is in the store, with git's type and bytes. */
static size_t
compare_with_git(const struct frc_odb *db)
{
  size_t len = 0, pos = 0, n = 0;
  cleanup_free char *batch = slurp("objects.txt", &len);
  while (pos < len)
    {
      char hex[41], type[16];
      size_t size;
      int used = 0;
      unsigned char id[FRC_OID_RAW];
      const struct frc_object *o;
      ck_assert_int_eq(sscanf(batch + pos, "%40s %15s %zu\n%n", hex, type, &size, &used), 3);
      pos += (size_t) used;
      oid(hex, id);
      o = frc_odb_lookup(db, id);
      ck_assert_msg(o != NULL, "object %s missing", hex);
      ck_assert_str_eq(frc_obj_type_name(o->type), type);
      ck_assert_uint_eq(o->len, size);
      ck_assert(memcmp(o->data, batch + pos, size) == 0);
      ck_assert_int_eq(o->data[o->len], 0);
      pos += size + 1;
      n++;
    }
  return n;
}

START_TEST(test_real_pack_ofs_delta)
{
  size_t len = 0;
  cleanup_free char *pack = slurp("ofs.pack", &len);
  struct frc_odb db;
  frc_error_t err = NULL;

  frc_odb_init(&db, NULL);
  ck_assert_msg(frc_odb_add_pack(&db, pack, len, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(db.last.objects, 40 * 6);
  ck_assert_uint_eq(db.last.added, db.last.objects);
  ck_assert_uint_gt(db.last.ofs_deltas, 30);
  ck_assert_uint_eq(db.last.ref_deltas, 0);
  ck_assert_uint_gt(db.last.max_depth, 2);
  ck_assert_uint_eq(compare_with_git(&db), db.count);
  /* Adding the same pack again adds nothing. */
  ck_assert_int_eq(frc_odb_add_pack(&db, pack, len, &err), 0);
  ck_assert_uint_eq(db.last.added, 0);
  ck_assert_uint_eq(db.count, 240);
  frc_odb_release(&db);
}
END_TEST

START_TEST(test_real_pack_ref_delta)
{
  size_t len = 0;
  cleanup_free char *pack = slurp("ref.pack", &len);
  struct frc_odb db;
  frc_error_t err = NULL;

  frc_odb_init(&db, NULL);
  ck_assert_msg(frc_odb_add_pack(&db, pack, len, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_gt(db.last.ref_deltas, 30);
  ck_assert_uint_eq(db.last.ofs_deltas, 0);
  ck_assert_uint_eq(compare_with_git(&db), 240);
  frc_odb_release(&db);
}
END_TEST

START_TEST(test_commit_and_tree)
{
  size_t hl = 0, tl = 0, len = 0;
  cleanup_free char *head = slurp("head", &hl);
  cleanup_free char *tree_hex = slurp("tree", &tl);
  cleanup_free char *pack = slurp("ofs.pack", &len);
  cleanup_free struct frc_tree_entry *ents = NULL;
  unsigned char id[FRC_OID_RAW], tree[FRC_OID_RAW], want[FRC_OID_RAW];
  const struct frc_object *c, *t;
  struct frc_odb db;
  size_t n = 0;
  frc_error_t err = NULL;

  frc_odb_init(&db, NULL);
  ck_assert_int_eq(frc_odb_add_pack(&db, pack, len, &err), 0);
  ck_assert_int_eq(frc_oid_from_hex(head, 40, id), 0);
  ck_assert_int_eq(frc_oid_from_hex(tree_hex, 40, want), 0);
  c = frc_odb_lookup(&db, id);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(c->type, FRC_OBJ_COMMIT);
  ck_assert_int_eq(frc_commit_tree(c, tree, &err), 0);
  ck_assert(memcmp(tree, want, FRC_OID_RAW) == 0);
  t = frc_odb_lookup(&db, tree);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(frc_tree_parse(t, 100, &ents, &n, &err), 0);
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(ents[0].name, "1");
  ck_assert_uint_eq(ents[0].mode, FRC_MODE_TREE);
  ck_assert_str_eq(ents[1].name, "metadata.json");
  ck_assert_uint_eq(ents[1].name_len, 13);
  ck_assert_uint_eq(ents[1].mode, FRC_MODE_BLOB);
  ck_assert_ptr_nonnull(frc_odb_lookup(&db, ents[1].id));
  /* Too many entries for the bound. */
  ck_assert_int_eq(frc_tree_parse(t, 1, &ents, &n, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "too many entries"));
  frc_error_release(&err);
  /* A tree is not a commit. */
  ck_assert_int_eq(frc_commit_tree(t, tree, &err), -1);
  ck_assert_int_eq(err->code, FRC_ECODE_SERVER);
  frc_error_release(&err);
  frc_odb_release(&db);
}
END_TEST

START_TEST(test_object_id)
{
  unsigned char id[FRC_OID_RAW];
  char hex[41];
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_object_id(FRC_OBJ_BLOB, "hello\n", 6, id, &err), 0);
  frc_hex(id, FRC_OID_RAW, hex);
  ck_assert_str_eq(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
  ck_assert_int_eq(frc_object_id(FRC_OBJ_TREE, "", 0, id, &err), 0);
  frc_hex(id, FRC_OID_RAW, hex);
  ck_assert_str_eq(hex, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
  ck_assert_int_eq(frc_oid_from_hex("4B825DC642CB6EB9A060E54BF8D69288FBEE4904", 40, id), 0);
  ck_assert_int_eq(frc_oid_from_hex("4b825dc642cb6eb9a060e54bf8d69288fbee490", 39, id), -1);
  ck_assert_int_eq(frc_oid_from_hex("4b825dc642cb6eb9a060e54bf8d69288fbee490g", 40, id), -1);
}
END_TEST

/* ---- corrupted real packs ------------------------------------------------ */

static void
fix_trailer(unsigned char *pack, size_t len)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_sha1(pack, len - 20, pack + len - 20, &err), 0);
}

static void
expect_fail(const void *pack, size_t len, const struct frc_pack_limits *l, int code,
            const char *fragment)
{
  struct frc_odb db;
  cleanup_error frc_error_t err = NULL;
  frc_odb_init(&db, l);
  ck_assert_int_eq(frc_odb_add_pack(&db, pack, len, &err), -1);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(db.count, 0);
  ck_assert_int_eq(db.total, 0);
  if (code >= 0)
    ck_assert_msg(err->code == code, "code %d, message: %s", err->code, err->msg);
  if (fragment)
    ck_assert_msg(strstr(err->msg, fragment) != NULL, "message: %s", err->msg);
  frc_odb_release(&db);
}

START_TEST(test_bad_trailer)
{
  size_t len = 0;
  cleanup_free unsigned char *pack = (unsigned char *) slurp("ofs.pack", &len);
  pack[len - 1] ^= 1;
  expect_fail(pack, len, NULL, FRC_ECODE_SERVER, "trailing SHA-1 does not match");
}
END_TEST

START_TEST(test_flipped_zlib)
{
  size_t len = 0, bl = 0, off = 0, size = 0;
  cleanup_free unsigned char *pack = (unsigned char *) slurp("ofs.pack", &len);
  cleanup_free char *at = slurp("blob-at", &bl);
  ck_assert_int_eq(sscanf(at, "%zu %zu", &off, &size), 2);
  ck_assert_uint_lt(off + size, len - 20);
  /* The adler32 of the blob's zlib stream, then a byte of its deflate data. */
  pack[off + size - 1] ^= 0x40;
  fix_trailer(pack, len);
  expect_fail(pack, len, NULL, FRC_ECODE_SERVER, "bad zlib data");
  pack[off + size - 1] ^= 0x40;
  pack[off + size - 6] ^= 0x40;
  fix_trailer(pack, len);
  expect_fail(pack, len, NULL, FRC_ECODE_SERVER, "corrupt git pack");
}
END_TEST

START_TEST(test_truncated)
{
  size_t len = 0;
  cleanup_free unsigned char *pack = (unsigned char *) slurp("ofs.pack", &len);
  cleanup_free unsigned char *cut = xmalloc0(len);
  /* Cut without and with a recomputed trailer: the parser meets the end. */
  for (size_t n = 0; n < len; n += (n < 64 ? 1 : 97))
    {
      memcpy(cut, pack, n);
      expect_fail(cut, n, NULL, FRC_ECODE_SERVER, NULL);
      if (n >= 32)
        {
          fix_trailer(cut, n);
          expect_fail(cut, n, NULL, FRC_ECODE_SERVER, NULL);
        }
    }
}
END_TEST

/* Every byte of a small real pack changed in turn (trailer recomputed):
 * each must fail cleanly, never crash or read out of bounds (valgrind). */
START_TEST(test_every_byte_flipped)
{
  size_t len = 0;
  cleanup_free unsigned char *pack = NULL;
  run_sh("cd repo && git rev-parse HEAD~1 HEAD HEAD:metadata.json HEAD~1:metadata.json "
         "| git pack-objects -q --stdout --delta-base-offset > ../small.pack");
  pack = (unsigned char *) slurp("small.pack", &len);
  ck_assert_uint_lt(len, 2000);
  for (size_t i = 0; i < len - 20; i++)
    {
      pack[i] ^= 0xff;
      fix_trailer(pack, len);
      expect_fail(pack, len, NULL, -1, NULL);
      pack[i] ^= 0xff;
    }
}
END_TEST

START_TEST(test_too_deep)
{
  size_t len = 0;
  cleanup_free char *pack = slurp("ofs.pack", &len);
  cleanup_free char *rpack = NULL;
  struct frc_pack_limits l;
  struct frc_odb db;
  unsigned depth;
  frc_error_t err = NULL;

  frc_odb_init(&db, NULL);
  ck_assert_int_eq(frc_odb_add_pack(&db, pack, len, &err), 0);
  depth = db.last.max_depth;
  frc_odb_release(&db);

  frc_pack_limits_default(&l);
  l.max_delta_depth = depth;
  frc_odb_init(&db, &l);
  ck_assert_int_eq(frc_odb_add_pack(&db, pack, len, &err), 0);
  frc_odb_release(&db);
  l.max_delta_depth = depth - 1;
  expect_fail(pack, len, &l, FRC_ECODE_TOO_BIG, "delta chain longer than");
  rpack = slurp("ref.pack", &len);
  l.max_delta_depth = 1;
  expect_fail(rpack, len, &l, FRC_ECODE_TOO_BIG, "delta chain longer than 1");
}
END_TEST

START_TEST(test_limits)
{
  size_t len = 0;
  cleanup_free char *pack = slurp("ofs.pack", &len);
  struct frc_pack_limits l;

  frc_pack_limits_default(&l);
  l.max_pack = len - 1;
  expect_fail(pack, len, &l, FRC_ECODE_TOO_BIG, "pack bytes");
  frc_pack_limits_default(&l);
  l.max_objects = 199;
  expect_fail(pack, len, &l, FRC_ECODE_TOO_BIG, "objects in pack");
  frc_pack_limits_default(&l);
  l.max_object = 1000;
  expect_fail(pack, len, &l, FRC_ECODE_TOO_BIG, NULL);
  frc_pack_limits_default(&l);
  l.max_total = 50000;
  expect_fail(pack, len, &l, FRC_ECODE_TOO_BIG, "bytes of objects in memory");
}
END_TEST

/* ---- hand-made packs ------------------------------------------------------ */

static uint32_t
my_adler32(const unsigned char *d, size_t n)
{
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < n; i++)
    {
      a = (a + d[i]) % 65521;
      b = (b + a) % 65521;
    }
  return b << 16 | a;
}

/* A zlib stream of stored blocks. */
static void
zstored(struct frc_buf *b, const void *data, size_t len)
{
  const unsigned char *d = data;
  unsigned char hdr[5];
  uint32_t ad = my_adler32(d, len);
  size_t pos = 0;
  frc_buf_add(b, "\x78\x01", 2);
  do
    {
      size_t n = len - pos > 65535 ? 65535 : len - pos;
      hdr[0] = pos + n == len ? 1 : 0;
      hdr[1] = (unsigned char) (n & 0xff);
      hdr[2] = (unsigned char) (n >> 8);
      hdr[3] = (unsigned char) (~n & 0xff);
      hdr[4] = (unsigned char) ((~n >> 8) & 0xff);
      frc_buf_add(b, hdr, 5);
      frc_buf_add(b, d + pos, n);
      pos += n;
    }
  while (pos < len);
  hdr[0] = (unsigned char) (ad >> 24);
  hdr[1] = (unsigned char) (ad >> 16);
  hdr[2] = (unsigned char) (ad >> 8);
  hdr[3] = (unsigned char) ad;
  frc_buf_add(b, hdr, 4);
}

struct mkpack
{
  struct frc_buf b;
  uint32_t count;
};

static void
mk_start(struct mkpack *m)
{
  memset(m, 0, sizeof(*m));
  frc_buf_add(&m->b, "PACK\0\0\0\2\0\0\0\0", 12);
}

/* Appends an object; returns its offset.  size is what the header declares. */
static size_t
mk_obj(struct mkpack *m, int type, uint64_t size, size_t ofs_base, const unsigned char *ref_base,
       const void *data, size_t len)
{
  size_t at = m->b.len;
  unsigned char c = (unsigned char) (type << 4 | (size & 15));
  size >>= 4;
  while (size)
    {
      frc_buf_add(&m->b, (unsigned char[]){ c | 0x80 }, 1);
      c = size & 0x7f;
      size >>= 7;
    }
  frc_buf_add(&m->b, &c, 1);
  if (type == FRC_OBJ_OFS_DELTA)
    {
      size_t ofs = at - ofs_base;
      unsigned char tmp[16];
      int pos = 15;
      tmp[pos] = ofs & 127;
      while (ofs >>= 7)
        tmp[--pos] = (unsigned char) (128 | (--ofs & 127));
      frc_buf_add(&m->b, tmp + pos, (size_t) (16 - pos));
    }
  if (type == FRC_OBJ_REF_DELTA)
    frc_buf_add(&m->b, ref_base, FRC_OID_RAW);
  zstored(&m->b, data, len);
  m->count++;
  return at;
}

static void
mk_finish(struct mkpack *m)
{
  unsigned char sum[20];
  frc_error_t err = NULL;
  m->b.data[8] = (char) (m->count >> 24);
  m->b.data[9] = (char) (m->count >> 16);
  m->b.data[10] = (char) (m->count >> 8);
  m->b.data[11] = (char) m->count;
  ck_assert_int_eq(frc_sha1(m->b.data, m->b.len, sum, &err), 0);
  frc_buf_add(&m->b, sum, 20);
}

#define BLOB(m, s) mk_obj(m, FRC_OBJ_BLOB, sizeof(s) - 1, 0, NULL, s, sizeof(s) - 1)
#define OFS(m, base, d) mk_obj(m, FRC_OBJ_OFS_DELTA, sizeof(d) - 1, base, NULL, d, sizeof(d) - 1)

START_TEST(test_crafted_valid)
{
  struct mkpack m;
  struct frc_odb db;
  unsigned char id[FRC_OID_RAW];
  const struct frc_object *o;
  cleanup_free unsigned char *big = xmalloc0(0x10000);
  size_t base, big_at;
  frc_error_t err = NULL;

  for (size_t i = 0; i < 0x10000; i++)
    big[i] = (unsigned char) (i * 7);
  mk_start(&m);
  base = BLOB(&m, "hello world\n");
  /* "hello" (copy 0+5) " there" (insert 6) "\n" (copy 11+1) */
  OFS(&m, base, "\x0c\x0c\x90\x05\x06 there\x91\x0b\x01");
  big_at = mk_obj(&m, FRC_OBJ_BLOB, 0x10000, 0, NULL, big, 0x10000);
  /* A copy with no size bytes copies 0x10000 bytes; then insert "!". */
  mk_obj(&m, FRC_OBJ_OFS_DELTA, 9, big_at, NULL, "\x80\x80\x04\x81\x80\x04\x80\x01!", 9);
  mk_finish(&m);

  frc_odb_init(&db, NULL);
  ck_assert_msg(frc_odb_add_pack(&db, m.b.data, m.b.len, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(db.count, 4);
  ck_assert_uint_eq(db.last.ofs_deltas, 2);
  ck_assert_int_eq(frc_object_id(FRC_OBJ_BLOB, "hello there\n", 12, id, &err), 0);
  o = frc_odb_lookup(&db, id);
  ck_assert_ptr_nonnull(o);
  ck_assert_str_eq((const char *) o->data, "hello there\n");
  ck_assert_uint_eq(o->depth, 1);
  big = xrealloc(big, 0x10001);
  big[0x10000] = '!';
  ck_assert_int_eq(frc_object_id(FRC_OBJ_BLOB, big, 0x10001, id, &err), 0);
  o = frc_odb_lookup(&db, id);
  ck_assert_ptr_nonnull(o);
  ck_assert_uint_eq(o->len, 0x10001);
  frc_buf_release(&m.b);

  /* A REF_DELTA in a second pack on a base held by the store (a thin pack). */
  ck_assert_int_eq(frc_object_id(FRC_OBJ_BLOB, "hello world\n", 12, id, &err), 0);
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_REF_DELTA, 6, 0, id, "\x0c\x06\x90\x05\x01!", 6);
  mk_finish(&m);
  ck_assert_msg(frc_odb_add_pack(&db, m.b.data, m.b.len, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(db.last.added, 1);
  ck_assert_int_eq(frc_object_id(FRC_OBJ_BLOB, "hello!", 6, id, &err), 0);
  ck_assert_ptr_nonnull(frc_odb_lookup(&db, id));
  frc_buf_release(&m.b);
  frc_odb_release(&db);
}
END_TEST

/* One blob "hello world\n" and a delta on it. */
static void
delta_case(const char *delta, size_t delta_len, int code, const char *fragment)
{
  struct mkpack m;
  size_t base;
  mk_start(&m);
  base = BLOB(&m, "hello world\n");
  mk_obj(&m, FRC_OBJ_OFS_DELTA, delta_len, base, NULL, delta, delta_len);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, code, fragment);
  frc_buf_release(&m.b);
}

#define DELTA(d, code, frag) delta_case(d, sizeof(d) - 1, code, frag)

START_TEST(test_crafted_bad_deltas)
{
  DELTA("\x0d\x05\x90\x05", FRC_ECODE_SERVER, "delta base size mismatch");
  DELTA("\x0c\x05\x91\x0a\x05", FRC_ECODE_SERVER, "copies from outside its base");
  DELTA("\x0c\x05\x91\x0c\x01", FRC_ECODE_SERVER, "copies from outside its base");
  DELTA("\x0c\x05\xb1\xff\xff\x01", FRC_ECODE_SERVER, "copies from outside its base");
  DELTA("\x0c\x05\x9f\xff\xff\xff\xff\x01", FRC_ECODE_SERVER, "copies from outside its base");
  DELTA("\x0c\x05\x90\x04", FRC_ECODE_SERVER, "shorter than declared");
  DELTA("\x0c\x05\x90\x06", FRC_ECODE_SERVER, "past its declared size");
  DELTA("\x0c\x02\x03" "abc", FRC_ECODE_SERVER, "past its declared size");
  DELTA("\x0c\x05\x06" "abc", FRC_ECODE_SERVER, "truncated delta insert");
  DELTA("\x0c\x05\x91\x00", FRC_ECODE_SERVER, "truncated delta copy");
  DELTA("\x0c\x05\x00\x90\x05", FRC_ECODE_SERVER, "reserved delta instruction");
  DELTA("\x0c", FRC_ECODE_SERVER, "truncated delta header");
  DELTA("\x0c\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", FRC_ECODE_SERVER, "truncated delta header");
  /* A huge target size is refused before any allocation. */
  DELTA("\x0c\x80\x80\x80\x80\x80\x01\x90\x05", FRC_ECODE_TOO_BIG, "delta result size");
}
END_TEST

START_TEST(test_crafted_bad_packs)
{
  struct mkpack m;
  unsigned char a[FRC_OID_RAW], b[FRC_OID_RAW];
  size_t base;

  /* Two REF_DELTAs whose bases are each other (never resolvable). */
  memset(a, 0xaa, sizeof(a));
  memset(b, 0xbb, sizeof(b));
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_REF_DELTA, 4, 0, b, "\x01\x01\x01x", 4);
  mk_obj(&m, FRC_OBJ_REF_DELTA, 4, 0, a, "\x01\x01\x01y", 4);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "2 deltas whose base is missing");
  frc_buf_release(&m.b);

  /* A chain of 5 OFS deltas with a bound of 3. */
  {
    struct frc_pack_limits l;
    size_t prev;
    mk_start(&m);
    prev = BLOB(&m, "a");
    for (int i = 0; i < 5; i++)
      prev = mk_obj(&m, FRC_OBJ_OFS_DELTA, 4, prev, NULL, "\x01\x01\x90\x01", 4);
    mk_finish(&m);
    frc_pack_limits_default(&l);
    l.max_delta_depth = 3;
    expect_fail(m.b.data, m.b.len, &l, FRC_ECODE_TOO_BIG, "delta chain longer than 3");
    frc_buf_release(&m.b);
  }

  /* OFS base offset that is not the start of an object, or before the pack. */
  mk_start(&m);
  base = BLOB(&m, "hello world\n");
  mk_obj(&m, FRC_OBJ_OFS_DELTA, 4, base + 1, NULL, "\x0c\x05\x90\x05", 4);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "delta base offset is not an object");
  frc_buf_release(&m.b);
  mk_start(&m);
  base = BLOB(&m, "hello world\n");
  mk_obj(&m, FRC_OBJ_OFS_DELTA, 4, 2, NULL, "\x0c\x05\x90\x05", 4);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "delta base offset out of range");
  frc_buf_release(&m.b);

  /* Declared sizes: huge, and different from the data. */
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_BLOB, (uint64_t) 1 << 40, 0, NULL, "x", 1);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_TOO_BIG, "declared object size");
  frc_buf_release(&m.b);
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_BLOB, UINT64_MAX, 0, NULL, "x", 1);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_TOO_BIG, "declared object size");
  frc_buf_release(&m.b);
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_BLOB, 3, 0, NULL, "hello", 5);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "longer than declared");
  frc_buf_release(&m.b);
  mk_start(&m);
  mk_obj(&m, FRC_OBJ_BLOB, 9, 0, NULL, "hello", 5);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "object size differs");
  frc_buf_release(&m.b);

  /* Invalid type 5; bytes after the last object; count too large. */
  mk_start(&m);
  mk_obj(&m, 5, 1, 0, NULL, "x", 1);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "invalid object type");
  frc_buf_release(&m.b);
  mk_start(&m);
  BLOB(&m, "x");
  frc_buf_add(&m.b, "junk", 4);
  mk_finish(&m);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "bytes after the last object");
  frc_buf_release(&m.b);
  mk_start(&m);
  BLOB(&m, "x");
  mk_finish(&m);
  m.b.data[11] = 2;
  fix_trailer((unsigned char *) m.b.data, m.b.len);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "pack ends before its last object");
  m.b.data[8] = (char) 0xff;
  fix_trailer((unsigned char *) m.b.data, m.b.len);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_TOO_BIG, "objects in pack");
  m.b.data[8] = 0;
  m.b.data[10] = 1;
  fix_trailer((unsigned char *) m.b.data, m.b.len);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "object count larger than the pack");
  m.b.data[7] = 4;
  fix_trailer((unsigned char *) m.b.data, m.b.len);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "unsupported pack version");
  m.b.data[0] = 'X';
  fix_trailer((unsigned char *) m.b.data, m.b.len);
  expect_fail(m.b.data, m.b.len, NULL, FRC_ECODE_SERVER, "not a packfile");
  frc_buf_release(&m.b);
}
END_TEST

/* Trees: made here byte by byte. */
static int
parse_tree(const char *data, size_t len, size_t *n, frc_error_t *err)
{
  struct frc_object t;
  cleanup_free struct frc_tree_entry *e = NULL;
  cleanup_free unsigned char *copy = xmalloc0(len + 1);
  memcpy(copy, data, len);
  memset(&t, 0, sizeof(t));
  t.type = FRC_OBJ_TREE;
  t.data = copy;
  t.len = len;
  return frc_tree_parse(&t, 10, &e, n, err);
}

#define ID20 "aaaaaaaaaaaaaaaaaaaa"

START_TEST(test_tree_names)
{
  static const struct
  {
    const char *data;
    size_t len;
    const char *fragment;
  } bad[] = {
    { "100644 a/b\0" ID20, 11 + 20, "bad entry name" },
    { "40000 .\0" ID20, 8 + 20, "bad entry name" },
    { "40000 ..\0" ID20, 9 + 20, "bad entry name" },
    { "100644 \0" ID20, 8 + 20, "bad entry name" },
    { "100645 a\0" ID20, 9 + 20, "unknown entry mode" },
    { "1006448 a\0" ID20, 10 + 20, "bad entry mode" },
    { " a\0" ID20, 3 + 20, "bad entry mode" },
    { "100644a\0" ID20, 8 + 20, "bad entry mode" },
    { "100644 a\0" "aaaa", 9 + 4, "truncated entry" },
    { "100644 abc", 10, "truncated entry" },
  };
  size_t n = 0;
  frc_error_t err = NULL;

  ck_assert_int_eq(parse_tree("100644 a\0" ID20 "40000 b\0" ID20 "120000 c\0" ID20
                              "160000 d\0" ID20 "100755 e\0" ID20 "100664 f\0" ID20,
                              6 * 20 + 9 + 8 + 9 + 9 + 9 + 9, &n, &err),
                   0);
  ck_assert_uint_eq(n, 6);
  ck_assert_int_eq(parse_tree("", 0, &n, &err), 0);
  ck_assert_uint_eq(n, 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      ck_assert_int_eq(parse_tree(bad[i].data, bad[i].len, &n, &err), -1);
      ck_assert_msg(strstr(err->msg, bad[i].fragment) != NULL, "case %zu: %s", i, err->msg);
      ck_assert_int_eq(err->code, FRC_ECODE_SERVER);
      frc_error_release(&err);
    }
}
END_TEST

START_TEST(test_commit_bad)
{
  static const char *bad[] = {
    "", "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904", "tree 4b825dc642cb6eb9a060e54bf8d69288fbee490\n",
    "tree 4b825dc642cb6eb9a060e54bf8d69288fbee490x\n", "parent 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      struct frc_object c;
      unsigned char tree[FRC_OID_RAW];
      cleanup_error frc_error_t err = NULL;
      memset(&c, 0, sizeof(c));
      c.type = FRC_OBJ_COMMIT;
      c.data = (unsigned char *) bad[i];
      c.len = strlen(bad[i]);
      ck_assert_int_eq(frc_commit_tree(&c, tree, &err), -1);
      ck_assert_ptr_nonnull(strstr(err->msg, "is not a valid commit"));
    }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("pack");
  TCase *tc = tcase_create("pack");
  SRunner *sr;
  int failed;

  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_real_pack_ofs_delta);
  tcase_add_test(tc, test_real_pack_ref_delta);
  tcase_add_test(tc, test_commit_and_tree);
  tcase_add_test(tc, test_object_id);
  tcase_add_test(tc, test_bad_trailer);
  tcase_add_test(tc, test_flipped_zlib);
  tcase_add_test(tc, test_truncated);
  tcase_add_test(tc, test_every_byte_flipped);
  tcase_add_test(tc, test_too_deep);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_crafted_valid);
  tcase_add_test(tc, test_crafted_bad_deltas);
  tcase_add_test(tc, test_crafted_bad_packs);
  tcase_add_test(tc, test_tree_names);
  tcase_add_test(tc, test_commit_bad);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
