/* The git smart-HTTP client (lib/git.c) against a real git server.
 *
 * The server is `git http-backend` run as a CGI program for each request by
 * the transport below (a real git server, without the HTTP layer, which
 * lib/http.c owns and the integration tests cover with tests/hub).  The
 * transport passes the Git-Protocol header on as GIT_PROTOCOL, like the test
 * hub.  Named fault knobs replace the server's answer where no real git
 * server misbehaves on demand: a forced HTTP status or Content-Type, a canned
 * body, and refusing wants of objects that are not branch tips (as servers
 * without uploadpack.allowReachableSHA1InWant do over plain git). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "git.h"
#include "pktline.h"
#include "util.h"

#define PREFIX "http://hub.test/git"
#define URL PREFIX "/acme/floxmeta"

static char tmpdir[] = "/tmp/frc-test-git-XXXXXX";
static char tip[41]; /* refs/heads/hello */

struct server
{
  bool v0_only; /* do not pass Git-Protocol on */
  bool no_filter; /* uploadpack.allowFilter=false */
  bool ref_in_want; /* uploadpack.allowRefInWant=true */
  bool refuse_non_tip; /* fault: ERR for wants other than branch tips */
  bool prefer_filter; /* the client's frc_git_remote.prefer_filter */
  long status; /* fault: answer this status, no backend run */
  const char *content_type; /* fault: replaces the Content-Type */
  const char *body; /* fault: canned body (body_len bytes) for matching requests */
  size_t body_len;
  const char *body_on; /* "GET" or "POST": which requests get it */
  int body_times; /* how many of them (0: all) */
  int body_served;
  int posts; /* POSTs seen */
  char last_request[4096]; /* the last POST body, truncated */
};

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

static char *
slurp(const char *name, size_t *len)
{
  cleanup_free char *path = xasprintf("%s/%s", tmpdir, name);
  cleanup_error frc_error_t err = NULL;
  char *data = NULL;
  ck_assert_msg(read_file_bounded(path, 1 << 20, &data, len, &err) == 0, "%s", err ? err->msg : "");
  return data;
}

/* acme/floxmeta as FloxHub lays it out: branch hello with two generations,
 * beside branches whose names start the same. */
static void
setup(void)
{
  size_t len = 0;
  cleanup_free char *t = NULL;
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  run_sh("mkdir -p acme && git init -q --bare acme/floxmeta && git init -q w && cd w && "
         "mkdir -p 1/env 2/env && "
         "printf '{\"version\":2,\"history\":[]}\\n' > metadata.json && "
         "printf 'lock one\\n' > 1/env/manifest.lock && printf 'toml one\\n' > 1/env/manifest.toml && "
         "seq 1 3000 > 2/env/manifest.lock && printf 'toml two\\n' > 2/env/manifest.toml && "
         "printf '#!/bin/sh\\n' > tool && chmod +x tool && ln -s metadata.json link && "
         "git add -A && git commit -q -m gen && "
         "git push -q ../acme/floxmeta HEAD:refs/heads/hello && "
         "printf 'other\\n' > metadata.json && git commit -q -am other && "
         "git push -q ../acme/floxmeta HEAD:refs/heads/hello-world HEAD:refs/heads/other && "
         "git -C ../acme/floxmeta rev-parse refs/heads/hello > ../tip");
  t = slurp("tip", &len);
  ck_assert_uint_ge(len, 40);
  memcpy(tip, t, 40);
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("rm -rf '%s'", tmpdir);
  (void) !system(cmd);
}

static const char *
header_value(const char *const *headers, const char *name)
{
  size_t n = strlen(name);
  for (; headers && *headers; headers++)
    if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
      return *headers + n + 2;
  return NULL;
}

/* Wants of objects that are not branch tips, as git answers them. */
static bool
refuse(struct server *s, const void *body, size_t len, struct frc_http_response *resp)
{
  struct frc_pkt_reader rd;
  struct frc_pkt p;
  frc_error_t err = NULL;
  frc_pkt_reader_init(&rd, body, len);
  while (frc_pkt_read(&rd, &p, &err) == 0 && p.kind != FRC_PKT_EOF)
    {
      const char *oid;
      size_t n;
      if (frc_pkt_has_prefix(&p, "want ", &oid, &n) && n >= 40 && memcmp(oid, tip, 40) != 0)
        {
          struct frc_buf b = { NULL, 0, 0 };
          frc_pkt_writef(&b, "ERR upload-pack: not our ref %.40s", oid);
          frc_buf_add(&b, "", 1);
          resp->status = 200;
          resp->content_type = xstrdup("application/x-git-upload-pack-result");
          resp->body = b.data;
          resp->len = b.len - 1;
          return true;
        }
    }
  frc_error_release(&err);
  return false;
}

/* git http-backend as CGI: the request in, the CGI answer parsed out. */
static int
cgi_transport(void *data, const struct frc_http_opts *o, const char *method, const char *url,
              const char *const *headers, const void *body, size_t body_len,
              struct frc_http_response *resp, frc_error_t *err)
{
  struct server *s = data;
  const char *proto = header_value(headers, "Git-Protocol");
  cleanup_free char *plain = frc_url_redact(url); /* credentials go in the opts */
  const char *path = str_has_prefix(plain, PREFIX) ? plain + strlen(PREFIX) : plain;
  const char *q = strchr(path, '?');
  cleanup_free char *path_info = xstrndup(path, q ? (size_t) (q - path) : strlen(path));
  cleanup_free char *in = xasprintf("%s/request", tmpdir);
  cleanup_free char *out = NULL;
  size_t out_len = 0;
  const char *hdr_end, *p;
  int pipefd[2];
  pid_t pid;
  int status;

