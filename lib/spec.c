#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"
#include "util.h"

int
frc_spec_load(struct frc_spec *s, const char *bundle, frc_error_t *err)
{
  cleanup_free char *cwd = NULL;
  cleanup_free char *path = NULL;

  memset(s, 0, sizeof(*s));
  if (bundle == NULL || bundle[0] == '\0')
    {
      cwd = getcwd(NULL, 0);
      if (cwd == NULL)
        return frc_error_errno(err, errno, "cannot find the current directory (the default bundle)");
      bundle = cwd;
    }
  if (bundle[0] == '/')
    s->bundle = xstrdup(bundle);
  else
    {
      if (cwd == NULL && (cwd = getcwd(NULL, 0)) == NULL)
        return frc_error_errno(err, errno, "cannot find the current directory");
      s->bundle = xasprintf("%s/%s", cwd, bundle);
    }
  path = xasprintf("%s/config.json", s->bundle);
  /* linux.seccomp kept as the engine wrote it: flox-runc never reads it,
   * and a runtime's default profile (hundreds of syscall names) made a
   * tree and serialised again cost ~0.2 ms a create */
  if (frc_json_doc_load_opaque(&s->doc, path, FRC_SPEC_MAX_BYTES, "linux", "seccomp", err) < 0)
    {
      frc_spec_release(s);
      return frc_error_wrap(err, "cannot read the OCI spec of bundle `%s`", bundle);
    }
  return 0;
}

int
frc_spec_save(struct frc_spec *s, frc_error_t *err)
{
  return frc_json_doc_save(&s->doc, err);
}

void
frc_spec_release(struct frc_spec *s)
{
  frc_json_doc_release(&s->doc);
  free(s->bundle);
  s->bundle = NULL;
}

const char *
frc_spec_annotation(const struct frc_spec *s, const char *key, bool *present)
{
  yajl_val ann = frc_json_get(s->doc.root, "annotations");
  yajl_val v = frc_json_get(ann, key);
  if (present)
    *present = v != NULL;
  return v && v->type == yajl_t_string ? v->u.string : NULL;
}

static yajl_val
child_of_type(yajl_val obj, const char *key, yajl_type type)
{
  yajl_val v = frc_json_get(obj, key);
  if (v == NULL || v->type != type)
    {
      v = type == yajl_t_array ? frc_json_new_array() : frc_json_new_object();
      frc_json_set(obj, key, v);
    }
  return v;
}

void
frc_spec_set_annotation(struct frc_spec *s, const char *key, const char *value)
{
  frc_json_set(child_of_type(s->doc.root, "annotations", yajl_t_object), key,
               frc_json_new_string(value));
}

int
frc_spec_rootfs(const struct frc_spec *s, char **out, frc_error_t *err)
{
  const char *p = frc_json_get_string(frc_json_get(s->doc.root, "root"), "path");
  if (p == NULL || p[0] == '\0')
    return frc_error(err, "the OCI spec of bundle `%s` has no root.path", s->bundle);
  *out = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", s->bundle, p);
  return 0;
}

yajl_val
frc_spec_process(struct frc_spec *s)
{
  return child_of_type(s->doc.root, "process", yajl_t_object);
}

void
frc_spec_add_mount(struct frc_spec *s, const char *destination, const char *type,
                   const char *source, const char *const *options)
{
  yajl_val mounts = child_of_type(s->doc.root, "mounts", yajl_t_array);
  yajl_val m = frc_json_new_object();
  yajl_val opts = frc_json_new_array();

  frc_json_set(m, "destination", frc_json_new_string(destination));
  frc_json_set(m, "type", frc_json_new_string(type));
  frc_json_set(m, "source", frc_json_new_string(source));
  for (; options && *options; options++)
    frc_json_append(opts, frc_json_new_string(*options));
  frc_json_set(m, "options", opts);
  frc_json_append(mounts, m);
}

struct mount_drop
{
  bool (*drop)(const char *d, const char *src, const void *data);
  const void *data;
};

static bool
mount_dropped(yajl_val m, const void *data)
{
  const struct mount_drop *md = data;
  const char *d = frc_json_get_string(m, "destination");
  const char *src = frc_json_get_string(m, "source");
  return d && src && md->drop(d, src, md->data);
}

/* Removes the mounts (destination d, source src) for which drop says
 * true; returns how many. */
