#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "token.h"
#include "util.h"

#define FIX_EXPIRED                                                                                \
  "create a new one with `flox auth token | kubectl create secret generic floxhub-token "        \
  "--from-file=floxhub-token=/dev/stdin --dry-run=client -o yaml | kubectl apply -f -`"

static const char *const secret_destinations[] = {
  "/var/run/secrets/flox.dev",
  "/run/secrets/flox.dev",
  NULL,
};

void
frc_token_free(char **token)
{
  if (*token)
    {
      explicit_bzero(*token, strlen(*token));
      free(*token);
    }
  *token = NULL;
}

static bool
is_secret_destination(const char *d)
{
  size_t n = strlen(d);
  while (n > 1 && d[n - 1] == '/')
    n--;
  for (const char *const *s = secret_destinations; *s; s++)
    if (strlen(*s) == n && strncmp(*s, d, n) == 0)
      return true;
  return false;
}

/* Reads a token from fd: bounded, surrounding whitespace trimmed, wiped
 * from the stack.  An empty file gives *token = NULL.  where names the file
 * in messages. */
static int
read_token_fd(int fd, const char *where, char **token, frc_error_t *err)
{
  char buf[FRC_TOKEN_MAX_BYTES + 1];
  ssize_t n;
  size_t len = 0;
  struct stat st;

  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return frc_error(err, "the floxhub-token in `%s` is not a regular file", where);
  while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0)
    {
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          explicit_bzero(buf, sizeof(buf));
          return frc_error_errno(err, errno, "cannot read the floxhub-token secret in `%s`", where);
        }
      len += (size_t) n;
    }
  if (len > FRC_TOKEN_MAX_BYTES)
    {
      explicit_bzero(buf, sizeof(buf));
      return frc_error(err, "the floxhub-token secret in `%s` is larger than %d bytes: it must hold "
                            "only the output of `flox auth token`",
                       where, FRC_TOKEN_MAX_BYTES);
    }
  /* Trim the surrounding whitespace `flox auth token | ...` may leave. */
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '
                     || buf[len - 1] == '\t'))
    len--;
  {
    size_t start = 0;
    while (start < len && (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\n'))
      start++;
    if (start == len)
      {
        explicit_bzero(buf, sizeof(buf));
        return 0; /* empty: anonymous */
      }
    *token = xstrndup(buf + start, len - start);
  }
  explicit_bzero(buf, sizeof(buf));
  return 0;
}

/* Opens the token file found by O_PATH descriptor pfd for reading, after
 * checking what it is: a device node, FIFO or socket a pod planted at the
 * secret path is never open()ed (opening a device runs its driver as host
 * root; a FIFO would block).  The reopen goes through /proc/self/fd, so it
 * is the inode that was checked. */
static int
reopen_regular(int pfd, const char *where, frc_error_t *err)
{
  struct stat st;
  int fd = frc_reopen_regular(pfd, &st);

  if (fd == -2)
    return frc_error(err, "the floxhub-token in `%s` is not a regular file (it is a %s): recreate "
                          "the secret with `kubectl create secret generic floxhub-token ...`",
                     where, frc_file_kind(st.st_mode));
  if (fd < 0)
    return frc_error_errno(err, errno, "cannot open the floxhub-token secret in `%s` (is /proc "
                                       "mounted?)",
                           where);
  return fd;
}

int
frc_token_read_dir(const char *dir, char **token, frc_error_t *err)
{
  struct open_how how = {
    /* O_PATH: nothing is opened for reading before reopen_regular has
     * checked that it is a regular file. */
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
  };
  cleanup_close int dfd = -1;
  cleanup_close int pfd = -1;
  cleanup_close int fd = -1;

  *token = NULL;
  dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return frc_error_errno(err, errno, "cannot open the floxhub-token secret volume `%s`", dir);
  pfd = (int) syscall(SYS_openat2, dfd, FRC_TOKEN_FILE, &how, sizeof(how));
  if (pfd < 0 && errno == ENOENT)
    return 0; /* the volume has no token: anonymous */
  if (pfd < 0 && errno == EXDEV)
    return frc_error(err, "the floxhub-token in `%s` links outside its secret volume: recreate the "
                          "secret with `kubectl create secret generic floxhub-token ...`",
                     dir);
  if (pfd < 0)
    return frc_error_errno(err, errno, "cannot open the floxhub-token secret in `%s`", dir);
  fd = reopen_regular(pfd, dir, err);
  if (fd < 0)
    return -1;
  return read_token_fd(fd, dir, token, err);
}

int
frc_token_read_file(const char *path, char **token, frc_error_t *err)
{
  cleanup_close int pfd = open(path, O_PATH | O_CLOEXEC);
  cleanup_close int fd = -1;
  *token = NULL;
  if (pfd < 0)
    return frc_error_errno(err, errno, "cannot open the token file `%s`", path);
  fd = reopen_regular(pfd, path, err);
  if (fd < 0)
    return -1;
  return read_token_fd(fd, path, token, err);
}

int
frc_token_from_spec(const struct frc_spec *s, char **token, frc_error_t *err)
{
  yajl_val mounts = frc_json_get(s->doc.root, "mounts");

  *token = NULL;
  if (mounts == NULL || mounts->type != yajl_t_array)
    return 0;
  for (size_t i = mounts->u.array.len; i > 0; i--)
    {
      yajl_val m = mounts->u.array.values[i - 1];
      const char *dest = frc_json_get_string(m, "destination");
      const char *src = frc_json_get_string(m, "source");
      if (dest == NULL || !is_secret_destination(dest))
        continue;
      if (src == NULL || src[0] != '/' || strstr(src, "/../") || strlen(src) > 4096)
        return frc_error(err, "the mount at `%s` has no usable absolute source", dest);
      return frc_token_read_dir(src, token, err);
    }
  return 0;
}

/* base64url without padding into out; returns the length or -1. */
static ssize_t
b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
  unsigned val = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++)
    {
      char c = in[i];
      int v;
      if (c >= 'A' && c <= 'Z')
        v = c - 'A';
      else if (c >= 'a' && c <= 'z')
        v = c - 'a' + 26;
      else if (c >= '0' && c <= '9')
        v = c - '0' + 52;
      else if (c == '-' || c == '+')
        v = 62;
      else if (c == '_' || c == '/')
        v = 63;
      else if (c == '=')
        break;
      else
        return -1;
      val = (val << 6) | (unsigned) v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          if (o >= cap)
            return -1;
          out[o++] = (unsigned char) (val >> bits);
          val &= (1u << bits) - 1;
        }
    }
  return (ssize_t) o;
}