  memset(resp, 0, sizeof(*resp));
  ck_assert(str_has_prefix(plain, PREFIX));
  if (body)
    {
      size_t n = body_len < sizeof(s->last_request) - 1 ? body_len : sizeof(s->last_request) - 1;
      memcpy(s->last_request, body, n);
      s->last_request[n] = '\0';
      s->posts++;
      ck_assert_str_eq(header_value(headers, "Content-Type"), "application/x-git-upload-pack-request");
    }
  if (s->status)
    {
      resp->status = s->status;
      resp->body = xstrdup("injected fault");
      resp->len = strlen(resp->body);
      return 0;
    }
  if (s->body && strcmp(s->body_on, method) == 0 && (s->body_times == 0 || s->body_served++ < s->body_times))
    {
      resp->status = 200;
      resp->content_type = xstrdup(s->content_type ? s->content_type
                                   : body ? "application/x-git-upload-pack-result"
                                          : "application/x-git-upload-pack-advertisement");
      resp->body = xmalloc0(s->body_len + 1);
      memcpy(resp->body, s->body, s->body_len);
      resp->len = s->body_len;
      return 0;
    }
  if (body && s->refuse_non_tip && refuse(s, body, body_len, resp))
    return 0;

  {
    cleanup_close int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_all(fd, body ? body : "", body_len), 0);
  }
  ck_assert_int_eq(pipe(pipefd), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    {
      int fd = open(in, O_RDONLY);
      int dn = open("/dev/null", O_WRONLY);
      char clen[32];
      snprintf(clen, sizeof(clen), "%zu", body_len);
      dup2(fd, 0);
      dup2(pipefd[1], 1);
      dup2(dn, 2);
      close(pipefd[0]);
      clearenv();
      setenv("PATH", "/usr/bin:/bin", 1);
      setenv("HOME", tmpdir, 1);
      setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
      setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
      setenv("GIT_PROJECT_ROOT", tmpdir, 1);
      setenv("GIT_HTTP_EXPORT_ALL", "1", 1);
      setenv("REQUEST_METHOD", method, 1);
      setenv("PATH_INFO", path_info, 1);
      setenv("QUERY_STRING", q ? q + 1 : "", 1);
      if (body)
        {
          setenv("CONTENT_TYPE", "application/x-git-upload-pack-request", 1);
          setenv("CONTENT_LENGTH", clen, 1);
        }
      if (proto && !s->v0_only)
        setenv("GIT_PROTOCOL", proto, 1);
      setenv("GIT_CONFIG_COUNT", "2", 1);
      setenv("GIT_CONFIG_KEY_0", "uploadpack.allowFilter", 1);
      setenv("GIT_CONFIG_VALUE_0", s->no_filter ? "false" : "true", 1);
      setenv("GIT_CONFIG_KEY_1", "uploadpack.allowRefInWant", 1);
      setenv("GIT_CONFIG_VALUE_1", s->ref_in_want ? "true" : "false", 1);
      execlp("git", "git", "http-backend", (char *) NULL);
      _exit(127);
    }
  close(pipefd[1]);
  for (;;)
    {
      char buf[65536];
      ssize_t n = read(pipefd[0], buf, sizeof(buf));
      if (n <= 0)
        break;
      out = xrealloc(out, out_len + (size_t) n + 1);
      memcpy(out + out_len, buf, (size_t) n);
      out_len += (size_t) n;
    }
  close(pipefd[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_ptr_nonnull(out);
  out[out_len] = '\0';

  /* CGI headers, then the body. */
  hdr_end = strstr(out, "\r\n\r\n");
  ck_assert_ptr_nonnull(hdr_end);
  resp->status = 200;
  for (p = out; p < hdr_end;)
    {
      const char *eol = strstr(p, "\r\n");
      if (str_has_prefix(p, "Status: "))
        resp->status = strtol(p + 8, NULL, 10);
      else if (str_has_prefix(p, "Content-Type: "))
        resp->content_type = xstrndup(p + 14, (size_t) (eol - p - 14));
      p = eol + 2;
    }
  if (s->content_type)
    {
      free(resp->content_type);
      resp->content_type = xstrdup(s->content_type);
    }
  resp->len = out_len - (size_t) (hdr_end + 4 - out);
  if (o->max_body && resp->len > o->max_body)
    {
      frc_error(err, "the answer of %s is larger than %zu bytes", url, o->max_body);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  resp->body = xmalloc0(resp->len + 1);
  memcpy(resp->body, hdr_end + 4, resp->len);
  return 0;
}

static void
open_remote(struct frc_git_remote *r, struct server *s, const char *url)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_git_remote_init(r, url, NULL, &err), 0);
  r->transport = cgi_transport;
  r->transport_data = s;
}

static size_t
blobs_held(const struct frc_git_remote *r)
{
  size_t n = 0;
  for (size_t i = 0; i < r->odb.cap; i++)
    if (r->odb.slots[i] && r->odb.slots[i]->type == FRC_OBJ_BLOB)
      n++;
  return n;
}

#define OK(call)                                                                                   \
  do                                                                                               \
    {                                                                                              \
      frc_error_t e_ = NULL;                                                                       \
      frc_error_t *err_ = &e_;                                                                     \
      int r_ = (call);                                                                             \
      ck_assert_msg(r_ == 0, "%s: %s", #call, e_ ? e_->msg : "");                                  \
    }                                                                                              \
  while (0)

/* The whole conversation: branch, listing, files, counters. */
static void
conversation(struct server *s, int version, bool filter, unsigned expect_requests)
{
  struct frc_git_remote r;
  char oid[41];
  struct frc_git_dirent *ents = NULL;
  size_t n = 0;
  const char *paths[] = { "metadata.json", "2/env/manifest.lock", "1/env/manifest.lock",
                          "metadata.json", "tool", NULL };
  char *contents[5];
  size_t lens[5];
  unsigned mode = 0;
  size_t want_len = 0;
  cleanup_free char *want = NULL;

  open_remote(&r, s, URL "/");
  r.prefer_filter = s->prefer_filter;
  ck_assert_str_eq(r.url, URL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert_int_eq(r.version, version);
  ck_assert(r.filter == filter);
  ck_assert(r.shallow);

  OK(frc_git_list_dir(&r, oid, "", &ents, &n, err_));
  ck_assert_uint_eq(n, 5);
  ck_assert_str_eq(ents[0].name, "1");
  ck_assert_uint_eq(ents[0].mode, FRC_MODE_TREE);
  ck_assert_str_eq(ents[1].name, "2");
  ck_assert_str_eq(ents[2].name, "link");
  ck_assert_uint_eq(ents[2].mode, FRC_MODE_LINK);
  ck_assert_str_eq(ents[3].name, "metadata.json");
  ck_assert_uint_eq(ents[3].mode, FRC_MODE_BLOB);
  ck_assert_str_eq(ents[4].name, "tool");
  ck_assert_uint_eq(ents[4].mode, FRC_MODE_EXEC);
  frc_git_dirents_free(ents, n);
  /* With a filter, only the commit and its trees came. */
  ck_assert_uint_eq(blobs_held(&r), filter && s->prefer_filter ? 0 : 7);
  ck_assert_uint_eq(r.odb.count, filter && s->prefer_filter ? 6 : 13);

  OK(frc_git_list_dir(&r, oid, "2/env", &ents, &n, err_));
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(ents[0].name, "manifest.lock");
  frc_git_dirents_free(ents, n);
  OK(frc_git_stat(&r, oid, "2/env/manifest.lock", &mode, err_));
  ck_assert_uint_eq(mode, FRC_MODE_BLOB);

  OK(frc_git_read_files(&r, oid, paths, contents, lens, err_));
  ck_assert_str_eq(contents[0], "{\"version\":2,\"history\":[]}\n");
  ck_assert_uint_eq(lens[0], strlen(contents[0]));
  run_sh("git -C acme/floxmeta show hello:2/env/manifest.lock > want");
  want = slurp("want", &want_len);
  ck_assert_uint_eq(lens[1], want_len);
  ck_assert(memcmp(contents[1], want, want_len) == 0);
  ck_assert_str_eq(contents[2], "lock one\n");
  ck_assert_str_eq(contents[3], contents[0]);
  ck_assert_str_eq(contents[4], "#!/bin/sh\n");
  for (int i = 0; i < 5; i++)
    free(contents[i]);
  ck_assert_uint_eq(r.requests, expect_requests);
  ck_assert_uint_gt(r.bytes_received, r.pack_bytes);
  ck_assert_uint_gt(r.pack_bytes, 100);

  /* Everything is here now: no more requests. */
  OK(frc_git_read_files(&r, oid, paths + 2, contents, lens, err_));
  free(contents[0]);
  free(contents[1]);
  free(contents[2]);
  ck_assert_uint_eq(frc_git_remote_requests(&r), expect_requests);
  frc_git_remote_release(&r);
}

START_TEST(test_v2)
{
  struct server s = { 0 };
  /* info/refs, ls-refs, one depth-1 fetch, as git makes them, though the
   * server offers filters; thin-pack asked for as git does */
  conversation(&s, 2, true, 3);
  ck_assert_ptr_nonnull(strstr(s.last_request, "000ethin-pack\n"));
  ck_assert_ptr_nonnull(strstr(s.last_request, "deepen 1"));
  ck_assert_ptr_null(strstr(s.last_request, "filter"));
}
END_TEST

START_TEST(test_v2_prefer_filter)
{
  struct server s = { .prefer_filter = true };
  /* info/refs, ls-refs, fetch of commit+trees, fetch of 4 blobs */
  conversation(&s, 2, true, 4);
  ck_assert_ptr_nonnull(strstr(s.last_request, "0012command=fetch\n"));
  ck_assert_ptr_nonnull(strstr(s.last_request, "0010no-progress\n"));
  ck_assert_ptr_nonnull(strstr(s.last_request, "agent=flox-runc/"));
  ck_assert_ptr_null(strstr(s.last_request, "filter"));
}
END_TEST

START_TEST(test_v0)
{
  struct server s = { .v0_only = true };
  /* info/refs (with the refs), one depth-1 fetch */
  conversation(&s, 0, true, 2);
  ck_assert_ptr_nonnull(strstr(s.last_request, " side-band-64k"));
  ck_assert_ptr_nonnull(strstr(s.last_request, " thin-pack"));
  ck_assert_ptr_nonnull(strstr(s.last_request, "0009done\n"));
}
END_TEST

START_TEST(test_v0_prefer_filter)
{
  struct server s = { .v0_only = true, .prefer_filter = true };
  /* info/refs (with the refs), fetch of commit+trees, fetch of blobs */
  conversation(&s, 0, true, 3);
}
END_TEST

/* A commit over the pack limit: its trees, then the files by id. */
START_TEST(test_too_big_falls_back_to_filter)
{
  struct server s = { 0 };
  struct frc_git_remote r;
  char oid[41];
  const char *paths[] = { "metadata.json", NULL };
  char *c[1];
  size_t l[1];

  open_remote(&r, &s, URL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  r.limits.max_pack = 2000; /* the trees fit, the 14 kB lock does not */
  OK(frc_git_read_files(&r, oid, paths, c, l, err_));
  ck_assert_str_eq(c[0], "{\"version\":2,\"history\":[]}\n");
  free(c[0]);
  ck_assert(r.prefer_filter);
  /* info/refs, ls-refs, the refused full fetch, trees, the blob */
  ck_assert_uint_eq(r.requests, 5);
  ck_assert_uint_eq(blobs_held(&r), 1);
  frc_git_remote_release(&r);
}
END_TEST

START_TEST(test_v2_no_filter)
{
  struct server s = { .no_filter = true };
  conversation(&s, 2, false, 3);
  ck_assert_ptr_nonnull(strstr(s.last_request, "deepen 1"));
  ck_assert_ptr_null(strstr(s.last_request, "filter"));
}
END_TEST

START_TEST(test_v0_no_filter)
{
  struct server s = { .v0_only = true, .no_filter = true };
  conversation(&s, 0, false, 2);
}
END_TEST

static void
refused_wants(struct server *s)
{
  struct frc_git_remote r;
  char oid[41];
  const char *paths[] = { "2/env/manifest.toml", NULL };
  const char *more[] = { "1/env/manifest.toml", NULL };
  char *c[1];
  size_t l[1];
  unsigned before;

  open_remote(&r, s, URL);
  r.prefer_filter = true;
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  before = r.requests;
  OK(frc_git_read_files(&r, oid, paths, c, l, err_));
  ck_assert_str_eq(c[0], "toml two\n");
  free(c[0]);
  /* fetch (filtered), blob wants refused, full depth-1 fetch */
  ck_assert_uint_eq(r.requests - before, 3);
  ck_assert(r.full_fetch_only);
  ck_assert_uint_eq(blobs_held(&r), 7);
  ck_assert_ptr_null(strstr(s->last_request, "filter"));
  before = r.requests;
  OK(frc_git_read_files(&r, oid, more, c, l, err_));
  ck_assert_str_eq(c[0], "toml one\n");
  free(c[0]);
  ck_assert_uint_eq(r.requests, before);
  frc_git_remote_release(&r);
}

START_TEST(test_refused_blob_wants)
{
  struct server s2 = { .refuse_non_tip = true };
  struct server s0 = { .refuse_non_tip = true, .v0_only = true };
  refused_wants(&s2);
  refused_wants(&s0);
}
END_TEST

static void
expect_code(int rc, frc_error_t *err, int code, const char *fragment)
{
  ck_assert_int_eq(rc, -1);
  ck_assert_ptr_nonnull(*err);
  ck_assert_msg((*err)->code == code, "code %d, message: %s", (*err)->code, (*err)->msg);
  if (fragment)
    ck_assert_msg(strstr((*err)->msg, fragment) != NULL, "message: %s", (*err)->msg);
  frc_error_release(err);
}

START_TEST(test_not_found)
{
  struct server s = { 0 }, s0 = { .v0_only = true };
  struct frc_git_remote r;
  char oid[41];
  const char *missing[] = { "metadata.json", "3/env/manifest.lock", NULL };
  const char *dir[] = { "2/env", NULL };
  const char *through_file[] = { "metadata.json/x", NULL };
  const char *link[] = { "link", NULL };
  char *c[2] = { NULL, NULL };
  size_t l[2];
  struct frc_git_dirent *ents = NULL;
  size_t n = 0;
  unsigned mode;
  frc_error_t err = NULL;

  open_remote(&r, &s, URL);
  expect_code(frc_git_ls_ref(&r, "hell", oid, &err), &err, FRC_ECODE_NOT_FOUND,
              "branch hell not found in " URL);
  expect_code(frc_git_ls_ref(&r, "nope", oid, &err), &err, FRC_ECODE_NOT_FOUND, NULL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  expect_code(frc_git_read_files(&r, oid, missing, c, l, &err), &err, FRC_ECODE_NOT_FOUND,
              "\"3/env/manifest.lock\" does not exist in commit");
  ck_assert_ptr_null(c[0]);
  expect_code(frc_git_read_files(&r, oid, dir, c, l, &err), &err, FRC_ECODE_NOT_FOUND,
              "\"2/env\" is not a regular file");
  expect_code(frc_git_read_files(&r, oid, link, c, l, &err), &err, FRC_ECODE_NOT_FOUND,
              "is not a regular file");
  expect_code(frc_git_read_files(&r, oid, through_file, c, l, &err), &err, FRC_ECODE_NOT_FOUND,
              "a parent is not a directory");
  expect_code(frc_git_stat(&r, oid, "3", &mode, &err), &err, FRC_ECODE_NOT_FOUND, NULL);
  expect_code(frc_git_list_dir(&r, oid, "metadata.json", &ents, &n, &err), &err,
              FRC_ECODE_NOT_FOUND, "is not a directory");
  frc_git_remote_release(&r);

  open_remote(&r, &s0, URL);
  expect_code(frc_git_ls_ref(&r, "hello-", oid, &err), &err, FRC_ECODE_NOT_FOUND, NULL);
  OK(frc_git_ls_ref(&r, "hello-world", oid, err_));
  ck_assert_str_ne(oid, tip);
  frc_git_remote_release(&r);

  /* No such repository: http-backend's own 404. */
  open_remote(&r, &s, PREFIX "/nobody/floxmeta");
  expect_code(frc_git_ls_ref(&r, "hello", oid, &err), &err, FRC_ECODE_NOT_FOUND,
              PREFIX "/nobody/floxmeta does not exist on FloxHub (HTTP 404)");
  frc_git_remote_release(&r);
}
END_TEST

START_TEST(test_bad_arguments)
{
  struct server s = { 0 };
  struct frc_git_remote r;
  char oid[41];
  const char *bad_paths[][2] = { { "../x", NULL }, { "/metadata.json", NULL }, { "1//env", NULL },
                                 { "", NULL },     { "1/./env", NULL },        { "1/env/", NULL } };
  const char *meta[] = { "metadata.json", NULL };
  char *c[1];
  size_t l[1];
  frc_error_t err = NULL;

  expect_code(frc_git_remote_init(&r, "ftp://x/y", NULL, &err), &err, FRC_ECODE_OTHER,
              "expected http:// or https://");
  frc_git_remote_release(&r);
  open_remote(&r, &s, URL);
  expect_code(frc_git_ls_ref(&r, "a b", oid, &err), &err, FRC_ECODE_OTHER, "invalid branch name");
  expect_code(frc_git_ls_ref(&r, "a\nb", oid, &err), &err, FRC_ECODE_OTHER, "invalid branch name");
  expect_code(frc_git_ls_ref(&r, "../x", oid, &err), &err, FRC_ECODE_OTHER, "invalid branch name");
  expect_code(frc_git_ls_ref(&r, "", oid, &err), &err, FRC_ECODE_OTHER, "invalid branch name");
  ck_assert_uint_eq(r.requests, 0);
  expect_code(frc_git_read_files(&r, "xyz", bad_paths[0], c, l, &err), &err, FRC_ECODE_OTHER,
              "invalid git commit id");
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
    expect_code(frc_git_read_files(&r, oid, bad_paths[i], c, l, &err), &err, FRC_ECODE_OTHER,
                "invalid path");
  /* A commit the server does not have: git's "not our ref". */
  expect_code(frc_git_read_files(&r, "0123456789abcdef0123456789abcdef01234567", meta, c, l, &err),
              &err, FRC_ECODE_SERVER, "FloxHub git service error: upload-pack: not our ref");
  frc_git_remote_release(&r);
}
END_TEST

START_TEST(test_http_status)
{
  static const struct
  {
    long status;
    int code;
    const char *fragment;
  } cases[] = {
    { 401, FRC_ECODE_AUTH, "(HTTP 401)" },   { 403, FRC_ECODE_AUTH, "(HTTP 403)" },
    { 404, FRC_ECODE_NOT_FOUND, "HTTP 404" }, { 500, FRC_ECODE_SERVER, "HTTP 500" },
    { 503, FRC_ECODE_SERVER, "retry later" }, { 302, FRC_ECODE_SERVER, "unexpected HTTP 302" },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      struct server s = { .status = cases[i].status };
      struct frc_git_remote r;
      char oid[41];
      frc_error_t err = NULL;
      open_remote(&r, &s, URL);
      expect_code(frc_git_ls_ref(&r, "hello", oid, &err), &err, cases[i].code, cases[i].fragment);
      frc_git_remote_release(&r);
    }
}
END_TEST

START_TEST(test_credentials_never_in_messages)
{
  struct server s = { .status = 401 };
  struct frc_git_remote r;
  struct frc_http_opts o = { .user = "oauth", .password = "s3cret-token" };
  char oid[41];
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_git_remote_init(&r, "http://oauth:s3cret-token@hub.test/git/acme/floxmeta",
                                       &o, &err),
                   0);
  r.transport = cgi_transport;
  r.transport_data = &s;
  ck_assert_int_eq(frc_git_ls_ref(&r, "hello", oid, &err), -1);
  ck_assert_int_eq(err->code, FRC_ECODE_AUTH);
  ck_assert_ptr_null(strstr(err->msg, "s3cret"));
  ck_assert_ptr_nonnull(strstr(err->msg, "the token was not accepted"));
  frc_error_release(&err);
  frc_git_remote_release(&r);
}
END_TEST

START_TEST(test_not_smart)
{
  struct server s = { .content_type = "text/plain" };
  struct frc_git_remote r;
  char oid[41];
  frc_error_t err = NULL;
  open_remote(&r, &s, URL);
  expect_code(frc_git_ls_ref(&r, "hello", oid, &err), &err, FRC_ECODE_SERVER,
              "is not a git smart HTTP service (Content-Type text/plain");
  frc_git_remote_release(&r);
}
END_TEST

/* Canned discovery answers (GET). */
static int
discover_canned(const char *body, size_t len, struct frc_git_remote *r, char oid[41],
                frc_error_t *err)
{
  static struct server s;
  memset(&s, 0, sizeof(s));
  s.body = body;
  s.body_len = len;
  s.body_on = "GET";
  s.v0_only = true;
  open_remote(r, &s, URL);
  return frc_git_ls_ref(r, "hello", oid, err);
}

#define CANNED(lit, r, oid, err) discover_canned(lit, sizeof(lit) - 1, r, oid, err)
#define SVC "001e# service=git-upload-pack\n0000"
#define ID "1234567890abcdef1234567890abcdef12345678"

START_TEST(test_canned_advertisements)
{
  struct frc_git_remote r;
  char oid[41];
  frc_error_t err = NULL;

  /* v0 with a peeled tag and a shallow line; v1 preamble; uppercase hex. */
  ck_assert_int_eq(CANNED(SVC "005e" ID " refs/heads/hello\0side-band-64k ofs-delta shallow\n"
                              "003d" ID " refs/tags/v1^{}\n"
                              "0035shallow " ID "\n"
                              "0000",
                          &r, oid, &err),
                   0);
  ck_assert_str_eq(oid, ID);
  ck_assert_int_eq(r.version, 0);
  ck_assert(r.shallow);
  ck_assert(!r.filter);
  ck_assert_uint_eq(r.n_refs, 1);
  frc_git_remote_release(&r);
  ck_assert_int_eq(CANNED(SVC "000eversion 1\n0045" ID " refs/heads/hello\0filter\n0000", &r, oid,
                          &err),
                   0);
  ck_assert(r.filter);
  frc_git_remote_release(&r);
  ck_assert_int_eq(CANNED(SVC "003fABCDEF7890ABCDEF1234567890ABCDEF12345678 refs/heads/hello\0\n0000",
                          &r, oid, &err),
                   0);
  ck_assert_str_eq(oid, "abcdef7890abcdef1234567890abcdef12345678");
  frc_git_remote_release(&r);
  /* An empty repository: capabilities only. */
  expect_code(CANNED(SVC "00450000000000000000000000000000000000000000 capabilities^{}\0shallow\n0000",
                     &r, oid, &err),
              &err, FRC_ECODE_NOT_FOUND, "branch hello not found");
  frc_git_remote_release(&r);

  /* Broken ones. */
  expect_code(CANNED("hello", &r, oid, &err), &err, FRC_ECODE_SERVER, "bad pkt-line length");
  frc_git_remote_release(&r);
  expect_code(CANNED("0010hello", &r, oid, &err), &err, FRC_ECODE_SERVER, "truncated pkt-line");
  frc_git_remote_release(&r);
  expect_code(CANNED("", &r, oid, &err), &err, FRC_ECODE_SERVER, "no \"# service=git-upload-pack\"");
  frc_git_remote_release(&r);
  expect_code(CANNED("001f# service=git-receive-pack\n0000", &r, oid, &err), &err,
              FRC_ECODE_SERVER, "wrong service");
  frc_git_remote_release(&r);
  expect_code(CANNED("001e# service=git-upload-pack\n0006ab", &r, oid, &err), &err,
              FRC_ECODE_SERVER, "no flush after the service line");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "0000", &r, oid, &err), &err, FRC_ECODE_SERVER, "empty ref advertisement");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "002d" ID "\n0000", &r, oid, &err), &err, FRC_ECODE_SERVER,
              "without capabilities");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "003f" ID " refs/heads/hello\0\n000cbadline\n0000", &r, oid, &err), &err,
              FRC_ECODE_SERVER, "bad ref advertisement");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "003f" ID " refs/heads/hello\0\n", &r, oid, &err), &err, FRC_ECODE_SERVER,
              "ends without a flush");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "0053" ID " refs/heads/hello\0object-format=sha256\n0000", &r, oid, &err),
              &err, FRC_ECODE_SERVER, "object format sha256");
  frc_git_remote_release(&r);
  expect_code(CANNED(SVC "001aERR no access to this\n", &r, oid, &err), &err, FRC_ECODE_SERVER,
              "FloxHub git service error: no access to this");
  frc_git_remote_release(&r);
  /* v2 without the commands flox-runc needs, with SHA-256, or cut. */
  expect_code(CANNED("000eversion 2\n000cls-refs\n0000", &r, oid, &err), &err, FRC_ECODE_SERVER,
              "without ls-refs and fetch");
  frc_git_remote_release(&r);
  expect_code(CANNED("000eversion 2\n000cls-refs\n000afetch\n0019object-format=sha256\n0000", &r,
                     oid, &err),
              &err, FRC_ECODE_SERVER, "object format sha256");
  frc_git_remote_release(&r);
  expect_code(CANNED("000eversion 2\n000cls-refs\n000afetch\n", &r, oid, &err), &err,
              FRC_ECODE_SERVER, "capability advertisement ends without a flush");
  frc_git_remote_release(&r);
}
END_TEST

