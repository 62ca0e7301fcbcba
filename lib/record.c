#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "record.h"
#include "util.h"

#define RECORD_MAX_BYTES (1u << 20)

bool
frc_container_id_valid(const char *id)
{
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > FRC_CONTAINER_ID_MAX || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = id[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
            || c == '+' || c == '-' || c == '.'))
        return false;
    }
  return true;
}

int
frc_record_key(const char *root, const char *id, char **out, frc_error_t *err)
{
  char h[17];
  if (!frc_container_id_valid(id))
    return frc_error(err, "container id \"%.64s\" is not one flox-runc accepts (letters, digits, "
                          "'_', '+', '-', '.', at most %d)",
                     id, FRC_CONTAINER_ID_MAX);
  frc_fnv64_hex(root, h);
  *out = xasprintf("%s-%s", h, id);
  return 0;
}

static int
dir_of_root(const struct frc_config *c, const char *root, char **out, frc_error_t *err)
{
  char h[17];
  (void) err;
  frc_fnv64_hex(root, h);
  *out = xasprintf("%s/containers/%s", c->state_dir, h);
  return 0;
}

static void
set_str(yajl_val o, const char *k, const char *v)
{
  if (v)
    frc_json_set(o, k, frc_json_new_string(v));
}

static yajl_val
strv_json(char *const *v, size_t n)
{
  yajl_val a = frc_json_new_array();
  for (size_t i = 0; i < n; i++)
    frc_json_append(a, frc_json_new_string(v[i]));
  return a;
}

