/* http.h - one HTTP request over libcurl (loaded by lib/dl.c).
 *
 * Owns: the transport rules for everything flox-runc fetches: http and https
 * only, https never redirected to http and credentials never sent to
 * another host, proxy variables honoured as libcurl does (http_proxy,
 * https_proxy, no_proxy), a CA file option ($SSL_CERT_FILE when none, as
 * Nix reads it), TLS failures named (untrusted, expired, wrong host name,
 * each with its fix), a connect timeout, an absolute
 * deadline for the whole request, and a bound on the (decoded) body size.
 * Credentials go as HTTP basic auth and never appear in a message.
 */
#ifndef FRC_HTTP_H
#define FRC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct frc_http_opts
{
  const char *ca_file; /* NULL: the system's CA store */
  const void *ca_pem; /* the CA bundle's bytes, read before a privilege drop; wins over ca_file */
  size_t ca_pem_len;
  const char *user; /* basic auth user, NULL for none */
  const char *password;
  long long deadline_ns; /* CLOCK_MONOTONIC; 0: none */
  /* The proxy for this URL's scheme and the hosts without one (the node
   * config's keys); NULL: libcurl's reading of http_proxy, https_proxy and
   * no_proxy in the environment. */
  const char *proxy;
  const char *no_proxy;
  size_t max_body; /* 0: 64 MiB */
};

struct frc_http_response
{
  long status;
  char *body; /* NUL-terminated, len bytes */
  size_t len;
  char *content_type; /* NULL when absent */
  char *redirected_to; /* the URL answered after following redirects, NULL: not redirected */
};

/* A connection kept open across requests (HTTP keep-alive, TLS session):
 * the requests of one FloxHub conversation share it.  { .handle = NULL }: none yet.
 * When bytes wait on it before a request is sent (a server that sent more
 * than its answer), it is not used again: they would be read as the answer
 * (libcurl 7.88 reuses such a connection). */
struct frc_http_conn
{
  void *handle; /* libcurl's easy handle, which keeps its connections */
  bool have_socket; /* socket: the one the last answer came on, still open */
  int socket;
};
void frc_http_conn_release(struct frc_http_conn *conn);

/* Performs one request.  Returns 0 when a complete response arrived, whatever
 * its status; -1 with *err otherwise (code FRC_ECODE_UNREACHABLE for transport
 * failures and truncated bodies, FRC_ECODE_TOO_BIG over max_body,
 * FRC_ECODE_DEADLINE when the deadline passed).  headers: NULL-terminated
 * "Name: value" strings. */
int frc_http_request(const struct frc_http_opts *o, const char *method, const char *url,
                     const char *const *headers, const void *body, size_t body_len,
                     struct frc_http_response *resp, frc_error_t *err);
/* The same over conn: a connection it kept open to the same server (and
 * proxy) is used again, else a new one is kept open in it. */
int frc_http_request_on(struct frc_http_conn *conn, const struct frc_http_opts *o,
                        const char *method, const char *url, const char *const *headers,
                        const void *body, size_t body_len, struct frc_http_response *resp,
                        frc_error_t *err);
void frc_http_response_release(struct frc_http_response *r);
#define cleanup_http_response __attribute__((cleanup(frc_http_response_release)))

/* $SSL_CERT_FILE when it is an absolute path (the CA bundle used when no
 * ca_file is given), else NULL. */
const char *frc_http_env_ca_file(void);

/* The proxy a request to url goes through (o->proxy, else the environment's
 * variable for its scheme; none when the host is in no_proxy), for messages;
 * NULL: none. */
const char *frc_http_proxy_in_use(const struct frc_http_opts *o, const char *url);


/* The userinfo of url ("scheme://USERINFO@host..."; a URL without a scheme,
 * as proxies may be given, starts with its authority): [*start, +*len),
 * before the last '@' of the authority (which ends at the first '/', '?' or
 * '#'), so a raw '@' in a password is inside.  false: no userinfo. */
bool frc_url_userinfo(const char *url, size_t *start, size_t *len);
/* url without any userinfo, for messages (malloc'd). */
char *frc_url_redact(const char *url);
/* url with a non-empty userinfo replaced by FRC_URL_MASK (malloc'd), for
 * `flox-runc config`: shows that credentials are set, never them.
 * Idempotent, and the result is a valid URL wherever url was one. */
#define FRC_URL_MASK "***"
char *frc_url_mask(const char *url);
/* text (a program's message: Nix quotes the URLs it fetched) with the
 * userinfo of every "scheme://USERINFO@host" in it masked as frc_url_mask
 * does; an authority ends at '/', '?', '#', a quote, '<', '>' or white
 * space (malloc'd). */
char *frc_url_mask_text(const char *text);

#endif
