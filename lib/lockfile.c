#include <string.h>
#include <sys/utsname.h>

#include "json.h"
#include "lockfile.h"
#include "util.h"

#define STORE_DIR "/nix/store/"
static const char nix32_chars[] = "0123456789abcdfghijklmnpqrsvwxyz";

bool
frc_store_path_valid(const char *path)
{
  const char *p, *name;
  size_t name_len;

  if (path == NULL || !str_has_prefix(path, STORE_DIR))
    return false;
  p = path + strlen(STORE_DIR);
  for (int i = 0; i < 32; i++)
    if (p[i] == '\0' || strchr(nix32_chars, p[i]) == NULL)
      return false;
  if (p[32] != '-')
    return false;
  name = p + 33;
  name_len = strlen(name);
  if (name_len == 0 || name_len > 211 || name[0] == '.')
    return false;
  for (size_t i = 0; i < name_len; i++)
    {
      char c = name[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || strchr("+-._?=", c)))
        return false;
    }
  return true;
}

const char *
frc_nix_system(void)
{
  struct utsname u;
  if (uname(&u) == 0)
    {
      if (strcmp(u.machine, "x86_64") == 0)
        return "x86_64-linux";
      if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0)
        return "aarch64-linux";
      if (strcmp(u.machine, "i686") == 0)
        return "i686-linux";
    }
  return "unknown-linux";
}

