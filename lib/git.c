#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dl.h"
#include "git.h"
#include "pktline.h"
#include "util.h"

#include "frc-build-config.h"

#define AGENT "flox-runc/" FLOX_RUNC_VERSION
#define ADVERTISEMENT_MAX ((size_t) 8 << 20) /* info/refs and ls-refs answers */
#define REFS_MAX 100000
#define TREE_ENTRIES_MAX 100000
#define PATH_MAX_LEN 4096
#define CT_ADVERTISEMENT "application/x-git-upload-pack-advertisement"
#define CT_REQUEST "application/x-git-upload-pack-request"
#define CT_RESULT "application/x-git-upload-pack-result"

/* ---- the remote ---------------------------------------------------------- */

int
frc_git_remote_init(struct frc_git_remote *r, const char *url, const struct frc_http_opts *http,
                    frc_error_t *err)
{
  size_t n = strlen(url);

  memset(r, 0, sizeof(*r));
  frc_pack_limits_default(&r->limits);
  frc_odb_init(&r->odb, &r->limits);
  if (!str_has_prefix(url, "http://") && !str_has_prefix(url, "https://"))
    {
      cleanup_free char *safe = frc_url_redact(url);
      cleanup_free char *esc = escape_for_message(safe, strlen(safe), 200);
      return frc_error(err, "invalid FloxHub git URL \"%s\": expected http:// or https://; fix "
                            "floxhub_git_url",
                       esc);
    }
  while (n > 0 && url[n - 1] == '/')
    n--;
  r->url = xstrndup(url, n);
  if (http)
    {
      r->http = *http;
      r->http.ca_file = http->ca_file ? xstrdup(http->ca_file) : NULL;
      r->http.user = http->user ? xstrdup(http->user) : NULL;
      r->http.password = http->password ? xstrdup(http->password) : NULL;
      r->http.proxy = http->proxy ? xstrdup(http->proxy) : NULL;
      r->http.no_proxy = http->no_proxy ? xstrdup(http->no_proxy) : NULL;
    }
  return 0;
}

void
frc_git_remote_release(struct frc_git_remote *r)
{
  if (r->http.password)
    {
      char *p = (char *) r->http.password;
      explicit_bzero(p, strlen(p));
    }
  free((char *) r->http.ca_file);
  free((char *) r->http.user);
  free((char *) r->http.password);
  free((char *) r->http.proxy);
  free((char *) r->http.no_proxy);
  free(r->url);
  frc_git_remote_rediscover(r);
  free(r->advertisement);
  frc_odb_release(&r->odb);
  frc_http_conn_release(&r->conn);
  memset(r, 0, sizeof(*r));
}

unsigned
frc_git_remote_requests(const struct frc_git_remote *r)
{
  return r->requests;
}

/* ---- HTTP ---------------------------------------------------------------- */

static bool
content_type_is(const char *ct, const char *want)
{
  size_t n = strlen(want);
  if (ct == NULL || strncasecmp(ct, want, n) != 0)
    return false;
  ct += n;
  while (*ct == ' ')
    ct++;
  return *ct == '\0' || *ct == ';';
}

