/* git.h - read-only git smart-HTTP client for FloxHub's floxmeta repositories.
 *
 * Owns: the conversation with one remote repository URL: discovery
 * (GET info/refs with "Git-Protocol: version=2"; protocol v2 when the server
 * answers with capabilities, else the v0 smart protocol), looking up one
 * branch (v2 ls-refs, or the v0 ref advertisement; or none: a v2 fetch by
 * want-ref where offered), fetching one commit at
 * depth 1 in one request as git does (only its trees, then blobs by id, when
 * that is too big and the server supports filters; one full fetch when it
 * refuses wants by id), and reading files and directories of the fetched
 * commit, all over one kept-alive connection (never used again after a
 * failed request or a refused answer).  Capabilities are asked for
 * as git's client does and only when offered (docs/design.md, "FloxHub's
 * git protocol").  Every object used comes out of lib/pack's store, so it
 * is verified by SHA-1; every size is bounded.  Error codes: HTTP 401/403
 * FRC_ECODE_AUTH, 404 and missing branches or paths FRC_ECODE_NOT_FOUND,
 * 5xx, ERR lines, band-3 messages and protocol violations FRC_ECODE_SERVER,
 * transport failures as lib/http sets them (UNREACHABLE, DEADLINE, TOO_BIG).
 * Credentials never appear in a message.
 */
#ifndef FRC_GIT_H
#define FRC_GIT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "http.h"
#include "pack.h"

/* The shape of frc_http_request(), with a context pointer: the tests put
 * `git http-backend` run as a CGI program behind it. */
typedef int (*frc_git_transport_fn)(void *data, const struct frc_http_opts *o, const char *method,
                                    const char *url, const char *const *headers, const void *body,
                                    size_t body_len, struct frc_http_response *resp,
                                    frc_error_t *err);

struct frc_git_ref
{
  char *name;
  char oid[FRC_OID_HEX + 1];
};

struct frc_git_remote
{
  char *url; /* the repository, without a trailing '/' */
  struct frc_http_opts http; /* its strings are copies owned here */
  struct frc_pack_limits limits; /* defaults; set before the first call to change them */
  frc_git_transport_fn transport; /* NULL: frc_http_request_on over conn */
  void *transport_data;
  struct frc_http_conn conn; /* one connection for all the requests (keep-alive) */

  /* Learnt by discovery (the first call that needs the server). */
  bool discovered;
  int version; /* 2, or 0 for a v0/v1 ref advertisement */
  char **caps; /* v2: capability lines ("fetch=shallow filter"); v0: capability words */
  bool filter; /* the server accepts "filter blob:none" */
  bool shallow; /* the server accepts "deepen" */
  bool ref_in_want; /* v2: the server accepts "want-ref" (fetch=... ref-in-want) */
  bool ref_in_want_failed; /* a fetch by want-ref failed: look branches up with ls-refs */
  struct frc_git_ref *refs; /* v0: the advertised refs */
  size_t n_refs;
  bool assumed; /* what discovery learns came from frc_git_remote_assume() */
  char *advertisement; /* v2, asked now, not redirected: the answer, for assume */
  size_t advertisement_len;
  bool redirected; /* discovery was redirected (an owner moved): nothing learnt for the hub */

  /* Fetch the commit with its trees only (filter blob:none, when offered),
   * then the files read by id: fewer bytes, more requests.  Default false:
   * one depth-1 fetch of everything, as git fetches; set by itself when
   * that is over limits.max_pack. */
  bool prefer_filter;

  struct frc_odb odb; /* every object fetched so far */
  bool full_fetch_only; /* the server refused wants of blobs by id */

  long status; /* HTTP status of the last answer; 0: none arrived */

  /* Counters, for tests and `flox-runc resolve`. */
  unsigned requests; /* HTTP requests made */
  unsigned long long bytes_received; /* response body bytes */
  unsigned long long pack_bytes; /* of which packfile bytes */
};

/* url: http:// or https:// (the repository, e.g. https://api.flox.dev/git/acme/floxmeta).
 * http is copied (deadline, CA file, basic-auth credentials); max_body is
 * chosen per request here.  No request is made yet. */
int frc_git_remote_init(struct frc_git_remote *r, const char *url, const struct frc_http_opts *http,
                        frc_error_t *err);
void frc_git_remote_release(struct frc_git_remote *r);
unsigned frc_git_remote_requests(const struct frc_git_remote *r);

/* At most this many bytes of a v2 capability advertisement are kept. */
#define FRC_GIT_CAPS_MAX 65536

/* Skips discovery (GET info/refs): adv is the v2 capability advertisement an
 * earlier conversation with this server received (its `advertisement`),
 * parsed as then.  Only a v2 one is taken (a v0 advertisement holds the
 * refs of its time); false when adv is not one: the remote then discovers
 * as usual.  A server that changed since may refuse what the assumed
 * capabilities ask: frc_git_remote_rediscover() and ask again. */
bool frc_git_remote_assume(struct frc_git_remote *r, const char *adv, size_t len);
/* Forgets what discovery learnt or assumed (and that a fetch by want-ref
 * failed, maybe because of it): the next call asks the server. */
void frc_git_remote_rediscover(struct frc_git_remote *r);

/* The commit id (40 lowercase hex digits) of branch refs/heads/<branch>;
 * FRC_ECODE_NOT_FOUND when the repository has no such branch. */
int frc_git_ls_ref(struct frc_git_remote *r, const char *branch, char oid_hex[FRC_OID_HEX + 1],
                   frc_error_t *err);

/* The same commit id, fetched with its files in the same request where the
 * server offers v2 "ref-in-want" (a depth-1 fetch naming the branch: no
 * ls-refs round trip); elsewhere, or when that fetch fails for another
 * reason than authorisation, transport or deadline, it is frc_git_ls_ref
 * and the commit is fetched when first read. */
int frc_git_fetch_branch(struct frc_git_remote *r, const char *branch,
                         char oid_hex[FRC_OID_HEX + 1], frc_error_t *err);

/* Reads files of commit commit_hex: paths is NULL-terminated ("metadata.json",
 * "3/env/manifest.lock"); contents[i] is malloc'd and NUL-terminated,
 * lens[i] its length.  A missing path (or one that is not a regular file)
 * is FRC_ECODE_NOT_FOUND naming it.  On error nothing is allocated. */
int frc_git_read_files(struct frc_git_remote *r, const char *commit_hex, const char *const *paths,
                       char **contents, size_t *lens, frc_error_t *err);

struct frc_git_dirent
{
  char *name;
  unsigned mode; /* FRC_MODE_TREE, FRC_MODE_BLOB, FRC_MODE_EXEC, FRC_MODE_LINK, FRC_MODE_GITLINK */
};

/* Lists directory dir ("" for the top) of commit commit_hex, in git's
 * order, without fetching any file.  *entries is malloc'd (*n of them). */
int frc_git_list_dir(struct frc_git_remote *r, const char *commit_hex, const char *dir,
                     struct frc_git_dirent **entries, size_t *n, frc_error_t *err);
void frc_git_dirents_free(struct frc_git_dirent *entries, size_t n);

/* The mode of path in commit commit_hex, without fetching it;
 * FRC_ECODE_NOT_FOUND when absent.  E.g. whether "3/env/manifest.lock" exists. */
int frc_git_stat(struct frc_git_remote *r, const char *commit_hex, const char *path,
                 unsigned *mode, frc_error_t *err);

#endif