int
frc_record_save(const struct frc_config *c, const struct frc_record *r, frc_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;
  cleanup_json yajl_val o = frc_json_new_object();
  size_t len;

  if (!frc_container_id_valid(r->id))
    return frc_error(err, "container id \"%s\" has characters flox-runc does not accept", r->id);
  if (dir_of_root(c, r->runtime_root, &dir, err) < 0 || frc_mkdir_p(dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot record the container");
  frc_json_set(o, "version", frc_json_new_int(1));
  set_str(o, "id", r->id);
  set_str(o, "runtime_root", r->runtime_root);
  set_str(o, "bundle", r->bundle);
  set_str(o, "reference", r->reference);
  set_str(o, "env_key", r->env_key);
  set_str(o, "env_path", r->env_path);
  set_str(o, "mode", frc_mode_name(r->mode));
  frc_json_set(o, "skip_exec", frc_json_new_bool(r->skip_exec));
  frc_json_set(o, "disable_metrics", frc_json_new_bool(r->disable_metrics));
  frc_json_set(o, "has_hook", frc_json_new_bool(r->has_hook));
  set_str(o, "bash", r->bash);
  set_str(o, "owner", r->owner);
  set_str(o, "name", r->name);
  frc_json_set(o, "generation", frc_json_new_int(r->generation));
  frc_json_set(o, "features", frc_env_features_to_json(&r->features));
  set_str(o, "env_cache", r->env_cache);
  set_str(o, "env_cache_dir", r->env_cache_dir);
  frc_json_set(o, "env_cache_per_container", frc_json_new_bool(r->env_cache_per_container));
  set_str(o, "ca_bundle", r->ca_bundle);
  frc_json_set(o, "activation_record", frc_json_new_bool(r->activation_record));
  frc_json_set(o, "var_names", strv_json(r->var_names, r->nvars));
  frc_json_set(o, "var_values", strv_json(r->var_values, r->nvars));
  set_str(o, "overlay", r->overlay);
  set_str(o, "gcroot", r->gcroot);
  text = frc_json_serialize(o, &len);
  path = xasprintf("%s/%s.json", dir, r->id);
  return write_file_replace(path, text, len, 0600, err);
}

static char *
get_dup(yajl_val o, const char *k)
{
  const char *s = frc_json_get_string(o, k);
  return s ? xstrdup(s) : NULL;
}

static bool
get_bool(yajl_val o, const char *k)
{
  yajl_val v = frc_json_get(o, k);
  return v && v->type == yajl_t_true;
}

static char **
get_strv(yajl_val o, const char *k, size_t *n)
{
  yajl_val a = frc_json_get(o, k);
  size_t len = a && a->type == yajl_t_array ? a->u.array.len : 0;
  char **v = xmalloc0((len + 1) * sizeof(char *));
  for (size_t i = 0; i < len; i++)
    v[i] = xstrdup(a->u.array.values[i]->type == yajl_t_string ? a->u.array.values[i]->u.string : "");
  if (n)
    *n = len;
  return v;
}

int
frc_record_read(const char *path, struct frc_record *r, frc_error_t *err)
{
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  yajl_val o;
  size_t nv = 0;
  const char *mode;

  if (frc_json_doc_load(&doc, path, RECORD_MAX_BYTES, err) < 0)
    return -1;
  o = doc.root;
  r->id = get_dup(o, "id");
  r->runtime_root = get_dup(o, "runtime_root");
  r->bundle = get_dup(o, "bundle");
  r->reference = get_dup(o, "reference");
  r->env_key = get_dup(o, "env_key");
  r->env_path = get_dup(o, "env_path");
  mode = frc_json_get_string(o, "mode");
  r->mode = mode && strcmp(mode, "dev") == 0 ? FRC_MODE_DEV : FRC_MODE_RUN;
  r->skip_exec = get_bool(o, "skip_exec");
  r->disable_metrics = get_bool(o, "disable_metrics");
  r->has_hook = get_bool(o, "has_hook");
  r->bash = get_dup(o, "bash");
  if (r->bash == NULL) /* a record of a release before "bash" */
    r->bash = get_dup(o, "shell");
  r->owner = get_dup(o, "owner");
  r->name = get_dup(o, "name");
  {
    yajl_val g = frc_json_get(o, "generation");
    if (g && g->type == yajl_t_number && (g->u.number.flags & YAJL_NUMBER_INT_VALID)
        && g->u.number.i > 0 && g->u.number.i < 1000000000)
      r->generation = (unsigned) g->u.number.i;
  }
  frc_env_features_from_json(frc_json_get(o, "features"), &r->features);
  r->env_cache = get_dup(o, "env_cache");
  r->env_cache_dir = get_dup(o, "env_cache_dir");
  r->env_cache_per_container = get_bool(o, "env_cache_per_container");
  r->ca_bundle = get_dup(o, "ca_bundle");
  r->activation_record = get_bool(o, "activation_record");
  r->var_names = get_strv(o, "var_names", &r->nvars);
  r->var_values = get_strv(o, "var_values", &nv);
  r->overlay = get_dup(o, "overlay");
  r->gcroot = get_dup(o, "gcroot");
  if (r->id == NULL || r->env_path == NULL || r->gcroot == NULL || nv != r->nvars
      || (r->env_cache_dir && !str_has_prefix(r->env_cache_dir, "/")))
    return frc_error(err, "the container record `%s` is damaged: delete the container and create it "
                          "again",
                     path);
  return 0;
}

/* Without --root: the one record with this id under any root. */
static int
find_any_root(const struct frc_config *c, const char *id, char **path, frc_error_t *err)
{
  cleanup_free char *base = xasprintf("%s/containers", c->state_dir);
  cleanup_dir DIR *d = opendir(base);
  struct dirent *e;
  int matches = 0;

  *path = NULL;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    {
      cleanup_free char *cand = NULL;
      if (e->d_name[0] == '.')
        continue;
      cand = xasprintf("%s/%s/%s.json", base, e->d_name, id);
      if (access(cand, F_OK) == 0)
        {
          matches++;
          free(*path);
          *path = steal_pointer(&cand);
        }
    }
  if (matches > 1)
    {
      free(*path);
      *path = NULL;
      return frc_error(err, "container %s exists under several runtime roots: pass --root", id);
    }
  return 0;
}

int
frc_record_load(const struct frc_config *c, const char *root, const char *id, struct frc_record *r,
                bool *found, frc_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;

  memset(r, 0, sizeof(*r));
  *found = false;
  if (!frc_container_id_valid(id))
    return 0; /* create never records such an id */
  if (root == NULL)
    {
      if (find_any_root(c, id, &path, err) < 0)
        return -1;
      if (path == NULL)
        return 0;
    }
  else
    {
      if (dir_of_root(c, root, &dir, err) < 0)
        return -1;
      path = xasprintf("%s/%s.json", dir, id);
      if (access(path, F_OK) < 0)
        return 0;
    }
  if (frc_record_read(path, r, err) < 0)
    {
      /* A record a crash damaged: its container is gone with the crash;
       * `flox-runc gc` releases what it held. */
      frc_error_release(err);
      frc_record_release(r);
      return 0;
    }
  if (root && (r->runtime_root == NULL || strcmp(r->runtime_root, root) != 0))
    {
      frc_record_release(r); /* another root with the same hash */
      return 0;
    }
  *found = true;
  return 0;
}

int
frc_record_remove(const struct frc_config *c, const struct frc_record *r, frc_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;
  if (dir_of_root(c, r->runtime_root ? r->runtime_root : "", &dir, err) < 0)
    return -1;
  path = xasprintf("%s/%s.json", dir, r->id);
  if (unlink(path) < 0 && errno != ENOENT)
    return frc_error_errno(err, errno, "cannot remove the container record `%s`", path);
  rmdir(dir); /* the last container of this root */
  return 0;
}

void
frc_record_release(struct frc_record *r)
{
  free(r->id);
  free(r->runtime_root);
  free(r->bundle);
  free(r->reference);
  free(r->env_key);
  free(r->env_path);
  free(r->bash);
  free(r->owner);
  free(r->name);
  free(r->env_cache);
  free(r->env_cache_dir);
  free(r->ca_bundle);
  frc_strv_freep(&r->var_names);
  frc_strv_freep(&r->var_values);
  free(r->overlay);
  free(r->gcroot);
  memset(r, 0, sizeof(*r));
}

void
frc_record_activation(const struct frc_record *r, struct frc_activation *a)
{
  memset(a, 0, sizeof(*a));
  a->env_path = r->env_path;
  a->description = r->reference;
  a->mode = r->mode;
  a->var_names = r->var_names;
  a->var_values = r->var_values;
  a->nvars = r->nvars;
  a->has_hook = r->has_hook;
  a->bash = r->bash;
  a->owner = r->owner ? r->owner : "";
  a->name = r->name ? r->name : "";
  a->generation = r->generation;
  a->features = &r->features;
  a->env_cache = r->env_cache;
  a->ca_bundle = r->ca_bundle;
  a->disable_metrics = r->disable_metrics;
  a->record = r->activation_record;
}