static int
status_error(const struct frc_git_remote *r, const struct frc_http_response *resp, frc_error_t *err)
{
  cleanup_free char *safe = frc_url_redact(r->url);
  cleanup_free char *body = escape_for_message(resp->body ? resp->body : "", resp->len, 160);
  long s = resp->status;

  if (s == 407)
    {
      const char *proxy = frc_http_proxy_in_use(&r->http, r->url);
      cleanup_free char *psafe = proxy ? frc_url_redact(proxy) : NULL;
      frc_error(err, "the proxy%s%s refused to reach %s (HTTP 407: it needs credentials): put them "
                     "in the proxy URL (http://user:password@host:port)",
                psafe ? " " : "", psafe ? psafe : "", safe);
      return frc_error_code(err, FRC_ECODE_UNREACHABLE);
    }
  if (s == 401 || s == 403)
    {
      frc_error(err, "FloxHub refused access to %s (HTTP %ld): %s", safe, s,
                r->http.password ? "the token was not accepted for this owner"
                                 : "the repository needs a token");
      return frc_error_code(err, FRC_ECODE_AUTH);
    }
  if (s == 404)
    {
      frc_error(err, "%s does not exist on FloxHub (HTTP 404)", safe);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  if (s >= 500 && s <= 599)
    frc_error(err, "FloxHub git service failed (HTTP %ld from %s: \"%s\"): retry later", s, safe,
              body);
  else
    frc_error(err, "unexpected HTTP %ld from %s (\"%s\"): check floxhub_git_url", s, safe, body);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

/* After a failed request or a refused answer (its status, its type, its
 * content) the server and this client may disagree on where answers end:
 * the connection is not used again.  libcurl (7.88) reuses a kept
 * connection with bytes waiting on it and reads them as the next answer;
 * a retry then reads whatever the confused server sent after the refused
 * one.  Returns -1. */
static int
drop_connection(struct frc_git_remote *r)
{
  frc_http_conn_release(&r->conn);
  return -1;
}

/* One request to <url><suffix>; a non-200 status or another Content-Type than
 * want_ct is an error. */
static int
request(struct frc_git_remote *r, const char *method, const char *suffix, const void *body,
        size_t body_len, size_t max_body, const char *want_ct, struct frc_http_response *resp,
        frc_error_t *err)
{
  cleanup_free char *url = xasprintf("%s%s", r->url, suffix);
  const char *get_headers[] = { "Git-Protocol: version=2", NULL };
  const char *post_headers[] = { "Content-Type: " CT_REQUEST, "Accept: " CT_RESULT,
                                 r->version == 2 ? "Git-Protocol: version=2" : NULL, NULL };
  const char *const *headers = body ? post_headers : get_headers;
  struct frc_http_opts o = r->http;
  int rc;

  o.max_body = max_body;
  r->requests++;
  r->status = 0;
  if (r->transport)
    rc = r->transport(r->transport_data, &o, method, url, headers, body, body_len, resp, err);
  else
    rc = frc_http_request_on(&r->conn, &o, method, url, headers, body, body_len, resp, err);
  if (rc < 0)
    return drop_connection(r);
  r->status = resp->status;
  r->bytes_received += resp->len;
  if (resp->status != 200)
    {
      status_error(r, resp, err);
      return drop_connection(r);
    }
  if (!content_type_is(resp->content_type, want_ct))
    {
      cleanup_free char *safe = frc_url_redact(r->url);
      const char *got = resp->content_type ? resp->content_type : "none";
      cleanup_free char *ct = escape_for_message(got, strlen(got), 80);
      frc_error(err, "%s is not a git smart HTTP service (Content-Type %s, expected %s): check "
                     "floxhub_git_url",
                safe, ct, want_ct);
      frc_error_code(err, FRC_ECODE_SERVER);
      return drop_connection(r);
    }
  return 0;
}

static int
protocol_error(const struct frc_git_remote *r, const char *what, frc_error_t *err)
{
  cleanup_free char *safe = frc_url_redact(r->url);
  frc_error(err, "FloxHub git service at %s broke the protocol (%s): retry later, or check "
                 "floxhub_git_url",
            safe, what);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

/* ---- discovery ----------------------------------------------------------- */

/* v2: the capability line named key ("fetch" matches "fetch" and "fetch=..."):
 * its value ("" when none), or NULL.  v0: the word, or "key=value". */
static const char *
cap_value(const struct frc_git_remote *r, const char *key)
{
  size_t n = strlen(key);
  for (char **c = r->caps; c && *c; c++)
    if (strncmp(*c, key, n) == 0 && ((*c)[n] == '\0' || (*c)[n] == '='))
      return (*c)[n] == '=' ? *c + n + 1 : *c + n;
  return NULL;
}

static bool
word_in(const char *words, const char *word)
{
  size_t n = strlen(word);
  for (const char *p = words; p && *p;)
    {
      const char *end = strchr(p, ' ');
      size_t len = end ? (size_t) (end - p) : strlen(p);
      if (len == n && strncmp(p, word, n) == 0)
        return true;
      p = end ? end + 1 : p + len;
    }
  return false;
}

static bool
valid_oid_hex(const char *s, size_t len)
{
  unsigned char raw[FRC_OID_RAW];
  return frc_oid_from_hex(s, len, raw) == 0;
}

static int
check_object_format(const struct frc_git_remote *r, frc_error_t *err)
{
  const char *f = cap_value(r, "object-format");
  if (f && strcmp(f, "sha1") != 0)
    {
      cleanup_free char *esc = escape_for_message(f, strlen(f), 32);
      cleanup_free char *safe = frc_url_redact(r->url);
      frc_error(err, "%s uses object format %s; flox-runc reads SHA-1 repositories only", safe,
                esc);
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  return 0;
}

static int
parse_v2_caps(struct frc_git_remote *r, struct frc_pkt_reader *rd, frc_error_t *err)
{
  size_t n = 0;
  const char *fetch;
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(rd, &p, err) < 0)
        return -1;
      if (p.kind == FRC_PKT_FLUSH)
        break;
      if (p.kind == FRC_PKT_EOF)
        return protocol_error(r, "capability advertisement ends without a flush", err);
      if (p.kind != FRC_PKT_DATA || p.len == 0 || memchr(p.data, '\0', p.len))
        return protocol_error(r, "bad capability advertisement", err);
      if (n >= 1000)
        return protocol_error(r, "too many capabilities", err);
      frc_strv_push(&r->caps, &n, xstrndup(p.data, p.len));
    }
  fetch = cap_value(r, "fetch");
  if (fetch == NULL || cap_value(r, "ls-refs") == NULL)
    return protocol_error(r, "protocol v2 without ls-refs and fetch", err);
  r->filter = word_in(fetch, "filter");
  r->shallow = word_in(fetch, "shallow");
  r->ref_in_want = word_in(fetch, "ref-in-want");
  return check_object_format(r, err);
}

/* "<oid> <name>" of a v0 advertisement. */
static int
add_v0_ref(struct frc_git_remote *r, const char *line, size_t len, frc_error_t *err)
{
  struct frc_git_ref *ref;
  if (len < FRC_OID_HEX + 2 || line[FRC_OID_HEX] != ' ' || !valid_oid_hex(line, FRC_OID_HEX)
      || memchr(line, '\0', len))
    return protocol_error(r, "bad ref advertisement", err);
  if (len - FRC_OID_HEX - 1 >= 3 && memcmp(line + len - 3, "^{}", 3) == 0)
    return 0; /* peeled tag */
  if (r->n_refs >= REFS_MAX)
    return protocol_error(r, "too many refs", err);
  r->refs = xrealloc(r->refs, (r->n_refs + 1) * sizeof(*r->refs));
  ref = &r->refs[r->n_refs++];
  ref->name = xstrndup(line + FRC_OID_HEX + 1, len - FRC_OID_HEX - 1);
  memcpy(ref->oid, line, FRC_OID_HEX);
  ref->oid[FRC_OID_HEX] = '\0';
  for (char *c = ref->oid; *c; c++)
    if (*c >= 'A' && *c <= 'F')
      *c = (char) (*c - 'A' + 'a');
  return 0;
}

/* The v0 ref advertisement; first is its first line (already read). */
static int
parse_v0_refs(struct frc_git_remote *r, struct frc_pkt_reader *rd, struct frc_pkt first,
              frc_error_t *err)
{
  const char *nul;
  size_t ncaps = 0;
  struct frc_pkt p = first;
  bool empty;

  if (p.kind == FRC_PKT_FLUSH)
    return protocol_error(r, "empty ref advertisement", err); /* not even capabilities */
  if (p.kind != FRC_PKT_DATA || (nul = memchr(p.data, '\0', p.len)) == NULL)
    return protocol_error(r, "ref advertisement without capabilities", err);
  {
    cleanup_free char *words = xstrndup(nul + 1, p.len - (size_t) (nul - p.data) - 1);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
      {
        if (ncaps >= 1000)
          return protocol_error(r, "too many capabilities", err);
        frc_strv_push(&r->caps, &ncaps, xstrdup(w));
      }
  }
  if (r->caps == NULL)
    r->caps = xmalloc0(sizeof(*r->caps));
  /* An empty repository advertises "<zero id> capabilities^{}". */
  empty = nul - p.data == FRC_OID_HEX + 16
          && memcmp(p.data + FRC_OID_HEX, " capabilities^{}", 16) == 0;
  if (!empty && add_v0_ref(r, p.data, (size_t) (nul - p.data), err) < 0)
    return -1;
  for (;;)
    {
      if (frc_pkt_read_line(rd, &p, err) < 0)
        return -1;
      if (p.kind == FRC_PKT_FLUSH)
        break;
      if (p.kind != FRC_PKT_DATA)
        return protocol_error(r, "ref advertisement ends without a flush", err);
      if (frc_pkt_has_prefix(&p, "shallow ", NULL, NULL))
        continue;
      if (add_v0_ref(r, p.data, p.len, err) < 0)
        return -1;
    }
  r->filter = cap_value(r, "filter") != NULL;
  r->shallow = cap_value(r, "shallow") != NULL;
  return check_object_format(r, err);
}

/* Length of "scheme://host[:port]" of url. */
static size_t
origin_len(const char *url)
{
  const char *h = strstr(url, "://");
  return h ? (size_t) (h + 3 - url) + strcspn(h + 3, "/?#") : 0;
}

/* As git's client (http.followRedirects=initial): when discovery was
 * redirected, the repository is where it ended, and the POSTs go there (a
 * redirected POST would turn into a GET).  Only within the same origin
 * (scheme, host, port): credentials never follow to another host. */
static void
rebase_after_redirect(struct frc_git_remote *r, const char *to)
{
  static const char tail[] = "/info/refs?service=git-upload-pack";
  size_t n, o;
  if (to == NULL)
    return;
  n = strlen(to);
  o = origin_len(r->url);
  if (n <= sizeof(tail) - 1 || strcmp(to + n - (sizeof(tail) - 1), tail) != 0 || o == 0
      || origin_len(to) != o || strncasecmp(to, r->url, o) != 0)
    return;
  free(r->url);
  r->url = xstrndup(to, n - (sizeof(tail) - 1));
}

void
frc_git_remote_rediscover(struct frc_git_remote *r)
{
  frc_strv_freep(&r->caps);
  for (size_t i = 0; i < r->n_refs; i++)
    free(r->refs[i].name);
  free(r->refs);
  r->refs = NULL;
  r->n_refs = 0;
  r->discovered = r->assumed = r->redirected = false;
  r->version = 0;
  r->filter = r->shallow = r->ref_in_want = r->ref_in_want_failed = false;
}

/* The answer of GET info/refs. */
static int
parse_advertisement(struct frc_git_remote *r, const char *body, size_t len, frc_error_t *err)
{
  struct frc_pkt_reader rd;
  struct frc_pkt p;

  frc_git_remote_rediscover(r);
  frc_pkt_reader_init(&rd, body, len);
  if (frc_pkt_read_line(&rd, &p, err) < 0)
    return -1;
  /* "# service=git-upload-pack" and a flush; git's own http-backend leaves
   * it out of v2 answers (git's client accepts both). */
  if (frc_pkt_has_prefix(&p, "# service=", NULL, NULL))
    {
      if (!frc_pkt_is(&p, "# service=git-upload-pack"))
        return protocol_error(r, "wrong service in the advertisement", err);
      if (frc_pkt_read(&rd, &p, err) < 0)
        return -1;
      if (p.kind != FRC_PKT_FLUSH)
        return protocol_error(r, "no flush after the service line", err);
      if (frc_pkt_read_line(&rd, &p, err) < 0)
        return -1;
    }
  else if (!frc_pkt_is(&p, "version 2"))
    return protocol_error(r, "no \"# service=git-upload-pack\" line (a dumb git server?)", err);

  frc_strv_freep(&r->caps);
  if (frc_pkt_is(&p, "version 2"))
    {
      r->version = 2;
      if (parse_v2_caps(r, &rd, err) < 0)
        return -1;
    }
  else
    {
      r->version = 0;
      if (frc_pkt_is(&p, "version 1") && frc_pkt_read_line(&rd, &p, err) < 0)
        return -1;
      if (parse_v0_refs(r, &rd, p, err) < 0)
        return -1;
    }
  r->discovered = true;
  return 0;
}

static int
discover(struct frc_git_remote *r, frc_error_t *err)
{
  cleanup_http_response struct frc_http_response resp = { 0 };

  if (r->discovered)
    return 0;
  if (request(r, "GET", "/info/refs?service=git-upload-pack", NULL, 0, ADVERTISEMENT_MAX,
              CT_ADVERTISEMENT, &resp, err)
      < 0)
    return -1;
  rebase_after_redirect(r, resp.redirected_to);
  if (parse_advertisement(r, resp.body, resp.len, err) < 0)
    return drop_connection(r);
  free(r->advertisement);
  r->advertisement = NULL;
  r->advertisement_len = 0;
  r->redirected = resp.redirected_to != NULL;
  if (r->version == 2 && resp.redirected_to == NULL && resp.len <= FRC_GIT_CAPS_MAX)
    {
      r->advertisement = xmalloc0(resp.len + 1);
      memcpy(r->advertisement, resp.body, resp.len);
      r->advertisement_len = resp.len;
    }
  return 0;
}

bool
frc_git_remote_assume(struct frc_git_remote *r, const char *adv, size_t len)
{
  frc_error_t ignored = NULL;
  if (len > FRC_GIT_CAPS_MAX || parse_advertisement(r, adv, len, &ignored) < 0 || r->version != 2)
    {
      frc_error_release(&ignored);
      frc_git_remote_rediscover(r);
      return false;
    }
  r->assumed = true;
  return true;
}

/* ---- ls-refs ------------------------------------------------------------- */

/* A branch name that can travel in one pkt-line and names one ref. */
static bool
valid_branch(const char *b)
{
  size_t n = strlen(b);
  if (n == 0 || n > 255 || b[0] == '-' || b[0] == '/' || b[n - 1] == '/' || strstr(b, "..")
      || strstr(b, "//"))
    return false;
  for (const char *c = b; *c; c++)
    if ((unsigned char) *c <= ' ' || *c == 0x7f || strchr("~^:?*[\\", *c))
      return false;
  return true;
}

static void
command_header(const struct frc_git_remote *r, struct frc_buf *b, const char *command)
{
  frc_pkt_writef(b, "command=%s\n", command);
  if (cap_value(r, "agent"))
    frc_pkt_writef(b, "agent=%s\n", AGENT);
  if (cap_value(r, "object-format"))
    frc_pkt_writef(b, "object-format=sha1\n");
  frc_pkt_delim(b);
}

/* The ls-refs answer: 1 with oid_hex when it names refname, else 0. */
static int
read_ls_refs(const struct frc_git_remote *r, const struct frc_http_response *resp,
             const char *refname, char oid_hex[FRC_OID_HEX + 1], frc_error_t *err)
{
  struct frc_pkt_reader rd;
  size_t nlen = strlen(refname);
  bool found = false;

  frc_pkt_reader_init(&rd, resp->body, resp->len);
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(&rd, &p, err) < 0)
        return -1;
      if (p.kind == FRC_PKT_FLUSH)
        break;
      if (p.kind != FRC_PKT_DATA)
        return protocol_error(r, "ls-refs answer ends without a flush", err);
      if (p.len < FRC_OID_HEX + 2 || p.data[FRC_OID_HEX] != ' '
          || !valid_oid_hex(p.data, FRC_OID_HEX))
        return protocol_error(r, "bad ls-refs line", err);
      /* "<oid> <name>[ attribute...]": the name ends at a space. */
      if (p.len - FRC_OID_HEX - 1 >= nlen && memcmp(p.data + FRC_OID_HEX + 1, refname, nlen) == 0
          && (p.len == FRC_OID_HEX + 1 + nlen || p.data[FRC_OID_HEX + 1 + nlen] == ' '))
        {
          memcpy(oid_hex, p.data, FRC_OID_HEX);
          found = true;
        }
    }
  return found ? 1 : 0;
}

