/* The git smart-HTTP client (lib/git.c) over a FAKE TRANSPORT.
 *
 * The fake transport is this harness's one mock: it stands where libcurl
 * stands (struct frc_git_remote's transport hook, the seam the unit tests use
 * for `git http-backend`) and answers each request with the next response
 * of the input, whatever was asked; past the last one it fails as an
 * unreachable server would.  Everything above it is the real client:
 * discovery (v2 and v0), ls-refs, fetches by want-ref (wanted-refs),
 * fetch bodies, side-band, packs, trees and path walks.
 *
 * Input: responses separated by "\n--8<--\n".  A response is a status byte
 * ('2' 200, '1' 401, '3' 403, '4' 404, '5' 500, else 200), a Content-Type byte
 * ('a' advertisement, 'r' result, 'n' none, else text/plain), a body kind
 * byte, then the body.  Body kind 'P' (v2), 'Q' (v0 after a deepen: flush,
 * NAK) or 'q' (v0: NAK): the body is a packfile without its trailer, which
 * the harness completes and wraps in side-band packets; any other kind: the
 * body as is.  tests/fuzz/make-git-seeds.py
 * records real conversations with `git http-backend` in this form.
 *
 * Properties: errors are one printable line that never holds the password;
 * what the client returns is what the store holds under the tree's ids. */
#include "dl.h"
#include "fuzz.h"
#include "git.h"
#include "pktline.h"

#define SEP "\n--8<--\n"
#define URL "http://hub.fuzz.invalid/git/acme/floxmeta"
#define PASSWORD "Zfuzz-secret-password" /* no escape sequence ends in Z */

struct response
{
  const uint8_t *d;
  size_t len;
};

struct fake
{
  struct response r[64];
  size_t n, next;
};

static void
wrap_pack(struct frc_buf *b, const uint8_t *pack, size_t len, char v0)
{
  cleanup_free unsigned char *full = xmalloc0(len + FRC_OID_RAW);
  frc_error_t err = NULL;
  size_t off = 0;
  memcpy(full, pack, len);
  FUZZ_ASSERT(frc_sha1(pack, len, full + len, &err) == 0);
  len += FRC_OID_RAW;
  if (v0 == 'Q')
    frc_pkt_flush(b); /* the (empty) shallow section of a deepen */
  if (v0)
    frc_pkt_writef(b, "NAK\n");
  else
    frc_pkt_writef(b, "packfile\n");
  while (off < len)
    {
      size_t n = len - off > FRC_PKT_DATA_MAX - 1 ? FRC_PKT_DATA_MAX - 1 : len - off;
      char hdr[5];
      snprintf(hdr, sizeof(hdr), "%04zx", n + 5);
      frc_buf_add(b, hdr, 4);
      frc_buf_add(b, "\1", 1);
      frc_buf_add(b, full + off, n);
      off += n;
    }
  frc_pkt_flush(b);
}

static int
fake_transport(void *data, const struct frc_http_opts *o, const char *method, const char *url,
               const char *const *headers, const void *body, size_t body_len,
               struct frc_http_response *resp, frc_error_t *err)
{
  struct fake *f = data;
  const struct response *r;
  const char *ct;