static int
malformed(frc_error_t *err, const char *what, const char *detail)
{
  cleanup_free char *esc = detail ? escape_for_message(detail, strlen(detail), 80) : NULL;
  if (esc)
    frc_error(err, "the environment's manifest.lock is malformed: %s \"%s\"", what, esc);
  else
    frc_error(err, "the environment's manifest.lock is malformed: %s", what);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

static void
strv_push(char ***v, size_t *n, const char *s)
{
  *v = xrealloc(*v, (*n + 2) * sizeof(char *));
  (*v)[(*n)++] = xstrdup(s);
  (*v)[*n] = NULL;
}

static bool
strv_has(char **v, const char *s)
{
  for (; v && *v; v++)
    if (strcmp(*v, s) == 0)
      return true;
  return false;
}

/* Adds the store paths of an {outname: path} object. */
static int
add_outputs(struct frc_lock_package *p, size_t *n, yajl_val outputs, bool skip_stubs,
            frc_error_t *err)
{
  if (outputs == NULL || outputs->type != yajl_t_object || outputs->u.object.len == 0)
    return malformed(err, "a package without outputs:", p->install_id);
  if (outputs->u.object.len > FRC_LOCK_OUTPUTS_MAX)
    return malformed(err, "a package with too many outputs:", p->install_id);
  for (size_t i = 0; i < outputs->u.object.len; i++)
    {
      yajl_val v = outputs->u.object.values[i];
      if (skip_stubs && strcmp(outputs->u.object.keys[i], "stubs") == 0)
        continue;
      if (v->type != yajl_t_string || !frc_store_path_valid(v->u.string))
        return malformed(err, "an invalid store path",
                         v->type == yajl_t_string ? v->u.string : outputs->u.object.keys[i]);
      if (!strv_has(p->store_paths, v->u.string))
        strv_push(&p->store_paths, n, v->u.string);
    }
  return 0;
}

static int
parse_package(yajl_val pkg, int manifest_version, struct frc_lock_package *p, frc_error_t *err)
{
  const char *id = frc_json_get_string(pkg, "install_id");
  const char *pname = frc_json_get_string(pkg, "pname");
  const char *version = frc_json_get_string(pkg, "version");
  const char *store_path = frc_json_get_string(pkg, "store_path");
  yajl_val locked = frc_json_get(pkg, "locked_installable");
  yajl_val prio = frc_json_get(pkg, "priority");
  size_t n = 0;
  bool skip_stubs = manifest_version == 1;

  if (id == NULL || id[0] == '\0' || strlen(id) > 256)
    return malformed(err, "a package without a valid install_id", NULL);
  p->install_id = xstrdup(id);
  p->label = pname && version ? xasprintf("%s-%s", pname, version) : xstrdup(id);
  p->priority = 5;
  if (prio != NULL)
    {
      if (prio->type != yajl_t_number || !(prio->u.number.flags & YAJL_NUMBER_INT_VALID)
          || prio->u.number.i < 0 || prio->u.number.i > 1000000)
        return malformed(err, "an invalid priority for", id);
      p->priority = (long) prio->u.number.i;
    }
  p->store_paths = xmalloc0(sizeof(char *));
  if (store_path != NULL)
    {
      if (!frc_store_path_valid(store_path))
        return malformed(err, "an invalid store path", store_path);
      strv_push(&p->store_paths, &n, store_path);
      return 0;
    }
  if (locked != NULL)
    return add_outputs(p, &n, frc_json_get(locked, "outputs"), skip_stubs, err);
  return add_outputs(p, &n, frc_json_get(pkg, "outputs"), skip_stubs, err);
}

static int
parse_manifest(yajl_val manifest, struct frc_lockfile *out, frc_error_t *err)
{
  yajl_val version = frc_json_get(manifest, "version");
  yajl_val vars = frc_json_get(manifest, "vars");
  yajl_val hook = frc_json_get(manifest, "hook");
  const char *on_activate = frc_json_get_string(hook, "on-activate");

  if (manifest == NULL || manifest->type != yajl_t_object)
    return malformed(err, "no \"manifest\" object", NULL);
  out->manifest_version = 1;
  if (version && version->type == yajl_t_number && (version->u.number.flags & YAJL_NUMBER_INT_VALID))
    out->manifest_version = (int) version->u.number.i;
  if (vars != NULL && vars->type == yajl_t_object)
    {
      if (vars->u.object.len > FRC_LOCK_VARS_MAX)
        return malformed(err, "too many vars", NULL);
      out->var_names = xmalloc0((vars->u.object.len + 1) * sizeof(char *));
      out->var_values = xmalloc0((vars->u.object.len + 1) * sizeof(char *));
      for (size_t i = 0; i < vars->u.object.len; i++)
        {
          const char *k = vars->u.object.keys[i];
          yajl_val v = vars->u.object.values[i];
          bool ok = k[0] != '\0' && !(k[0] >= '0' && k[0] <= '9') && strlen(k) <= 256;
          for (const char *c = k; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                 || *c == '_';
          if (!ok)
            return malformed(err, "an invalid variable name", k);
          if (v->type != yajl_t_string)
            return malformed(err, "a variable whose value is not a string:", k);
          out->var_names[out->nvars] = xstrdup(k);
          out->var_values[out->nvars++] = xstrdup(v->u.string);
        }
    }
  if (on_activate != NULL && on_activate[0] != '\0')
    out->hook_on_activate = xstrdup(on_activate);
  return 0;
}

int
frc_lockfile_parse(const char *text, size_t len, const char *system, struct frc_lockfile *out,
                   frc_error_t *err)
{
  cleanup_json yajl_val root = NULL;
  yajl_val lv, packages;
  size_t nsys = 0;

  memset(out, 0, sizeof(*out));
  out->systems = xmalloc0(sizeof(char *));
  if (len > FRC_LOCKFILE_MAX_BYTES)
    return malformed(err, "larger than 16 MiB", NULL);
  if (frc_json_parse(text, len, &root, err) < 0)
    {
      frc_error_wrap(err, "the environment's manifest.lock");
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  lv = frc_json_get(root, "lockfile-version");
  if (lv == NULL || lv->type != yajl_t_number || strcmp(lv->u.number.r, "1") != 0)
    {
      frc_error(err, "the environment's manifest.lock has lockfile-version %s; this flox-runc "
                     "reads version 1: update flox-runc",
                lv && lv->type == yajl_t_number ? lv->u.number.r : "(missing)");
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  if (parse_manifest(frc_json_get(root, "manifest"), out, err) < 0)
    return -1;
  packages = frc_json_get(root, "packages");
  if (packages == NULL || packages->type != yajl_t_array)
    return malformed(err, "no \"packages\" array", NULL);
  if (packages->u.array.len > FRC_LOCK_PACKAGES_MAX)
    return malformed(err, "too many packages", NULL);

  for (size_t i = 0; i < packages->u.array.len; i++)
    {
      yajl_val pkg = packages->u.array.values[i];
      const char *sys = frc_json_get_string(pkg, "system");
      if (sys == NULL)
        sys = frc_json_get_string(frc_json_get(pkg, "locked_installable"), "system");
      if (sys == NULL || strlen(sys) > 64)
        return malformed(err, "a package without a \"system\"", NULL);
      if (!strv_has(out->systems, sys))
        strv_push(&out->systems, &nsys, sys);
      if (strcmp(sys, system) != 0)
        continue;
      out->pkgs = xrealloc(out->pkgs, (out->npkgs + 1) * sizeof(*out->pkgs));
      memset(&out->pkgs[out->npkgs], 0, sizeof(out->pkgs[0]));
      out->npkgs++;
      if (parse_package(pkg, out->manifest_version, &out->pkgs[out->npkgs - 1], err) < 0)
        return -1;
    }
  if (out->npkgs == 0 && nsys > 0)
    {
      size_t cap = 64;
      cleanup_free char *list = xmalloc0(cap);
      for (char **s = out->systems; *s; s++)
        {
          cap += strlen(*s) + 2;
          list = xrealloc(list, cap);
          if (s != out->systems)
            strcat(list, ", ");
          strcat(list, *s);
        }
      frc_error(err, "the environment has no packages for this node's system %s, only for %s: add "
                     "%s to the manifest's options.systems and publish it again, or schedule the "
                     "pod on a matching node",
                system, list, system);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  return 0;
}

void
frc_lockfile_release(struct frc_lockfile *l)
{
  for (size_t i = 0; i < l->npkgs; i++)
    {
      free(l->pkgs[i].install_id);
      free(l->pkgs[i].label);
      frc_strv_freep(&l->pkgs[i].store_paths);
    }
  free(l->pkgs);
  frc_strv_freep(&l->systems);
  frc_strv_freep(&l->var_names);
  frc_strv_freep(&l->var_values);
  free(l->hook_on_activate);
  memset(l, 0, sizeof(*l));
}