static int
ls_ref_v2(struct frc_git_remote *r, const char *refname, char oid_hex[FRC_OID_HEX + 1],
          frc_error_t *err)
{
  cleanup_buf struct frc_buf body = { NULL, 0, 0 };
  cleanup_http_response struct frc_http_response resp = { 0 };
  int found;

  command_header(r, &body, "ls-refs");
  frc_pkt_writef(&body, "ref-prefix %s\n", refname);
  frc_pkt_flush(&body);
  if (request(r, "POST", "/git-upload-pack", body.data, body.len, ADVERTISEMENT_MAX, CT_RESULT,
              &resp, err)
      < 0)
    return -1;
  found = read_ls_refs(r, &resp, refname, oid_hex, err);
  return found < 0 ? drop_connection(r) : found;
}

int
frc_git_ls_ref(struct frc_git_remote *r, const char *branch, char oid_hex[FRC_OID_HEX + 1],
               frc_error_t *err)
{
  cleanup_free char *refname = NULL;
  int found = 0;

  if (!valid_branch(branch))
    {
      cleanup_free char *esc = escape_for_message(branch, strlen(branch), 64);
      return frc_error(err, "invalid branch name \"%s\"", esc);
    }
  refname = xasprintf("refs/heads/%s", branch);
  if (discover(r, err) < 0)
    return -1;
  if (r->version == 2)
    {
      found = ls_ref_v2(r, refname, oid_hex, err);
      if (found < 0)
        return -1;
    }
  else
    for (size_t i = 0; i < r->n_refs && !found; i++)
      if (strcmp(r->refs[i].name, refname) == 0)
        {
          memcpy(oid_hex, r->refs[i].oid, FRC_OID_HEX);
          found = 1;
        }
  if (!found)
    {
      cleanup_free char *safe = frc_url_redact(r->url);
      frc_error(err, "branch %s not found in %s", branch, safe);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  oid_hex[FRC_OID_HEX] = '\0';
  for (char *c = oid_hex; *c; c++)
    if (*c >= 'A' && *c <= 'F')
      *c = (char) (*c - 'A' + 'a');
  return 0;
}

/* ---- fetch --------------------------------------------------------------- */

struct fetch_args
{
  const char (*wants)[FRC_OID_HEX + 1];
  size_t n;
  bool deepen; /* deepen 1 */
  bool filter; /* filter blob:none */
  const char *want_ref; /* v2: "want-ref <want_ref>" (a full ref name), NULL: none */
  char *want_ref_oid; /* [FRC_OID_HEX + 1]: the commit the server named for it */
};

static size_t
pack_response_max(const struct frc_git_remote *r)
{
  /* Side-band framing: 5 bytes a 65515-byte packet, plus the text sections. */
  return r->limits.max_pack + r->limits.max_pack / 8192 + ((size_t) 1 << 20);
}

static void
fetch_body_v2(const struct frc_git_remote *r, const struct fetch_args *a, struct frc_buf *b)
{
  command_header(r, b, "fetch");
  frc_pkt_writef(b, "no-progress\n");
  frc_pkt_writef(b, "ofs-delta\n");
  frc_pkt_writef(b, "thin-pack\n"); /* no-progress, ofs-delta, thin-pack: always offered in v2 */
  if (a->deepen)
    frc_pkt_writef(b, "deepen 1\n");
  if (a->filter)
    frc_pkt_writef(b, "filter blob:none\n");
  for (size_t i = 0; i < a->n; i++)
    frc_pkt_writef(b, "want %s\n", a->wants[i]);
  if (a->want_ref)
    frc_pkt_writef(b, "want-ref %s\n", a->want_ref);
  frc_pkt_writef(b, "done\n");
  frc_pkt_flush(b);
}

static void
fetch_body_v0(const struct frc_git_remote *r, const struct fetch_args *a, struct frc_buf *b)
{
  /* What git's own client asks for (dulwich refuses clients without
   * thin-pack); each only when offered.  Without "have" lines a thin pack
   * is a complete one. */
  static const char *const wanted[] = { "side-band-64k", "ofs-delta", "shallow", "no-progress",
                                        "filter", "thin-pack" };
  cleanup_buf struct frc_buf caps = { NULL, 0, 0 };
  bool band64 = cap_value(r, "side-band-64k") != NULL;

  for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
    {
      if (cap_value(r, wanted[i]) == NULL || (i == 2 && !a->deepen) || (i == 4 && !a->filter))
        continue;
      frc_buf_add(&caps, " ", 1);
      frc_buf_add(&caps, wanted[i], strlen(wanted[i]));
    }
  if (!band64 && cap_value(r, "side-band"))
    frc_buf_add(&caps, " side-band", 10);
  if (cap_value(r, "agent"))
    frc_buf_add(&caps, " agent=" AGENT, strlen(" agent=" AGENT));
  for (size_t i = 0; i < a->n; i++)
    frc_pkt_writef(b, "want %s%.*s\n", a->wants[i], i == 0 ? (int) caps.len : 0,
                   caps.data ? caps.data : "");
  if (a->deepen)
    frc_pkt_writef(b, "deepen 1\n");
  if (a->filter)
    frc_pkt_writef(b, "filter blob:none\n");
  frc_pkt_flush(b);
  frc_pkt_writef(b, "done\n");
}

/* Lines of a v2 section up to its delimiter; false at a flush or the end. */
static int
skip_section(const struct frc_git_remote *r, struct frc_pkt_reader *rd, frc_error_t *err)
{
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(rd, &p, err) < 0)
        return -1;
      if (p.kind == FRC_PKT_DELIM)
        return 0;
      if (p.kind != FRC_PKT_DATA)
        return protocol_error(r, "fetch answer without a packfile", err);
    }
}

