#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "config.h"
#include "http.h"
#include "json.h"
#include "lockfile.h"
#include "util.h"

#include "frc-build-config.h"

static const char *const default_substituters[] = {
  "https://cache.nixos.org",
  "https://cache.flox.dev",
  NULL,
};
static const char *const default_keys[] = {
  "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
  "flox-cache-public-1:7F4OyH7ZCnFhcze3fJdfyXYLQw/aV7GEed86nQ7IsOs=",
  NULL,
};

enum key_type
{
  KEY_STRING,
  KEY_STRING_LIST,
  KEY_INT,
  KEY_BOOL,
  KEY_ENUM_ON_MISSING,
};

/* How a string value is checked. */
enum key_check
{
  CHECK_NONE,
  CHECK_ABS_PATH,
  CHECK_HTTP_URL,
  CHECK_RUNTIME,
  CHECK_PUBLIC_KEY,
  CHECK_BASH,
};

struct key_def
{
  const char *name;
  enum key_type type;
  enum key_check check;
  size_t offset;
  long min, max; /* KEY_INT */
};

#define F(field) offsetof(struct frc_config, field)
static const struct key_def keys[] = {
  { "runtime", KEY_STRING, CHECK_RUNTIME, F(runtime), 0, 0 },
  { "floxhub_url", KEY_STRING, CHECK_HTTP_URL, F(floxhub_url), 0, 0 },
  { "floxhub_git_url", KEY_STRING, CHECK_HTTP_URL, F(floxhub_git_url), 0, 0 },
  { "store_root", KEY_STRING, CHECK_ABS_PATH, F(store_root), 0, 0 },
  { "state_dir", KEY_STRING, CHECK_ABS_PATH, F(state_dir), 0, 0 },
  { "substituters", KEY_STRING_LIST, CHECK_HTTP_URL, F(substituters), 0, 0 },
  { "trusted_public_keys", KEY_STRING_LIST, CHECK_PUBLIC_KEY, F(trusted_public_keys), 0, 0 },
  { "on_missing_environment", KEY_ENUM_ON_MISSING, CHECK_NONE, F(on_missing_environment), 0, 0 },
  { "deadline_seconds", KEY_INT, CHECK_NONE, F(deadline_seconds), 1, 3600 },
  { "ca_file", KEY_STRING, CHECK_ABS_PATH, F(ca_file), 0, 0 },
  { "http_proxy", KEY_STRING, CHECK_HTTP_URL, F(http_proxy), 0, 0 },
  { "https_proxy", KEY_STRING, CHECK_HTTP_URL, F(https_proxy), 0, 0 },
  { "no_proxy", KEY_STRING, CHECK_NONE, F(no_proxy), 0, 0 },
  { "fresh_seconds", KEY_INT, CHECK_NONE, F(fresh_seconds), 0, 86400 },
  { "auth_window_seconds", KEY_INT, CHECK_NONE, F(auth_window_seconds), 0, 86400 },
  { "bash", KEY_STRING, CHECK_BASH, F(bash), 0, 0 },
  { "container_ca_bundle", KEY_STRING, CHECK_ABS_PATH, F(container_ca_bundle), 0, 0 },
  { "gc_max_age_seconds", KEY_INT, CHECK_NONE, F(gc_max_age_seconds), 0, 315360000 },
  { "fetch_uid", KEY_INT, CHECK_NONE, F(fetch_uid), 1, 2147483646 },
  { "fetch_gid", KEY_INT, CHECK_NONE, F(fetch_gid), 1, 2147483646 },
  { "nix_mutable_max_bytes", KEY_INT, CHECK_NONE, F(nix_mutable_max_bytes), 1L << 20, 1L << 40 },
  { "closure_hook_min_paths", KEY_INT, CHECK_NONE, F(closure_hook_min_paths), 1, 1000000 },
  { "share_tree_symlinks", KEY_BOOL, CHECK_NONE, F(share_tree_symlinks), 0, 0 },
  { "draft_tree", KEY_BOOL, CHECK_NONE, F(draft_tree), 0, 0 },
  { "pin_views", KEY_BOOL, CHECK_NONE, F(pin_views), 0, 0 },
  { "allow_criu_config_annotation", KEY_BOOL, CHECK_NONE, F(allow_criu_config_annotation), 0, 0 },
  { NULL, 0, 0, 0, 0, 0 },
};

