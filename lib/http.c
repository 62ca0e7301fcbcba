#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "dl.h"
#include "http.h"
#include "util.h"

#include "frc-build-config.h"

#define DEFAULT_MAX_BODY (64u << 20)
#define CONNECT_TIMEOUT_MS 10000L

/* After "scheme://" when url has one (RFC 3986 scheme), else url itself:
 * a proxy given without a scheme ("user:pw@host:3128") is still a URL to
 * curl. */
static const char *
authority_of(const char *url)
{
  const char *p = url;
  if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
    return url;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
         || *p == '+' || *p == '-' || *p == '.')
    p++;
  return str_has_prefix(p, "://") ? p + 3 : url;
}

bool
frc_url_userinfo(const char *url, size_t *start, size_t *len)
{
  const char *auth = authority_of(url);
  size_t n = strcspn(auth, "/?#");
  const char *at = NULL;
  /* The last '@': a userinfo with a raw '@' ("u:p@ss@host") is read
   * up to its first '@' by curl and up to its last by WHATWG parsers;
   * either way the credential lies before the last one. */
  for (size_t i = 0; i < n; i++)
    if (auth[i] == '@')
      at = auth + i;
  if (at == NULL)
    return false;
  *start = (size_t) (auth - url);
  *len = (size_t) (at - auth);
  return true;
}

char *
frc_url_redact(const char *url)
{
  size_t start, len;
  if (!frc_url_userinfo(url, &start, &len))
    return xstrdup(url);
  return xasprintf("%.*s%s", (int) start, url, url + start + len + 1);
}

char *
frc_url_mask(const char *url)
{
  size_t start, len;
  if (!frc_url_userinfo(url, &start, &len) || len == 0)
    return xstrdup(url);
  return xasprintf("%.*s" FRC_URL_MASK "%s", (int) start, url, url + start + len);
}

char *
frc_url_mask_text(const char *text)
{
  size_t cap = strlen(text) + 1, n = 0;
  char *out = xmalloc0(cap);
  const char *p = text, *sep;

  while ((sep = strstr(p, "://")) != NULL)
    {
      const char *auth = sep + 3;
      size_t alen = strcspn(auth, "/?#'\"<> \t\r\n");
      const char *at = NULL;
      for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
          at = auth + i;
      if (at == NULL || at == auth)
        {
          memcpy(out + n, p, (size_t) (auth - p));
          n += (size_t) (auth - p);
          p = auth;
          continue;
        }
      /* the mask is never longer than what it replaces plus its own size */
      cap += sizeof(FRC_URL_MASK);
      out = xrealloc(out, cap);
      memcpy(out + n, p, (size_t) (auth - p));
      n += (size_t) (auth - p);
      memcpy(out + n, FRC_URL_MASK, strlen(FRC_URL_MASK));
      n += strlen(FRC_URL_MASK);
      p = at;
    }
  memcpy(out + n, p, strlen(p) + 1);
  return out;
}