/* The wanted-refs section: exactly one "<oid> <ref>" line, for the ref
 * asked for. */
static int
read_wanted_refs(const struct frc_git_remote *r, const struct fetch_args *a,
                 struct frc_pkt_reader *rd, frc_error_t *err)
{
  size_t n = strlen(a->want_ref);
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(rd, &p, err) < 0)
        return -1;
      if (p.kind == FRC_PKT_DELIM)
        return a->want_ref_oid[0] ? 0 : protocol_error(r, "empty wanted-refs", err);
      if (p.kind != FRC_PKT_DATA || p.len != FRC_OID_HEX + 1 + n || p.data[FRC_OID_HEX] != ' '
          || !valid_oid_hex(p.data, FRC_OID_HEX) || memcmp(p.data + FRC_OID_HEX + 1, a->want_ref, n)
          || a->want_ref_oid[0])
        return protocol_error(r, "bad wanted-refs line", err);
      memcpy(a->want_ref_oid, p.data, FRC_OID_HEX);
      a->want_ref_oid[FRC_OID_HEX] = '\0';
    }
}

static int
read_pack_v2(const struct frc_git_remote *r, const struct fetch_args *a, struct frc_pkt_reader *rd,
             struct frc_buf *pack, frc_error_t *err)
{
  for (;;)
    {
      struct frc_pkt p;
      if (frc_pkt_read_line(rd, &p, err) < 0)
        return -1;
      if (frc_pkt_is(&p, "packfile"))
        {
          if (a->want_ref && !a->want_ref_oid[0])
            return protocol_error(r, "fetch answer without wanted-refs", err);
          return frc_pkt_demux(rd, pack, r->limits.max_pack, NULL, NULL, err);
        }
      if (a->want_ref && frc_pkt_is(&p, "wanted-refs"))
        {
          if (read_wanted_refs(r, a, rd, err) < 0)
            return -1;
          continue;
        }
      if (frc_pkt_is(&p, "acknowledgments") || frc_pkt_is(&p, "shallow-info")
          || frc_pkt_is(&p, "wanted-refs"))
        {
          if (skip_section(r, rd, err) < 0)
            return -1;
          continue;
        }
      return protocol_error(r, p.kind == FRC_PKT_DATA ? "unexpected section in the fetch answer"
                                                      : "fetch answer without a packfile",
                            err);
    }
}