/* Canned answers to POSTs (v2 ls-refs and fetch). */
static void
post_canned(const char *body, size_t len, bool fetch, int code, const char *fragment)
{
  struct server s = { .body = body, .body_len = len, .body_on = "POST" };
  struct frc_git_remote r;
  const char *paths[] = { "metadata.json", NULL };
  char *c[1];
  size_t l[1];
  char oid[41];
  frc_error_t err = NULL;

  open_remote(&r, &s, URL);
  if (fetch)
    expect_code(frc_git_read_files(&r, tip, paths, c, l, &err), &err, code, fragment);
  else
    expect_code(frc_git_ls_ref(&r, "hello", oid, &err), &err, code, fragment);
  frc_git_remote_release(&r);
}

#define POST(lit, fetch, code, frag) post_canned(lit, sizeof(lit) - 1, fetch, code, frag)

START_TEST(test_canned_results)
{
  POST("", false, FRC_ECODE_SERVER, "ls-refs answer ends without a flush");
  POST("000fnot an oid\n0000", false, FRC_ECODE_SERVER, "bad ls-refs line");
  POST("0017ERR ls-refs failed\n", false, FRC_ECODE_SERVER,
       "FloxHub git service error: ls-refs failed");
  POST("0000", true, FRC_ECODE_SERVER, "fetch answer without a packfile");
  POST("000esomething\n0000", true, FRC_ECODE_SERVER, "unexpected section");
  POST("0011shallow-info\n0035shallow " ID "\n0000", true, FRC_ECODE_SERVER,
       "fetch answer without a packfile");
  POST("000dpackfile\n0009\001PACK0021\003fatal: object store damaged\n0000", true,
       FRC_ECODE_SERVER, "FloxHub git service error: fatal: object store damaged");
  POST("000dpackfile\n0009\001PACK", true, FRC_ECODE_SERVER, "pack stream ends without a flush");
  POST("000dpackfile\n0009\001PACK0000", true, FRC_ECODE_SERVER, "corrupt git pack");
}
END_TEST