int
frc_token_check(const char *token, long long now, frc_error_t *err)
{
  const char *dot1, *dot2;
  unsigned char payload[FRC_TOKEN_MAX_BYTES];
  ssize_t plen;
  cleanup_json yajl_val claims = NULL;
  frc_error_t ignored = NULL;
  yajl_val exp;

  for (const char *p = token; *p; p++)
    if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
      return frc_error(err, "the floxhub-token secret holds characters a token cannot have: it must "
                            "hold only the output of `flox auth token`");
  if (str_has_prefix(token, "flox_"))
    return 0; /* an opaque access token */
  dot1 = strchr(token, '.');
  dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
    return 0; /* not a JWT: let FloxHub judge it */
  plen = b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), payload, sizeof(payload) - 1);
  if (plen > 0)
    payload[plen] = '\0'; /* yajl_tree_parse reads up to a NUL */
  if (plen <= 0 || frc_json_parse((const char *) payload, (size_t) plen, &claims, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return frc_error(err, "the floxhub-token secret holds a malformed JWT: " FIX_EXPIRED);
    }
  exp = frc_json_get(claims, "exp");
  if (exp && exp->type == yajl_t_number && exp->u.number.d > 0 && exp->u.number.d <= (double) now)
    {
      time_t t = (time_t) exp->u.number.d;
      struct tm tm;
      char when[32];
      gmtime_r(&t, &tm);
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
      frc_error(err, "the FloxHub token in the floxhub-token secret expired at %s: " FIX_EXPIRED,
                when);
      return frc_error_code(err, FRC_ECODE_AUTH);
    }
  return 0;
}

int
frc_token_load_checked(const char *path, char **token, frc_error_t *err)
{
  if (frc_token_read_file(path, token, err) < 0)
    return -1;
  if (*token && frc_token_check(*token, (long long) time(NULL), err) < 0)
    {
      frc_token_free(token);
      return -1;
    }
  return 0;
}