static int
read_pack_v0(const struct frc_git_remote *r, const struct fetch_args *a,
             struct frc_pkt_reader *rd, struct frc_buf *pack, frc_error_t *err)
{
  struct frc_pkt p;
  if (a->deepen)
    for (;;)
      {
        if (frc_pkt_read_line(rd, &p, err) < 0)
          return -1;
        if (p.kind == FRC_PKT_FLUSH)
          break;
        if (!frc_pkt_has_prefix(&p, "shallow ", NULL, NULL)
            && !frc_pkt_has_prefix(&p, "unshallow ", NULL, NULL))
          return protocol_error(r, "bad shallow line in the fetch answer", err);
      }
  if (frc_pkt_read_line(rd, &p, err) < 0)
    return -1;
  if (!frc_pkt_is(&p, "NAK") && !frc_pkt_has_prefix(&p, "ACK ", NULL, NULL))
    return protocol_error(r, "no NAK in the fetch answer", err);
  if (cap_value(r, "side-band-64k") || cap_value(r, "side-band"))
    return frc_pkt_demux(rd, pack, r->limits.max_pack, NULL, NULL, err);
  if (rd->len - rd->pos > r->limits.max_pack)
    {
      frc_error(err, "FloxHub sent more than %zu bytes of git pack data", r->limits.max_pack);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  frc_buf_add(pack, rd->buf + rd->pos, rd->len - rd->pos);
  rd->pos = rd->len;
  return 0;
}

static int
fetch(struct frc_git_remote *r, const struct fetch_args *a, frc_error_t *err)
{
  cleanup_buf struct frc_buf body = { NULL, 0, 0 };
  cleanup_buf struct frc_buf pack = { NULL, 0, 0 };
  cleanup_http_response struct frc_http_response resp = { 0 };
  struct frc_pkt_reader rd;
  int rc;

  if (r->version == 2)
    fetch_body_v2(r, a, &body);
  else
    fetch_body_v0(r, a, &body);
  if (request(r, "POST", "/git-upload-pack", body.data, body.len, pack_response_max(r), CT_RESULT,
              &resp, err)
      < 0)
    return -1;
  frc_pkt_reader_init(&rd, resp.body, resp.len);
  rc = r->version == 2 ? read_pack_v2(r, a, &rd, &pack, err) : read_pack_v0(r, a, &rd, &pack, err);
  if (rc < 0)
    return drop_connection(r);
  r->pack_bytes += pack.len;
  r->odb.limits = r->limits;
  if (frc_odb_add_pack(&r->odb, pack.data, pack.len, err) < 0)
    return drop_connection(r);
  return 0;
}

/* ---- the commit's tree --------------------------------------------------- */

static int
parse_commit_hex(const char *hex, unsigned char raw[FRC_OID_RAW], char lower[FRC_OID_HEX + 1],
                 frc_error_t *err)
{
  if (frc_oid_from_hex(hex, strlen(hex), raw) < 0)
    {
      cleanup_free char *esc = escape_for_message(hex, strlen(hex), 64);
      return frc_error(err, "invalid git commit id \"%s\"", esc);
    }
  frc_hex(raw, FRC_OID_RAW, lower);
  return 0;
}

static bool
fatal_code(frc_error_t err)
{
  int c = frc_error_get_code(err);
  return c == FRC_ECODE_AUTH || c == FRC_ECODE_UNREACHABLE || c == FRC_ECODE_DEADLINE
         || c == FRC_ECODE_TOO_BIG;
}

/* The commit at depth 1 (shallow where offered) with all its files, in one
 * request as `git fetch --depth 1` makes it; with only its trees when
 * prefer_filter is set (and the server offers filters), or when the whole
 * commit is larger than the pack limit. */
static int
ensure_commit(struct frc_git_remote *r, const unsigned char id[FRC_OID_RAW],
              const char hex[FRC_OID_HEX + 1], bool full, frc_error_t *err)
{
  const char(*wants)[FRC_OID_HEX + 1] = (const char(*)[FRC_OID_HEX + 1]) hex;
  struct fetch_args a = { wants, 1, false, false, NULL, NULL };
  const struct frc_object *c;

  if (!full && (c = frc_odb_lookup(&r->odb, id)) != NULL)
    return c->type == FRC_OBJ_COMMIT ? 0 : frc_error(err, "git object %s is not a commit", hex);
  if (discover(r, err) < 0)
    return -1;
  a.deepen = r->shallow;
  a.filter = r->filter && r->prefer_filter && !full && !r->full_fetch_only;
  if (fetch(r, &a, err) < 0)
    {
      /* The whole commit is too big: its trees alone, then blobs by id. */
      if (frc_error_get_code(*err) != FRC_ECODE_TOO_BIG || a.filter || full || !r->filter
          || r->full_fetch_only)
        return frc_error_wrap(err, "cannot fetch commit %s", hex);
      frc_error_release(err);
      r->prefer_filter = true;
      a.filter = true;
      if (fetch(r, &a, err) < 0)
        return frc_error_wrap(err, "cannot fetch commit %s", hex);
    }
  c = frc_odb_lookup(&r->odb, id);
  if (c == NULL || c->type != FRC_OBJ_COMMIT)
    {
      cleanup_free char *safe = frc_url_redact(r->url);
      frc_error(err, "FloxHub did not send commit %s of %s", hex, safe);
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  return 0;
}

int
frc_git_fetch_branch(struct frc_git_remote *r, const char *branch, char oid_hex[FRC_OID_HEX + 1],
                     frc_error_t *err)
{
  cleanup_free char *refname = NULL;
  char got[FRC_OID_HEX + 1] = "";
  unsigned char id[FRC_OID_RAW];
  struct fetch_args a = { NULL, 0, false, false, NULL, got };
  const struct frc_object *c;

  if (!valid_branch(branch))
    return frc_git_ls_ref(r, branch, oid_hex, err); /* its message */
  if (discover(r, err) < 0)
    return -1;
  if (r->version != 2 || !r->ref_in_want || r->ref_in_want_failed)
    return frc_git_ls_ref(r, branch, oid_hex, err);
  refname = xasprintf("refs/heads/%s", branch);
  a.want_ref = refname;
  a.deepen = r->shallow;
  a.filter = r->filter && r->prefer_filter && !r->full_fetch_only;
  if (fetch(r, &a, err) < 0)
    {
      int code = frc_error_get_code(*err);
      if (code == FRC_ECODE_AUTH || code == FRC_ECODE_UNREACHABLE || code == FRC_ECODE_DEADLINE)
        return -1;
      /* A missing branch (git answers "ERR unknown ref"), a pack over the
       * limit, a server that does not keep its word: the branch is looked
       * up as without ref-in-want, which names what is wrong. */
      frc_error_release(err);
      r->ref_in_want_failed = true;
      return frc_git_ls_ref(r, branch, oid_hex, err);
    }
  for (char *p = got; *p; p++)
    if (*p >= 'A' && *p <= 'F')
      *p = (char) (*p - 'A' + 'a');
  if (frc_oid_from_hex(got, FRC_OID_HEX, id) < 0 || (c = frc_odb_lookup(&r->odb, id)) == NULL
      || c->type != FRC_OBJ_COMMIT)
    {
      cleanup_free char *safe = frc_url_redact(r->url);
      frc_error(err, "FloxHub named commit %s for branch %s of %s but did not send it", got, branch,
                safe);
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  memcpy(oid_hex, got, sizeof(got));
  return 0;
}

static int
bad_path(const char *path, frc_error_t *err)
{
  cleanup_free char *esc = escape_for_message(path, strlen(path), 128);
  return frc_error(err, "invalid path \"%s\" in a FloxHub repository", esc);
}

/* Splits a relative path into its components (a NULL-terminated vector). */
static int
split_path(const char *path, bool allow_empty, char ***parts, size_t *n, frc_error_t *err)
{
  cleanup_free char *copy = xstrdup(path);
  size_t count = 0;

  *parts = xmalloc0(sizeof(**parts));
  *n = 0;
  if (path[0] == '\0' && allow_empty)
    return 0;
  if (path[0] == '\0' || strlen(path) > PATH_MAX_LEN)
    return bad_path(path, err);
  for (char *p = copy, *slash; p; p = slash ? slash + 1 : NULL) /* never NULL + 1 */
    {
      slash = strchr(p, '/');
      if (slash)
        *slash = '\0';
      if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
        return bad_path(path, err);
      frc_strv_push(parts, &count, xstrdup(p));
    }
  *n = count;
  return 0;
}

enum walk_result
{
  WALK_FOUND = 0,
  WALK_TREE_MISSING = 1, /* a tree on the way is not in the store yet */
};

static int
not_found(const struct frc_git_remote *r, const char *path, const char *commit_hex,
          const char *why, frc_error_t *err)
{
  cleanup_free char *esc = escape_for_message(path, strlen(path), 128);
  cleanup_free char *safe = frc_url_redact(r->url);
  frc_error(err, "\"%s\" %s in commit %s of %s", esc, why, commit_hex, safe);
  return frc_error_code(err, FRC_ECODE_NOT_FOUND);
}

/* Finds path in the commit's tree: its mode and id.  "" is the top tree. */
static int
walk(const struct frc_git_remote *r, const unsigned char commit[FRC_OID_RAW],
     const char *commit_hex, const char *path, bool allow_empty, unsigned *mode,
     unsigned char id[FRC_OID_RAW], frc_error_t *err)
{
  cleanup_strv char **parts = NULL;
  size_t n = 0;
  const struct frc_object *c = frc_odb_lookup(&r->odb, commit);

  if (split_path(path, allow_empty, &parts, &n, err) < 0)
    return -1;
  if (frc_commit_tree(c, id, err) < 0)
    return -1;
  *mode = FRC_MODE_TREE;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free struct frc_tree_entry *ents = NULL;
      const struct frc_object *t;
      size_t count = 0;
      bool found = false;

      if (*mode != FRC_MODE_TREE)
        return not_found(r, path, commit_hex, "does not exist (a parent is not a directory)", err);
      t = frc_odb_lookup(&r->odb, id);
      if (t == NULL)
        return WALK_TREE_MISSING;
      if (frc_tree_parse(t, TREE_ENTRIES_MAX, &ents, &count, err) < 0)
        return -1;
      for (size_t j = 0; j < count && !found; j++)
        if (strcmp(ents[j].name, parts[i]) == 0)
          {
            *mode = ents[j].mode;
            memcpy(id, ents[j].id, FRC_OID_RAW);
            found = true;
          }
      if (!found)
        return not_found(r, path, commit_hex, "does not exist", err);
    }
  if (*mode == FRC_MODE_TREE && frc_odb_lookup(&r->odb, id) == NULL)
    return WALK_TREE_MISSING;
  return WALK_FOUND;
}

/* walk() after making sure the commit and its trees are here. */
static int
walk_fetched(struct frc_git_remote *r, const unsigned char commit[FRC_OID_RAW],
             const char *commit_hex, const char *path, bool allow_empty, unsigned *mode,
             unsigned char id[FRC_OID_RAW], frc_error_t *err)
{
  cleanup_strv char **parts = NULL;
  size_t n = 0;
  int rc;
  if (split_path(path, allow_empty, &parts, &n, err) < 0 /* before any request */
      || ensure_commit(r, commit, commit_hex, false, err) < 0)
    return -1;
  rc = walk(r, commit, commit_hex, path, allow_empty, mode, id, err);
  if (rc != WALK_TREE_MISSING)
    return rc;
  if (ensure_commit(r, commit, commit_hex, true, err) < 0)
    return -1;
  rc = walk(r, commit, commit_hex, path, allow_empty, mode, id, err);
  if (rc != WALK_TREE_MISSING)
    return rc;
  {
    cleanup_free char *safe = frc_url_redact(r->url);
    frc_error(err, "FloxHub did not send the trees of commit %s of %s", commit_hex, safe);
    return frc_error_code(err, FRC_ECODE_SERVER);
  }
}

int
frc_git_stat(struct frc_git_remote *r, const char *commit_hex, const char *path, unsigned *mode,
             frc_error_t *err)
{
  unsigned char commit[FRC_OID_RAW], id[FRC_OID_RAW];
  char hex[FRC_OID_HEX + 1];
  if (parse_commit_hex(commit_hex, commit, hex, err) < 0)
    return -1;
  return walk_fetched(r, commit, hex, path, false, mode, id, err);
}

void
frc_git_dirents_free(struct frc_git_dirent *entries, size_t n)
{
  for (size_t i = 0; entries && i < n; i++)
    free(entries[i].name);
  free(entries);
}

int
frc_git_list_dir(struct frc_git_remote *r, const char *commit_hex, const char *dir,
                 struct frc_git_dirent **entries, size_t *n, frc_error_t *err)
{
  unsigned char commit[FRC_OID_RAW], id[FRC_OID_RAW];
  char hex[FRC_OID_HEX + 1];
  cleanup_free struct frc_tree_entry *ents = NULL;
  struct frc_git_dirent *out;
  size_t count = 0;
  unsigned mode = 0;

  if (parse_commit_hex(commit_hex, commit, hex, err) < 0)
    return -1;
  if (walk_fetched(r, commit, hex, dir, true, &mode, id, err) < 0)
    return -1;
  if (mode != FRC_MODE_TREE)
    return not_found(r, dir, hex, "is not a directory", err);
  if (frc_tree_parse(frc_odb_lookup(&r->odb, id), TREE_ENTRIES_MAX, &ents, &count, err) < 0)
    return -1;
  out = xmalloc0((count ? count : 1) * sizeof(*out));
  for (size_t i = 0; i < count; i++)
    {
      out[i].name = xstrndup(ents[i].name, ents[i].name_len);
      out[i].mode = ents[i].mode;
    }
  *entries = out;
  *n = count;
  return 0;
}

/* ---- files --------------------------------------------------------------- */

/* The blob ids of paths, and which of them are not in the store. */
static int
find_blobs(struct frc_git_remote *r, const unsigned char commit[FRC_OID_RAW], const char *hex,
           const char *const *paths, size_t n, unsigned char (*ids)[FRC_OID_RAW],
           char (*missing)[FRC_OID_HEX + 1], size_t *n_missing, frc_error_t *err)
{
  *n_missing = 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned mode = 0;
      char h[FRC_OID_HEX + 1];
      bool dup = false;
      if (walk_fetched(r, commit, hex, paths[i], false, &mode, ids[i], err) < 0)
        return -1;
      if (mode != FRC_MODE_BLOB && mode != FRC_MODE_EXEC)
        return not_found(r, paths[i], hex, "is not a regular file", err);
      if (frc_odb_lookup(&r->odb, ids[i]))
        continue;
      frc_hex(ids[i], FRC_OID_RAW, h);
      for (size_t j = 0; j < *n_missing && !dup; j++)
        dup = strcmp(missing[j], h) == 0;
      if (!dup)
        memcpy(missing[(*n_missing)++], h, sizeof(h));
    }
  return 0;
}

int
frc_git_read_files(struct frc_git_remote *r, const char *commit_hex, const char *const *paths,
                   char **contents, size_t *lens, frc_error_t *err)
{
  unsigned char commit[FRC_OID_RAW];
  char hex[FRC_OID_HEX + 1];
  size_t n = 0, n_missing = 0;
  cleanup_free unsigned char(*ids)[FRC_OID_RAW] = NULL;
  cleanup_free char(*missing)[FRC_OID_HEX + 1] = NULL;

  if (parse_commit_hex(commit_hex, commit, hex, err) < 0)
    return -1;
  while (paths[n])
    n++;
  ids = xmalloc0((n ? n : 1) * sizeof(*ids));
  missing = xmalloc0((n ? n : 1) * sizeof(*missing));
  if (find_blobs(r, commit, hex, paths, n, ids, missing, &n_missing, err) < 0)
    return -1;
  if (n_missing > 0 && !r->full_fetch_only)
    {
      /* The blobs by id: the server may refuse wants of objects that are not
       * branch tips; then one full depth-1 fetch of the commit. */
      struct fetch_args a = { (const char(*)[FRC_OID_HEX + 1]) missing, n_missing, false, false,
                              NULL, NULL };
      if (fetch(r, &a, err) < 0)
        {
          if (fatal_code(*err))
            return frc_error_wrap(err, "cannot fetch files of commit %s", hex);
          frc_error_release(err);
        }
      else if (find_blobs(r, commit, hex, paths, n, ids, missing, &n_missing, err) < 0)
        return -1;
      if (n_missing > 0)
        r->full_fetch_only = true;
    }
  if (n_missing > 0)
    {
      if (ensure_commit(r, commit, hex, true, err) < 0
          || find_blobs(r, commit, hex, paths, n, ids, missing, &n_missing, err) < 0)
        return -1;
      if (n_missing > 0)
        {
          cleanup_free char *safe = frc_url_redact(r->url);
          frc_error(err, "FloxHub did not send object %s of commit %s of %s", missing[0], hex,
                    safe);
          return frc_error_code(err, FRC_ECODE_SERVER);
        }
    }
  for (size_t i = 0; i < n; i++)
    {
      const struct frc_object *o = frc_odb_lookup(&r->odb, ids[i]);
      contents[i] = xmalloc0(o->len + 1);
      memcpy(contents[i], o->data, o->len);
      lens[i] = o->len;
    }
  return 0;
}