/* A fetch by want-ref where the server offers ref-in-want: the branch's
 * commit and its files in one request after discovery, no ls-refs. */
START_TEST(test_v2_ref_in_want)
{
  struct server s = { .ref_in_want = true };
  struct frc_git_remote r;
  char oid[41];
  const char *paths[] = { "metadata.json", "2/env/manifest.lock", NULL };
  char *c[2];
  size_t l[2];
  frc_error_t err = NULL;

  open_remote(&r, &s, URL);
  OK(frc_git_fetch_branch(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert(r.ref_in_want);
  ck_assert_uint_eq(r.requests, 2);
  ck_assert_ptr_nonnull(strstr(s.last_request, "want-ref refs/heads/hello\n"));
  ck_assert_ptr_nonnull(strstr(s.last_request, "deepen 1"));
  OK(frc_git_read_files(&r, oid, paths, c, l, err_));
  ck_assert_str_eq(c[0], "{\"version\":2,\"history\":[]}\n");
  ck_assert_uint_eq(l[1], 13893); /* seq 1 3000 */
  free(c[0]);
  free(c[1]);
  ck_assert_uint_eq(r.requests, 2);
  /* A missing branch: git answers ERR; ls-refs then says what is wrong. */
  expect_code(frc_git_fetch_branch(&r, "nope", oid, &err), &err, FRC_ECODE_NOT_FOUND,
              "branch nope not found");
  ck_assert(r.ref_in_want_failed);
  /* Asked again (the kept advertisement was stale, lib/hub.c): the fetch
   * by want-ref is tried again with what the server says now. */
  frc_git_remote_rediscover(&r);
  ck_assert(!r.ref_in_want_failed);
  s.posts = 0;
  OK(frc_git_fetch_branch(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert_int_eq(s.posts, 1);
  ck_assert_ptr_nonnull(strstr(s.last_request, "want-ref refs/heads/hello\n"));
  frc_git_remote_release(&r);

  /* Without ref-in-want: ls-refs, the commit fetched when read. */
  s.ref_in_want = false;
  open_remote(&r, &s, URL);
  OK(frc_git_fetch_branch(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert(!r.ref_in_want);
  ck_assert_uint_eq(r.requests, 2);
  ck_assert_ptr_null(strstr(s.last_request, "want-ref"));
  OK(frc_git_read_files(&r, oid, paths, c, l, err_));
  free(c[0]);
  free(c[1]);
  ck_assert_uint_eq(r.requests, 3);
  frc_git_remote_release(&r);
}
END_TEST

/* A server that does not keep its word about want-ref gets no trust: the
 * branch is looked up with ls-refs (the real backend answers it), or the
 * fetch fails when it names a commit it did not send. */
static void
want_ref_canned(const char *body, size_t len, int code, const char *fragment)
{
  struct server s = { .ref_in_want = true, .body = body, .body_len = len, .body_on = "POST",
                      .body_times = 1 };
  struct frc_git_remote r;
  char oid[41] = "";
  frc_error_t err = NULL;

  open_remote(&r, &s, URL);
  if (code == 0)
    {
      OK(frc_git_fetch_branch(&r, "hello", oid, err_));
      ck_assert_str_eq(oid, tip);
      ck_assert(r.ref_in_want_failed);
      ck_assert_uint_eq(r.requests, 3);
      ck_assert_ptr_nonnull(strstr(s.last_request, "ls-refs"));
    }
  else
    expect_code(frc_git_fetch_branch(&r, "hello", oid, &err), &err, code, fragment);
  frc_git_remote_release(&r);
}

#define WANT_REF(lit, code, frag) want_ref_canned(lit, sizeof(lit) - 1, code, frag)
#define WR "0010wanted-refs\n"
#define DELIM_PACK "0001000dpackfile\n"

START_TEST(test_want_ref_hostile)
{
  size_t len = 0;
  cleanup_free char *empty = NULL;
  cleanup_free char *body = NULL;
  /* another ref, a bad id, two lines, none, no section at all, an ERR */
  WANT_REF(WR "003e" ID " refs/heads/other\n" DELIM_PACK "0000", 0, NULL);
  WANT_REF(WR "003enot-an-id-at-all-not-an-id-at-all-abcdef refs/heads/hello\n" DELIM_PACK "0000", 0,
           NULL);
  WANT_REF(WR "003e" ID " refs/heads/hello\n003e" ID " refs/heads/hello\n" DELIM_PACK "0000", 0,
           NULL);
  WANT_REF(WR DELIM_PACK "0000", 0, NULL);
  WANT_REF("000dpackfile\n0000", 0, NULL);
  WANT_REF("0016ERR unknown ref x\n", 0, NULL);
  /* names a commit and sends an empty pack */
  run_sh("git -C acme/floxmeta pack-objects -q --stdout </dev/null > empty.pack");
  empty = slurp("empty.pack", &len);
  ck_assert_uint_eq(len, 32);
  body = xasprintf(WR "003e" ID " refs/heads/hello\n" DELIM_PACK "%04zx\001", len + 5);
  {
    size_t n = strlen(body);
    char *all = xmalloc0(n + len + 5);
    memcpy(all, body, n);
    memcpy(all + n, empty, len);
    memcpy(all + n + len, "0000", 4);
    want_ref_canned(all, n + len + 4, FRC_ECODE_SERVER, "did not send it");
    free(all);
  }
}
END_TEST

/* A v2 advertisement kept from one conversation skips discovery in the next;
 * v0 ones (they hold refs) and broken ones are not taken. */
START_TEST(test_assume_capabilities)
{
  struct server s = { .ref_in_want = true };
  struct frc_git_remote r;
  char oid[41];
  cleanup_free char *adv = NULL;
  size_t adv_len;
  frc_error_t e = NULL;

  open_remote(&r, &s, URL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  ck_assert(!r.assumed);
  ck_assert_ptr_nonnull(r.advertisement);
  adv_len = r.advertisement_len;
  adv = xmalloc0(adv_len + 1);
  memcpy(adv, r.advertisement, adv_len);
  frc_git_remote_release(&r);

  open_remote(&r, &s, URL);
  ck_assert(frc_git_remote_assume(&r, adv, adv_len));
  ck_assert(r.assumed && r.discovered && r.ref_in_want && r.version == 2);
  OK(frc_git_fetch_branch(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert_uint_eq(r.requests, 1); /* the fetch by want-ref alone */
  ck_assert_ptr_null(r.advertisement);
  frc_git_remote_release(&r);

  /* Refused: a v0 advertisement, a truncated one, too large, garbage. */
  s.v0_only = true;
  open_remote(&r, &s, URL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  ck_assert_int_eq(r.version, 0);
  ck_assert_ptr_null(r.advertisement);
  frc_git_remote_release(&r);
  open_remote(&r, &s, URL);
  ck_assert(!frc_git_remote_assume(&r, SVC "003f" ID " refs/heads/hello\0\n0000",
                                   sizeof(SVC "003f" ID " refs/heads/hello\0\n0000") - 1));
  ck_assert(!frc_git_remote_assume(&r, adv, adv_len - 4));
  ck_assert(!frc_git_remote_assume(&r, adv, FRC_GIT_CAPS_MAX + 1));
  ck_assert(!frc_git_remote_assume(&r, "0009hello", 9));
  ck_assert(!r.discovered && !r.assumed && r.caps == NULL);
  /* ... and the remote discovers as usual */
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  ck_assert_uint_eq(r.requests, 1);
  frc_git_remote_release(&r);

  /* Assumed, but the server changed (now v0): the request fails; after
   * frc_git_remote_rediscover() it is asked again. */
  open_remote(&r, &s, URL);
  ck_assert(frc_git_remote_assume(&r, adv, adv_len));
  ck_assert_int_eq(frc_git_ls_ref(&r, "hello", oid, &e), -1);
  frc_error_release(&e);
  frc_git_remote_rediscover(&r);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  ck_assert_str_eq(oid, tip);
  ck_assert_int_eq(r.version, 0);
  frc_git_remote_release(&r);
}
END_TEST

START_TEST(test_limits)
{
  struct server s = { 0 };
  struct frc_git_remote r;
  char oid[41];
  const char *paths[] = { "2/env/manifest.lock", NULL };
  char *c[1];
  size_t l[1];
  frc_error_t err = NULL;

  open_remote(&r, &s, URL);
  OK(frc_git_ls_ref(&r, "hello", oid, err_));
  r.limits.max_pack = 200;
  expect_code(frc_git_read_files(&r, oid, paths, c, l, &err), &err, FRC_ECODE_TOO_BIG,
              "more than 200 bytes of git pack data");
  r.limits.max_pack = (size_t) 1 << 20;
  r.limits.max_object = 2000;
  /* The trees are small; the 14 kB lock is over the bound.  No fallback. */
  expect_code(frc_git_read_files(&r, oid, paths, c, l, &err), &err, FRC_ECODE_TOO_BIG,
              "declared object size");
  ck_assert(!r.full_fetch_only);
  frc_git_remote_release(&r);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("git");
  TCase *tc = tcase_create("git");
  SRunner *sr;
  int failed;

  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_v2);
  tcase_add_test(tc, test_v0);
  tcase_add_test(tc, test_v2_no_filter);
  tcase_add_test(tc, test_v2_prefer_filter);
  tcase_add_test(tc, test_v0_prefer_filter);
  tcase_add_test(tc, test_too_big_falls_back_to_filter);
  tcase_add_test(tc, test_v0_no_filter);
  tcase_add_test(tc, test_refused_blob_wants);
  tcase_add_test(tc, test_not_found);
  tcase_add_test(tc, test_bad_arguments);
  tcase_add_test(tc, test_http_status);
  tcase_add_test(tc, test_credentials_never_in_messages);
  tcase_add_test(tc, test_not_smart);
  tcase_add_test(tc, test_canned_advertisements);
  tcase_add_test(tc, test_canned_results);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_v2_ref_in_want);
  tcase_add_test(tc, test_want_ref_hostile);
  tcase_add_test(tc, test_assume_capabilities);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