static size_t
remove_mounts_if(struct frc_spec *s, bool (*drop)(const char *d, const char *src, const void *data),
                 const void *data)
{
  const struct mount_drop md = { .drop = drop, .data = data };
  return frc_json_array_remove_if(frc_json_get(s->doc.root, "mounts"), mount_dropped, &md);
}

struct mount_match
{
  const char *destination;
  const char *source; /* remove_mount */
  const char *const *sources; /* remove_mounts_below */
};

static bool
is_mount(const char *d, const char *src, const void *data)
{
  const struct mount_match *m = data;
  return strcmp(d, m->destination) == 0 && strcmp(src, m->source) == 0;
}

size_t
frc_spec_remove_mount(struct frc_spec *s, const char *destination, const char *source)
{
  const struct mount_match m = { .destination = destination, .source = source };
  return remove_mounts_if(s, is_mount, &m);
}

/* path is dir or below it. */
static bool
path_below(const char *path, const char *dir)
{
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    n--;
  return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool
is_mount_below(const char *d, const char *src, const void *data)
{
  const struct mount_match *m = data;
  if (!path_below(d, m->destination))
    return false;
  for (const char *const *p = m->sources; *p; p++)
    if (path_below(src, *p))
      return true;
  return false;
}

size_t
frc_spec_remove_mounts_below(struct frc_spec *s, const char *destination, const char *const *sources)
{
  const struct mount_match m = { .destination = destination, .sources = sources };
  return remove_mounts_if(s, is_mount_below, &m);
}

bool
frc_spec_has_mount(const struct frc_spec *s, const char *destination)
{
  yajl_val mounts = frc_json_get(s->doc.root, "mounts");
  if (mounts == NULL || mounts->type != yajl_t_array)
    return false;
  for (size_t i = 0; i < mounts->u.array.len; i++)
    {
      const char *d = frc_json_get_string(mounts->u.array.values[i], "destination");
      if (d && strcmp(d, destination) == 0)
        return true;
    }
  return false;
}

static bool
env_entry_is(const char *entry, const char *name)
{
  size_t n = strlen(name);
  return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

const char *
frc_process_getenv(yajl_val process, const char *name)
{
  yajl_val env = frc_json_get(process, "env");
  if (env == NULL || env->type != yajl_t_array)
    return NULL;
  for (size_t i = env->u.array.len; i > 0; i--)
    {
      yajl_val e = env->u.array.values[i - 1];
      if (e->type == yajl_t_string && env_entry_is(e->u.string, name))
        return e->u.string + strlen(name) + 1;
    }
  return NULL;
}

void
frc_process_setenv(yajl_val process, const char *name, const char *value)
{
  yajl_val env = child_of_type(process, "env", yajl_t_array);
  size_t out = 0;

  for (size_t i = 0; i < env->u.array.len; i++)
    {
      yajl_val e = env->u.array.values[i];
      if (e->type == yajl_t_string && env_entry_is(e->u.string, name))
        yajl_tree_free(e);
      else
        env->u.array.values[out++] = e;
    }
  env->u.array.len = out;
  {
    cleanup_free char *entry = xasprintf("%s=%s", name, value);
    frc_json_append(env, frc_json_new_string(entry));
  }
}

void
frc_process_set_args(yajl_val process, const char *const *argv)
{
  yajl_val args = frc_json_new_array();
  for (; *argv; argv++)
    frc_json_append(args, frc_json_new_string(*argv));
  frc_json_set(process, "args", args);
}

size_t
frc_process_nargs(yajl_val process)
{
  yajl_val args = frc_json_get(process, "args");
  return args && args->type == yajl_t_array ? args->u.array.len : 0;
}

const char *
frc_process_arg(yajl_val process, size_t i)
{
  yajl_val args = frc_json_get(process, "args");
  if (args == NULL || args->type != yajl_t_array || i >= args->u.array.len)
    return NULL;
  return args->u.array.values[i]->type == yajl_t_string ? args->u.array.values[i]->u.string : NULL;
}

int
frc_process_file_load(struct frc_json_doc *doc, const char *path, frc_error_t *err)
{
  if (frc_json_doc_load(doc, path, FRC_SPEC_MAX_BYTES, err) < 0)
    return frc_error_wrap(err, "cannot read the exec process file");
  return 0;
}