const char *
frc_config_path(void)
{
  const char *p = getenv(FRC_CONFIG_ENV);
  return p && p[0] ? p : FLOX_RUNC_DEFAULT_CONFIG;
}

static char **
strv_copy(const char *const *v)
{
  size_t n = 0;
  char **r;
  while (v[n])
    n++;
  r = xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    r[i] = xstrdup(v[i]);
  return r;
}

static void
set_defaults(struct frc_config *c)
{
  c->floxhub_url = xstrdup("https://hub.flox.dev");
  c->store_root = xstrdup("/");
  c->state_dir = xstrdup(FLOX_RUNC_DEFAULT_STATE_DIR);
  c->substituters = strv_copy(default_substituters);
  c->trusted_public_keys = strv_copy(default_keys);
  c->on_missing_environment = FRC_ON_MISSING_FAIL;
  c->deadline_seconds = 110;
  c->fresh_seconds = 10;
  c->auth_window_seconds = 300;
  c->gc_max_age_seconds = 7 * 24 * 3600;
  c->fetch_uid = 65534; /* nobody */
  c->fetch_gid = 65534; /* nogroup */
  c->bash = xstrdup(FRC_DEFAULT_BASH);
  c->nix_mutable_max_bytes = 1L << 30;
  c->share_tree_symlinks = true;
  c->draft_tree = true;
  c->pin_views = true;
  c->allow_criu_config_annotation = false;
  c->closure_hook_min_paths = 4;
}

/* /nix/store/<hash>-name/rest -> /nix/store/<hash>-name, or NULL. */
static char *
store_package_of(const char *file)
{
  const char *slash;
  char *pkg;
  if (!str_has_prefix(file, "/nix/store/"))
    return NULL;
  slash = strchr(file + strlen("/nix/store/"), '/');
  if (slash == NULL || strstr(file, "/../") || strstr(file, "/./"))
    return NULL;
  pkg = xstrndup(file, (size_t) (slash - file));
  if (!frc_store_path_valid(pkg))
    {
      free(pkg);
      return NULL;
    }
  return pkg;
}

/* hub.example.com -> api.example.com/git, as FloxHub does; any other host
 * serves git under <url>/git. */
static char *
derive_git_url(const char *hub)
{
  const char *host = strstr(hub, "://");
  size_t hub_len = strlen(hub);

  while (hub_len > 0 && hub[hub_len - 1] == '/')
    hub_len--;
  if (host && str_has_prefix(host + 3, "hub."))
    return xasprintf("%.*s://api.%.*s/git", (int) (host - hub), hub,
                     (int) (hub_len - (size_t) (host + 7 - hub)), host + 7);
  return xasprintf("%.*s/git", (int) hub_len, hub);
}