struct sink
{
  char *buf;
  size_t len, cap, max;
  int too_big;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
  struct sink *s = userdata;
  size_t n = size * nmemb;
  if (s->len + n > s->max)
    {
      s->too_big = 1;
      return 0; /* aborts the transfer */
    }
  if (s->len + n + 1 > s->cap)
    {
      size_t cap = s->cap ? s->cap : 16384;
      while (cap < s->len + n + 1)
        cap *= 2;
      s->buf = xrealloc(s->buf, cap);
      s->cap = cap;
    }
  memcpy(s->buf + s->len, data, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

struct slist_holder
{
  const struct frc_curl_api *c;
  struct curl_slist *l;
};

static void
slist_release(struct slist_holder *h)
{
  if (h->c && h->l)
    h->c->curl_slist_free_all(h->l);
}

void
frc_http_conn_release(struct frc_http_conn *conn)
{
  const struct frc_curl_api *c;
  frc_error_t ignored = NULL;
  if (conn->handle && (c = frc_dl_curl(&ignored)) != NULL)
    c->curl_easy_cleanup(conn->handle);
  frc_error_release(&ignored);
  conn->handle = NULL;
  conn->have_socket = false;
}

/* Whether bytes wait on the connection the last answer came on, before the
 * next request is sent: whatever they are, they are not its answer. */
static bool
leftovers(const struct frc_http_conn *conn)
{
  struct pollfd p = { conn->socket, POLLIN, 0 };
  char b;
  return conn->have_socket && poll(&p, 1, 0) > 0 && (p.revents & POLLIN)
         && recv(conn->socket, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Remembers the socket the answer came on, while libcurl keeps it open. */
static void
note_socket(const struct frc_curl_api *c, CURL *h, struct frc_http_conn *conn)
{
  curl_socket_t s = CURL_SOCKET_BAD;
  conn->have_socket
      = c->curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK && s != CURL_SOCKET_BAD;
  conn->socket = conn->have_socket ? (int) s : -1;
}

/* After each request the handle forgets its options (pointers into the
 * request's stack, the credentials) and keeps only its connections. */
struct easy_holder
{
  const struct frc_curl_api *c;
  CURL *h;
};

static void
easy_release(struct easy_holder *e)
{
  if (e->c && e->h)
    e->c->curl_easy_reset(e->h);
}

static int
transport_error(frc_error_t *err, const char *what, const char *url, long long deadline_ns)
{
  cleanup_free char *safe = frc_url_redact(url);
  if (deadline_ns && frc_now_ns() >= deadline_ns)
    {
      frc_error(err, "%s: the deadline passed while talking to %s", what, safe);
      return frc_error_code(err, FRC_ECODE_DEADLINE);
    }
  frc_error(err, "cannot reach %s: %s", safe, what);
  return frc_error_code(err, FRC_ECODE_UNREACHABLE);
}

const char *
frc_http_env_ca_file(void)
{
  const char *f = getenv("SSL_CERT_FILE");
  return f && f[0] == '/' ? f : NULL;
}

/* Whether host matches no_proxy as libcurl reads it: "*", or a host name
 * equal to an entry or under it (".example.com" and "example.com" both
 * match a.example.com).  CIDR entries are not matched here. */
static bool
no_proxy_matches(const char *no_proxy, const char *host, size_t hlen)
{
  for (const char *p = no_proxy; p && *p;)
    {
      size_t n = strcspn(p, ", ");
      const char *e = p;
      size_t elen = n;
      if (elen > 0 && e[0] == '.')
        e++, elen--;
      if ((n == 1 && p[0] == '*') || (elen > 0 && elen == hlen && strncasecmp(e, host, hlen) == 0)
          || (elen > 0 && hlen > elen && host[hlen - elen - 1] == '.'
              && strncasecmp(e, host + hlen - elen, elen) == 0))
        return true;
      p += n;
      p += strspn(p, ", ");
    }
  return false;
}

const char *
frc_http_proxy_in_use(const struct frc_http_opts *o, const char *url)
{
  bool https = str_has_prefix(url, "https://");
  const char *p = o->proxy, *np = o->no_proxy, *host = strstr(url, "://"), *end;
  if (p == NULL)
    {
      p = getenv(https ? "https_proxy" : "http_proxy");
      if ((p == NULL || !*p) && https)
        p = getenv("HTTPS_PROXY");
    }
  if (p == NULL || !*p || host == NULL)
    return NULL;
  if (np == NULL)
    np = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
  host += 3;
  end = host + strcspn(host, "/?#");
  if (memchr(host, '@', (size_t) (end - host)))
    host = (const char *) memchr(host, '@', (size_t) (end - host)) + 1;
  if (*host == '[')
    end = host + strcspn(host, "]") + 1;
  else
    end = host + strcspn(host, ":/?#");
  return no_proxy_matches(np, host, (size_t) (end - host)) ? NULL : p;
}

/* X509_V_ERR_* values of OpenSSL's verify result (stable ABI numbers). */
#define X509_ERR_UNABLE_TO_GET_ISSUER_CERT 2
#define X509_ERR_CERT_NOT_YET_VALID 9
#define X509_ERR_CERT_HAS_EXPIRED 10
#define X509_ERR_DEPTH_ZERO_SELF_SIGNED_CERT 18
#define X509_ERR_SELF_SIGNED_CERT_IN_CHAIN 19
#define X509_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY 20
#define X509_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE 21
#define X509_ERR_HOSTNAME_MISMATCH 62

/* A TLS failure as one line saying which check failed and how to fix it
 * (in *err, code FRC_ECODE_UNREACHABLE); false when rc is not one. */
static bool
tls_error(const struct frc_curl_api *c, CURL *h, CURLcode rc, const char *curl_err,
          const struct frc_http_opts *o, const char *url, frc_error_t *err)
{
  cleanup_free char *safe = frc_url_redact(url);
  const char *trust = o->ca_file                ? "the ca_file of the node config"
                      : frc_http_env_ca_file() ? "$SSL_CERT_FILE"
                      : o->ca_pem              ? "the given CA bundle"
                                               : "the system's CA bundle";
  long v = 0;

  if (rc == CURLE_SSL_CACERT_BADFILE)
    frc_error(err, "cannot reach %s: the CA bundle (%s) cannot be loaded (%s): fix the path and "
                   "contents of ca_file",
              safe, trust, curl_err);
  else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM)
    {
      c->curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &v);
      if (v == X509_ERR_CERT_HAS_EXPIRED)
        frc_error(err, "cannot reach %s: its TLS certificate has expired (%s): the server must "
                       "renew it (or this node's clock is wrong)",
                  safe, curl_err);
      else if (v == X509_ERR_CERT_NOT_YET_VALID)
        frc_error(err, "cannot reach %s: its TLS certificate is not valid yet (%s): check this "
                       "node's clock",
                  safe, curl_err);
      else if (v == X509_ERR_HOSTNAME_MISMATCH || strstr(curl_err, "host name"))
        frc_error(err, "cannot reach %s: its TLS certificate is for another host name (%s): use "
                       "the host name the certificate names in the URL",
                  safe, curl_err);
      else if (v == X509_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_ERR_SELF_SIGNED_CERT_IN_CHAIN
               || v == X509_ERR_UNABLE_TO_GET_ISSUER_CERT
               || v == X509_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
               || v == X509_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
        frc_error(err, "cannot reach %s: its TLS certificate is not signed by a CA in %s (%s): "
                       "set ca_file in the node config to the CA that signs it (or add it to the "
                       "system's bundle)",
                  safe, trust, curl_err);
      else
        frc_error(err, "cannot reach %s: its TLS certificate was refused (%s): check ca_file "
                       "and the server's certificate",
                  safe, curl_err);
    }
  else
    return false;
  frc_error_code(err, FRC_ECODE_UNREACHABLE);
  return true;
}

int
frc_http_request(const struct frc_http_opts *o, const char *method, const char *url,
                 const char *const *headers, const void *body, size_t body_len,
                 struct frc_http_response *resp, frc_error_t *err)
{
  struct frc_http_conn conn = { .handle = NULL };
  int rc = frc_http_request_on(&conn, o, method, url, headers, body, body_len, resp, err);
  frc_http_conn_release(&conn);
  return rc;
}

int
frc_http_request_on(struct frc_http_conn *conn, const struct frc_http_opts *o, const char *method,
                    const char *url, const char *const *headers, const void *body,
                    size_t body_len, struct frc_http_response *resp, frc_error_t *err)
{
  const struct frc_curl_api *c = frc_dl_curl(err);
  struct sink sink = { 0 };
  struct easy_holder easy __attribute__((cleanup(easy_release))) = { c, NULL };
  struct slist_holder hdrs __attribute__((cleanup(slist_release))) = { c, NULL };
  char curl_err[CURL_ERROR_SIZE] = "";
  CURLcode rc;
  long long timeout_ms = 0;
  char *ctype = NULL;

  memset(resp, 0, sizeof(*resp));
  if (c == NULL)
    return -1;
  sink.max = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
  if (o->deadline_ns)
    {
      timeout_ms = (o->deadline_ns - frc_now_ns()) / 1000000LL;
      if (timeout_ms <= 0)
        return transport_error(err, "no time left", url, o->deadline_ns);
    }
  if (conn->handle && leftovers(conn))
    frc_http_conn_release(conn); /* closes it */
  if (conn->handle == NULL)
    conn->handle = c->curl_easy_init();
  if (conn->handle == NULL)
    return frc_error(err, "cannot initialise libcurl");
  easy.h = conn->handle;

  for (const char *const *h = headers; h && *h; h++)
    hdrs.l = c->curl_slist_append(hdrs.l, *h);
  /* git's smart HTTP does not want curl's "Expect: 100-continue" delays. */
  hdrs.l = c->curl_slist_append(hdrs.l, "Expect:");

  c->curl_easy_setopt(easy.h, CURLOPT_URL, url);
  c->curl_easy_setopt(easy.h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* https never redirects to plain http: the credentials and the answer
   * would travel in clear. */
  c->curl_easy_setopt(easy.h, CURLOPT_REDIR_PROTOCOLS_STR,
                      str_has_prefix(url, "https://") ? "https" : "http,https");
  c->curl_easy_setopt(easy.h, CURLOPT_FOLLOWLOCATION, 1L);
  c->curl_easy_setopt(easy.h, CURLOPT_MAXREDIRS, 5L);
  c->curl_easy_setopt(easy.h, CURLOPT_UNRESTRICTED_AUTH, 0L);
  c->curl_easy_setopt(easy.h, CURLOPT_NOSIGNAL, 1L);
  c->curl_easy_setopt(easy.h, CURLOPT_NOPROGRESS, 1L);
  c->curl_easy_setopt(easy.h, CURLOPT_ERRORBUFFER, curl_err);
  c->curl_easy_setopt(easy.h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  if (timeout_ms > 0)
    c->curl_easy_setopt(easy.h, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
  c->curl_easy_setopt(easy.h, CURLOPT_ACCEPT_ENCODING, "");
  if (o->proxy)
    c->curl_easy_setopt(easy.h, CURLOPT_PROXY, o->proxy);
  if (o->no_proxy)
    c->curl_easy_setopt(easy.h, CURLOPT_NOPROXY, o->no_proxy);
  c->curl_easy_setopt(easy.h, CURLOPT_USERAGENT, "flox-runc/" FLOX_RUNC_VERSION);
  c->curl_easy_setopt(easy.h, CURLOPT_HTTPHEADER, hdrs.l);
  c->curl_easy_setopt(easy.h, CURLOPT_WRITEFUNCTION, on_body);
  c->curl_easy_setopt(easy.h, CURLOPT_WRITEDATA, &sink);
  if (o->ca_pem)
    {
      struct curl_blob blob = { (void *) o->ca_pem, o->ca_pem_len, CURL_BLOB_COPY };
      c->curl_easy_setopt(easy.h, CURLOPT_CAINFO_BLOB, &blob);
    }
  else if (o->ca_file)
    c->curl_easy_setopt(easy.h, CURLOPT_CAINFO, o->ca_file);
  else if (frc_http_env_ca_file())
    c->curl_easy_setopt(easy.h, CURLOPT_CAINFO, frc_http_env_ca_file());
  if (o->user)
    {
      c->curl_easy_setopt(easy.h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      c->curl_easy_setopt(easy.h, CURLOPT_USERNAME, o->user);
      c->curl_easy_setopt(easy.h, CURLOPT_PASSWORD, o->password ? o->password : "");
    }
  if (strcmp(method, "POST") == 0)
    {
      c->curl_easy_setopt(easy.h, CURLOPT_POST, 1L);
      c->curl_easy_setopt(easy.h, CURLOPT_POSTFIELDS, body ? body : "");
      c->curl_easy_setopt(easy.h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
    }

  rc = c->curl_easy_perform(easy.h);
  note_socket(c, easy.h, conn);
  if (rc != CURLE_OK)
    {
      free(sink.buf);
      if (sink.too_big)
        {
          cleanup_free char *safe = frc_url_redact(url);
          frc_error(err, "the answer of %s is larger than %zu bytes", safe, sink.max);
          return frc_error_code(err, FRC_ECODE_TOO_BIG);
        }
      if (rc == CURLE_OPERATION_TIMEDOUT && timeout_ms > 0)
        {
          /* curl's timeout is the time left before the deadline */
          cleanup_free char *safe = frc_url_redact(url);
          frc_error(err, "the deadline passed while talking to %s (%s)", safe,
                    curl_err[0] ? curl_err : c->curl_easy_strerror(rc));
          return frc_error_code(err, FRC_ECODE_DEADLINE);
        }
      if (!curl_err[0])
        snprintf(curl_err, sizeof(curl_err), "%s", c->curl_easy_strerror(rc));
      if (tls_error(c, easy.h, rc, curl_err, o, url, err))
        return -1;
      if (rc == CURLE_UNSUPPORTED_PROTOCOL && str_has_prefix(url, "https://"))
        {
          cleanup_free char *safe = frc_url_redact(url);
          frc_error(err, "cannot reach %s: it redirects to a plain http URL, which flox-runc "
                         "refuses (%s): use the final https URL",
                    safe, curl_err);
          return frc_error_code(err, FRC_ECODE_UNREACHABLE);
        }
      {
        const char *proxy = frc_http_proxy_in_use(o, url);
        if (proxy && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_PROXY
                      || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
                      || rc == CURLE_GOT_NOTHING))
          {
            cleanup_free char *safe = frc_url_redact(url);
            cleanup_free char *psafe = frc_url_redact(proxy);
            frc_error(err, "cannot reach %s through the proxy %s (%s): check that proxy, or the "
                           "http_proxy/https_proxy/no_proxy of the node config or environment",
                      safe, psafe, curl_err);
            return frc_error_code(err, FRC_ECODE_UNREACHABLE);
          }
      }
      return transport_error(err, curl_err, url, o->deadline_ns);
    }
  c->curl_easy_getinfo(easy.h, CURLINFO_RESPONSE_CODE, &resp->status);
  if (c->curl_easy_getinfo(easy.h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
    resp->content_type = xstrdup(ctype);
  {
    long nredirects = 0;
    char *eff = NULL;
    if (c->curl_easy_getinfo(easy.h, CURLINFO_REDIRECT_COUNT, &nredirects) == CURLE_OK
        && nredirects > 0 && c->curl_easy_getinfo(easy.h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK
        && eff)
      resp->redirected_to = xstrdup(eff);
  }
  resp->body = sink.buf ? sink.buf : xmalloc0(1);
  resp->len = sink.len;
  return 0;
}

void
frc_http_response_release(struct frc_http_response *r)
{
  free(r->body);
  free(r->content_type);
  free(r->redirected_to);
  memset(r, 0, sizeof(*r));
}