  memset(resp, 0, sizeof(*resp));
  FUZZ_ASSERT(str_has_prefix(url, URL "/"));
  FUZZ_ASSERT(strcmp(method, body ? "POST" : "GET") == 0);
  FUZZ_ASSERT(o->password && strcmp(o->password, PASSWORD) == 0 && o->max_body > 0);
  if (body)
    {
      /* The client's own request: well-formed pkt-lines ending in a flush. */
      struct frc_pkt_reader rd;
      struct frc_pkt p, last = { FRC_PKT_EOF, NULL, 0 };
      frc_error_t perr = NULL;
      frc_pkt_reader_init(&rd, body, body_len);
      while (frc_pkt_read(&rd, &p, &perr) == 0 && p.kind != FRC_PKT_EOF)
        last = p;
      FUZZ_ASSERT(perr == NULL);
      /* v2 requests end in a flush, v0 fetches in "done" */
      FUZZ_ASSERT(last.kind == FRC_PKT_FLUSH || frc_pkt_is(&last, "done\n"));
    }
  if (f->next >= f->n)
    {
      frc_error(err, "fake transport: no more responses");
      return frc_error_code(err, FRC_ECODE_UNREACHABLE);
    }
  r = &f->r[f->next++];
  switch (r->len > 0 ? r->d[0] : '2')
    {
    case '1': resp->status = 401; break;
    case '3': resp->status = 403; break;
    case '4': resp->status = 404; break;
    case '5': resp->status = 500; break;
    default: resp->status = 200; break;
    }
  switch (r->len > 1 ? r->d[1] : 'n')
    {
    case 'a': ct = "application/x-git-upload-pack-advertisement"; break;
    case 'r': ct = "application/x-git-upload-pack-result"; break;
    case 'n': ct = NULL; break;
    default: ct = "text/plain"; break;
    }
  resp->content_type = ct ? xstrdup(ct) : NULL;
  if (r->len > 2 && r->d[2] && strchr("PQq", r->d[2]))
    {
      struct frc_buf b = { NULL, 0, 0 };
      wrap_pack(&b, r->d + 3, r->len - 3, r->d[2] == 'P' ? 0 : (char) r->d[2]);
      frc_buf_add(&b, "", 1);
      resp->body = b.data;
      resp->len = b.len - 1;
    }
  else
    {
      size_t n = r->len > 3 ? r->len - 3 : 0;
      resp->body = xmalloc0(n + 1);
      if (n)
        memcpy(resp->body, r->d + 3, n);
      resp->len = n;
    }
  if (resp->len > o->max_body)
    {
      frc_http_response_release(resp);
      frc_error(err, "fake transport: body larger than %zu bytes", o->max_body);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  return 0;
}

/* The password may appear in a message only when the server sent it. */
static const uint8_t *input;
static size_t input_len;

static void
check_error(frc_error_t *err)
{
  if (getenv("FRC_FUZZ_VERBOSE")) /* what each call ended with, to check seeds */
    fprintf(stderr, "fuzz_git: %s\n", *err ? (*err)->msg : "ok");
  if (*err && strstr((*err)->msg, PASSWORD))
    FUZZ_ASSERT(memmem(input, input_len, PASSWORD, strlen(PASSWORD)) != NULL);
  fuzz_check_error(err);
}

/* A commit of one of the packs the input carries, for when ls-refs fails. */
static bool
commit_of_packs(const struct fake *f, char hex[FRC_OID_HEX + 1])
{
  for (size_t i = 0; i < f->n; i++)
    {
      const struct response *r = &f->r[i];
      struct frc_odb db;
      frc_error_t err = NULL;
      cleanup_free unsigned char *pack = NULL;
      bool found = false;
      if (r->len < 3 || r->d[2] == 0 || !strchr("PQq", r->d[2]))
        continue;
      pack = xmalloc0(r->len - 3 + FRC_OID_RAW);
      memcpy(pack, r->d + 3, r->len - 3);
      FUZZ_ASSERT(frc_sha1(pack, r->len - 3, pack + r->len - 3, &err) == 0);
      frc_odb_init(&db, NULL);
      if (frc_odb_add_pack(&db, pack, r->len - 3 + FRC_OID_RAW, &err) == 0)
        for (size_t j = 0; j < db.cap && !found; j++)
          if (db.slots[j] && db.slots[j]->type == FRC_OBJ_COMMIT)
            {
              frc_hex(db.slots[j]->id, FRC_OID_RAW, hex);
              found = true;
            }
      frc_error_release(&err);
      frc_odb_release(&db);
      if (found)
        return true;
    }
  return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct fake f = { .n = 0 };
  struct frc_http_opts http = { .user = "fuzz", .password = PASSWORD };
  struct frc_git_remote r;
  frc_error_t err = NULL;
  char commit[FRC_OID_HEX + 1] = "0123456789abcdef0123456789abcdef01234567";
  const uint8_t *p = data, *end = data + size;

  input = data;
  input_len = size;

  while (f.n < sizeof(f.r) / sizeof(f.r[0]))
    {
      const uint8_t *sep = memmem(p, (size_t) (end - p), SEP, strlen(SEP));
      f.r[f.n].d = p;
      f.r[f.n].len = (size_t) ((sep ? sep : end) - p);
      f.n++;
      if (sep == NULL)
        break;
      p = sep + strlen(SEP);
    }

  FUZZ_ASSERT(frc_git_remote_init(&r, URL, &http, &err) == 0);
  r.transport = fake_transport;
  r.transport_data = &f;
  r.limits.max_pack = 1u << 20;
  r.limits.max_object = 1u << 20;
  r.limits.max_total = 8u << 20;
  r.limits.max_objects = 5000;

  /* ls-refs, or a fetch by want-ref when the advertisement offers
   * ref-in-want (then ls-refs again when that answer is refused) */
  if (frc_git_fetch_branch(&r, "hello", commit, &err) == 0)
    FUZZ_ASSERT(strlen(commit) == FRC_OID_HEX && strspn(commit, "0123456789abcdef") == FRC_OID_HEX);
  else
    {
      check_error(&err);
      (void) commit_of_packs(&f, commit);
    }

  {
    const char *const paths[] = { "metadata.json", "1/env/manifest.lock", NULL };
    char *contents[2] = { NULL, NULL };
    size_t lens[2] = { 0, 0 };
    if (frc_git_read_files(&r, commit, paths, contents, lens, &err) == 0)
      for (size_t i = 0; i < 2; i++)
        {
          unsigned char id[FRC_OID_RAW];
          FUZZ_ASSERT(contents[i] && contents[i][lens[i]] == '\0');
          FUZZ_ASSERT(frc_object_id(FRC_OBJ_BLOB, contents[i], lens[i], id, &err) == 0);
          FUZZ_ASSERT(frc_odb_lookup(&r.odb, id) != NULL);
          free(contents[i]);
        }
    check_error(&err);
  }
  {
    struct frc_git_dirent *ents = NULL;
    size_t n = 0;
    if (frc_git_list_dir(&r, commit, "", &ents, &n, &err) == 0)
      for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(ents[i].name[0] != '\0' && strchr(ents[i].name, '/') == NULL);
    check_error(&err);
    frc_git_dirents_free(ents, n);
  }
  {
    unsigned mode = 0;
    (void) frc_git_stat(&r, commit, "2/env/manifest.lock", &mode, &err);
    check_error(&err);
  }
  FUZZ_ASSERT(r.requests <= f.n + 1 + 9);
  frc_git_remote_release(&r);
  return 0;
}