static bool
has_control_chars(const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static int
check_string(const struct key_def *k, const char *v, const char *origin, frc_error_t *err)
{
  const char *why = NULL;
  size_t n = strlen(v), ustart, ulen;

  /* A URL is printed with its userinfo masked (frc_config_to_json), which
   * must load again: bound that form too. */
  if (k->check == CHECK_HTTP_URL && frc_url_userinfo(v, &ustart, &ulen) && ulen > 0
      && ulen < strlen(FRC_URL_MASK))
    n += strlen(FRC_URL_MASK) - ulen;
  if (has_control_chars(v) || n > 4096)
    why = "a value without control characters, at most 4096 bytes";
  else
    switch (k->check)
      {
      case CHECK_ABS_PATH:
        if (v[0] != '/')
          why = "an absolute path";
        break;
      case CHECK_HTTP_URL:
        {
          /* http(s) with a host: "http://" alone derived the git URL
           * "http:/git" (found by tests/fuzz/fuzz_config.c) */
          const char *host = str_has_prefix(v, "https://")  ? v + 8
                             : str_has_prefix(v, "http://") ? v + 7
                                                            : NULL;
          if (host ? strchr("/?#", *host) != NULL /* also the NUL */
                   : !(k->type == KEY_STRING_LIST && str_has_prefix(v, "file://")))
            why = k->type == KEY_STRING_LIST ? "an http://, https:// or file:// URL"
                                             : "an http:// or https:// URL";
          break;
        }
      case CHECK_RUNTIME:
        if (v[0] == '\0')
          why = "an absolute path or a program name looked up in PATH";
        break;
      case CHECK_BASH:
        {
          char *pkg = store_package_of(v);
          if (v[0] != '/' || (str_has_prefix(v, "/nix/store/") && pkg == NULL))
            why = "the absolute path of a static bash on the node (e.g. /bin/bash-static) or of "
                  "bash inside a store path (e.g. /nix/store/<hash>-bash-5.2/bin/bash)";
          free(pkg);
          break;
        }
      case CHECK_PUBLIC_KEY:
        {
          const char *colon = strchr(v, ':');
          if (colon == NULL || colon == v || colon[1] == '\0')
            why = "a Nix public key `name:base64`";
          break;
        }
      default:
        break;
      }
  if (why == NULL)
    return 0;
  {
    /* Never a credential in a message: a URL-like value loses its userinfo
     * whatever the check (a proxy URL with a bad scheme is still one). */
    cleanup_free char *safe = frc_url_redact(v);
    cleanup_free char *esc = escape_for_message(safe, strlen(safe), 80);
    return frc_error(err, "invalid value \"%s\" for `%s` in %s: expected %s", esc, k->name, origin,
                     why);
  }
}

static const char *
type_name(yajl_val v)
{
  switch (v->type)
    {
    case yajl_t_string: return "a string";
    case yajl_t_number: return "a number";
    case yajl_t_object: return "an object";
    case yajl_t_array: return "an array";
    case yajl_t_true:
    case yajl_t_false: return "a boolean";
    default: return "null";
    }
}

static int
apply_key(struct frc_config *c, const struct key_def *k, yajl_val v, const char *origin,
          frc_error_t *err)
{
  void *field = (char *) c + k->offset;

  switch (k->type)
    {
    case KEY_STRING:
      if (v->type != yajl_t_string)
        return frc_error(err, "`%s` in %s must be a string, not %s", k->name, origin, type_name(v));
      if (check_string(k, v->u.string, origin, err) < 0)
        return -1;
      free(*(char **) field);
      *(char **) field = xstrdup(v->u.string);
      return 0;
    case KEY_STRING_LIST:
      {
        char **list;
        if (v->type != yajl_t_array)
          return frc_error(err, "`%s` in %s must be an array of strings, not %s", k->name, origin,
                           type_name(v));
        if (v->u.array.len > 64)
          return frc_error(err, "`%s` in %s has more than 64 entries", k->name, origin);
        for (size_t i = 0; i < v->u.array.len; i++)
          {
            yajl_val e = v->u.array.values[i];
            if (e->type != yajl_t_string)
              return frc_error(err, "`%s` in %s must be an array of strings: entry %zu is %s",
                               k->name, origin, i, type_name(e));
            if (check_string(k, e->u.string, origin, err) < 0)
              return -1;
          }
        list = xmalloc0((v->u.array.len + 1) * sizeof(char *));
        for (size_t i = 0; i < v->u.array.len; i++)
          list[i] = xstrdup(v->u.array.values[i]->u.string);
        frc_strv_freep((char ***) field);
        *(char ***) field = list;
        return 0;
      }
    case KEY_INT:
      if (v->type != yajl_t_number || !(v->u.number.flags & YAJL_NUMBER_INT_VALID)
          || v->u.number.i < k->min || v->u.number.i > k->max)
        return frc_error(err, "`%s` in %s must be an integer from %ld to %ld", k->name, origin,
                         k->min, k->max);
      *(long *) field = (long) v->u.number.i;
      return 0;
    case KEY_BOOL:
      if (v->type != yajl_t_true && v->type != yajl_t_false)
        return frc_error(err, "`%s` in %s must be true or false, not %s", k->name, origin,
                         type_name(v));
      *(bool *) field = v->type == yajl_t_true;
      return 0;
    case KEY_ENUM_ON_MISSING:
      if (v->type == yajl_t_string && strcmp(v->u.string, "fail") == 0)
        c->on_missing_environment = FRC_ON_MISSING_FAIL;
      else if (v->type == yajl_t_string && strcmp(v->u.string, "passthrough") == 0)
        c->on_missing_environment = FRC_ON_MISSING_PASSTHROUGH;
      else
        return frc_error(err, "`%s` in %s must be \"fail\" or \"passthrough\"", k->name, origin);
      return 0;
    }
  return 0;
}

/* The fields computed from the others, once per load. */
static void
derive(struct frc_config *c)
{
  if (c->floxhub_git_url == NULL)
    c->floxhub_git_url = derive_git_url(c->floxhub_url);
  free(c->bash_package);
  c->bash_package = store_package_of(c->bash);
  c->store_prefix = strcmp(c->store_root, "/") == 0 ? "" : c->store_root;
}

int
frc_config_parse(struct frc_config *c, const char *text, size_t len, const char *origin,
                 frc_error_t *err)
{
  cleanup_json yajl_val root = NULL;

  if (c->floxhub_url == NULL) /* not from frc_config_load: start from the defaults */
    {
      memset(c, 0, sizeof(*c));
      set_defaults(c);
    }
  if (frc_json_parse(text, len, &root, err) < 0)
    return frc_error_wrap(err, "node config %s", origin);
  if (root->type != yajl_t_object)
    return frc_error(err, "node config %s must hold a JSON object", origin);
  for (size_t i = 0; i < root->u.object.len; i++)
    {
      const char *name = root->u.object.keys[i];
      const struct key_def *k = keys;
      while (k->name && strcmp(k->name, name) != 0)
        k++;
      if (k->name == NULL)
        {
          cleanup_free char *esc = escape_for_message(name, strlen(name), 64);
          return frc_error(err,
                           "unknown key `%s` in node config %s: remove it or fix its spelling "
                           "(docs/configuration.md lists the keys)",
                           esc, origin);
        }
      if (apply_key(c, k, root->u.object.values[i], origin, err) < 0)
        return -1;
    }
  derive(c);
  return 0;
}

static int
config_load(struct frc_config *c, const char *path, frc_error_t *err);

int
frc_config_load(struct frc_config *c, const char *path, frc_error_t *err)
{
  if (config_load(c, path, err) < 0)
    {
      frc_config_release(c); /* found by the sanitizer build: doctor leaked it */
      return -1;
    }
  return 0;
}

static int
config_load(struct frc_config *c, const char *path, frc_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  frc_error_t read_err = NULL;

  memset(c, 0, sizeof(*c));
  set_defaults(c);
  c->path = xstrdup(path ? path : frc_config_path());
  if (read_file_bounded(c->path, FRC_CONFIG_MAX_BYTES, &text, &len, &read_err) < 0)
    {
      if (read_err->errno_ == ENOENT)
        {
          frc_error_release(&read_err);
          derive(c);
          return 0;
        }
      *err = read_err;
      return frc_error_wrap(err, "cannot read the node config");
    }
  c->from_file = true;
  return frc_config_parse(c, text, len, c->path, err);
}

void
frc_config_release(struct frc_config *c)
{
  free(c->path);
  free(c->runtime);
  free(c->floxhub_url);
  free(c->floxhub_git_url);
  free(c->store_root);
  free(c->state_dir);
  free(c->ca_file);
  free(c->http_proxy);
  free(c->https_proxy);
  free(c->no_proxy);
  free(c->bash);
  free(c->bash_package);
  free(c->container_ca_bundle);
  frc_strv_freep(&c->substituters);
  frc_strv_freep(&c->trusted_public_keys);
  memset(c, 0, sizeof(*c));
}

void
frc_config_proxy_env(const struct frc_config *c, char *env[7])
{
  size_t n = 0;
  memset(env, 0, 7 * sizeof(*env));
  if (c->http_proxy)
    env[n++] = xasprintf("http_proxy=%s", c->http_proxy);
  if (c->https_proxy)
    {
      env[n++] = xasprintf("https_proxy=%s", c->https_proxy);
      env[n++] = xasprintf("HTTPS_PROXY=%s", c->https_proxy);
    }
  if (c->no_proxy)
    {
      env[n++] = xasprintf("no_proxy=%s", c->no_proxy);
      env[n++] = xasprintf("NO_PROXY=%s", c->no_proxy);
    }
}

static void
gen_str(yajl_gen g, const char *s)
{
  yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

/* A URL key's value as shown: its userinfo (a proxy's user:password@, a
 * cache's token@) masked. */
static void
gen_value(yajl_gen g, const struct key_def *k, const char *s)
{
  cleanup_free char *masked = k->check == CHECK_HTTP_URL ? frc_url_mask(s) : NULL;
  gen_str(g, masked ? masked : s);
}

static void
mask_in_place(char **s)
{
  char *masked = frc_url_mask(*s);
  free(*s);
  *s = masked;
}

void
frc_config_redact(struct frc_config *c)
{
  for (const struct key_def *k = keys; k->name; k++)
    {
      void *field = (char *) c + k->offset;
      if (k->check != CHECK_HTTP_URL)
        continue;
      if (k->type == KEY_STRING && *(char **) field)
        mask_in_place((char **) field);
      else if (k->type == KEY_STRING_LIST)
        for (char **p = *(char ***) field; p && *p; p++)
          mask_in_place(p);
    }
}

static bool
str_eq(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

bool
frc_config_equal(const struct frc_config *a, const struct frc_config *b)
{
  for (const struct key_def *k = keys; k->name; k++)
    {
      const void *fa = (const char *) a + k->offset, *fb = (const char *) b + k->offset;
      switch (k->type)
        {
        case KEY_STRING:
          if (!str_eq(*(char *const *) fa, *(char *const *) fb))
            return false;
          break;
        case KEY_STRING_LIST:
          {
            char *const *p = *(char *const *const *) fa, *const *q = *(char *const *const *) fb;
            for (; p && q && *p && *q; p++, q++)
              if (strcmp(*p, *q) != 0)
                return false;
            if ((p && *p) || (q && *q))
              return false;
            break;
          }
        case KEY_INT:
          if (*(const long *) fa != *(const long *) fb)
            return false;
          break;
        case KEY_BOOL:
          if (*(const bool *) fa != *(const bool *) fb)
            return false;
          break;
        case KEY_ENUM_ON_MISSING:
          if (a->on_missing_environment != b->on_missing_environment)
            return false;
          break;
        }
    }
  return str_eq(a->bash_package, b->bash_package) && strcmp(a->store_prefix, b->store_prefix) == 0;
}

char *
frc_config_to_json(const struct frc_config *c)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t len;
  char *out;

  yajl_gen_config(g, yajl_gen_beautify, 1);
  yajl_gen_map_open(g);
  for (const struct key_def *k = keys; k->name; k++)
    {
      const void *field = (const char *) c + k->offset;
      gen_str(g, k->name);
      switch (k->type)
        {
        case KEY_STRING:
          if (*(char *const *) field)
            gen_value(g, k, *(char *const *) field);
          else
            yajl_gen_null(g);
          break;
        case KEY_STRING_LIST:
          yajl_gen_array_open(g);
          for (char *const *p = *(char *const *const *) field; p && *p; p++)
            gen_value(g, k, *p);
          yajl_gen_array_close(g);
          break;
        case KEY_INT:
          yajl_gen_integer(g, *(const long *) field);
          break;
        case KEY_BOOL:
          yajl_gen_bool(g, *(const bool *) field);
          break;
        case KEY_ENUM_ON_MISSING:
          gen_str(g, c->on_missing_environment == FRC_ON_MISSING_FAIL ? "fail" : "passthrough");
          break;
        }
    }
  yajl_gen_map_close(g);
  yajl_gen_get_buf(g, &buf, &len);
  out = xstrndup((const char *) buf, len);
  yajl_gen_free(g);
  return out;
}
