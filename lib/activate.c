#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activate.h"
#include "json.h"
#include "spec.h"
#include "store.h"
#include "util.h"

/* "prefix:old" without duplicating prefix when old already starts with it. */
static char *
prepend(const char *prefix, const char *old)
{
  if (old == NULL || old[0] == '\0')
    return xstrdup(prefix);
  if (str_has_prefix(old, prefix) && (old[strlen(prefix)] == ':' || old[strlen(prefix)] == '\0'))
    return xstrdup(old);
  return xasprintf("%s:%s", prefix, old);
}

static void
set_prepended(yajl_val process, const char *name, const char *prefix, const char *fallback)
{
  const char *old = frc_process_getenv(process, name);
  cleanup_free char *v = prepend(prefix, old ? old : fallback);
  frc_process_setenv(process, name, v);
}

static bool
is_executable_at(const char *dir, const char *name)
{
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static bool
is_store_executable(const char *prefix, const char *logical)
{
  cleanup_free char *phys = frc_nix_resolve(prefix, logical);
  struct stat st;
  return phys && stat(phys, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The image's own PATH entries, looked up in the rootfs on the node.  The
 * lookup stays inside the rootfs only approximately (symlinks in the image
 * are followed on the node); it decides nothing but whether to fail early
 * with a clear message, runc does the real lookup inside the container. */
static bool
found_in_image(const char *rootfs, const char *path_value, const char *cmd)
{
  cleanup_free char *copy = xstrdup(path_value ? path_value : "");
  char *save = NULL;
  if (rootfs == NULL)
    return true; /* cannot tell: let runc decide */
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *dir = NULL;
      if (d[0] != '/' || strstr(d, "..") || str_has_prefix(d, "/nix/"))
        continue;
      dir = xasprintf("%s%s", rootfs, d);
      if (is_executable_at(dir, cmd))
        return true;
    }
  return false;
}

static int
resolve_command(const struct frc_activation *a, yajl_val process, const char *image_path,
                frc_error_t *err)
{
  const char *cmd = frc_process_arg(process, 0);
  static const char *const dirs[] = { "bin", "sbin" };
  yajl_val args;

  if (cmd == NULL || cmd[0] == '\0')
    return frc_error(err, "the container has no command: set command (or args) in the pod spec to "
                          "a program of the environment, e.g. [\"hello\"]");
  if (strchr(cmd, '/'))
    return 0; /* an explicit path is the user's choice */
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *logical = xasprintf("%s/%s/%s", a->env_path, dirs[i], cmd);
      if (is_store_executable(a->store_prefix ? a->store_prefix : "", logical))
        {
          args = frc_json_get(process, "args");
          yajl_tree_free(args->u.array.values[0]);
          args->u.array.values[0] = frc_json_new_string(logical);
          return 0;
        }
    }
  if (found_in_image(a->rootfs, image_path, cmd))
    return 0;
  {
    cleanup_free char *esc = escape_for_message(cmd, strlen(cmd), 64);
    return frc_error(err, "command \"%s\" is in neither the environment %s nor the image: install "
                          "it in the environment or fix the container's command",
                     esc, a->description);
  }
}

char *
frc_expand_vars(yajl_val process, const char *value)
{
  size_t cap = strlen(value) + 1, len = 0;
  char *out = xmalloc0(cap);

  for (const char *p = value; *p;)
    {
      const char *name = NULL, *rest = p + 1;
      size_t nlen = 0;
      if (p[0] == '\\' && p[1] == '$')
        {
          name = NULL;
          p++; /* a literal dollar */
        }
      else if (p[0] == '$' && p[1] == '{')
        {
          const char *end = strchr(p + 2, '}');
          if (end && end > p + 2)
            {
              name = p + 2;
              nlen = (size_t) (end - name);
              rest = end + 1;
            }
        }
      else if (p[0] == '$' && (p[1] == '_' || (p[1] >= 'A' && p[1] <= 'Z') || (p[1] >= 'a' && p[1] <= 'z')))
        {
          name = p + 1;
          while (name[nlen] == '_' || (name[nlen] >= 'A' && name[nlen] <= 'Z')
                 || (name[nlen] >= 'a' && name[nlen] <= 'z') || (name[nlen] >= '0' && name[nlen] <= '9'))
            nlen++;
          rest = name + nlen;
        }
      if (name)
        {
          cleanup_free char *n = xstrndup(name, nlen);
          const char *v = frc_process_getenv(process, n);
          size_t vl = v ? strlen(v) : 0;
          for (size_t k = 0; k < nlen; k++)
            if (!(n[k] == '_' || (n[k] >= 'A' && n[k] <= 'Z') || (n[k] >= 'a' && n[k] <= 'z')
                  || (n[k] >= '0' && n[k] <= '9')))
              vl = (size_t) -1;
          if (vl != (size_t) -1)
            {
              if (vl > FRC_VAR_EXPANDED_MAX - len)
                {
                  free(out);
                  return NULL;
                }
              if (len + vl + 1 > cap)
                out = xrealloc(out, cap = (len + vl + 1) * 2);
              memcpy(out + len, v ? v : "", vl);
              len += vl;
              p = rest;
              continue;
            }
        }
      if (len >= FRC_VAR_EXPANDED_MAX)
        {
          free(out);
          return NULL;
        }
      if (len + 2 > cap)
        out = xrealloc(out, cap *= 2);
      out[len++] = *p++;
    }
  out[len] = '\0';
  return out;
}

/* [shell, -c, script, flox-activate, cmd...] unless already wrapped. */
static void
wrap_hook(const struct frc_activation *a, yajl_val process)
{
  yajl_val args = frc_json_get(process, "args");
  yajl_val wrapped;
  if (frc_process_nargs(process) >= 4 && frc_process_arg(process, 3)
      && strcmp(frc_process_arg(process, 3), FRC_HOOK_ARGV0) == 0)
    return;
  wrapped = frc_json_new_array();
  frc_json_append(wrapped, frc_json_new_string(a->shell));
  frc_json_append(wrapped, frc_json_new_string("-c"));
  frc_json_append(wrapped, frc_json_new_string(
                               ". \"$FLOX_ENV/activate.d/hook-on-activate\" 1>&2; exec \"$@\""));
  frc_json_append(wrapped, frc_json_new_string(FRC_HOOK_ARGV0));
  for (size_t i = 0; i < args->u.array.len; i++)
    {
      frc_json_append(wrapped, args->u.array.values[i]);
      args->u.array.values[i] = NULL;
    }
  args->u.array.len = 0;
  frc_json_set(process, "args", wrapped);
}

int
frc_activate_process(const struct frc_activation *a, yajl_val process, frc_error_t *err)
{
  cleanup_free char *bin = xasprintf("%s/bin:%s/sbin", a->env_path, a->env_path);
  cleanup_free char *man = xasprintf("%s/share/man", a->env_path);
  cleanup_free char *image_path = NULL;
  const char *old_path;
  yajl_val args = frc_json_get(process, "args");

  if (args == NULL || args->type != yajl_t_array)
    return frc_error(err, "the container has no command: set command (or args) in the pod spec");
  for (size_t i = 0; i < args->u.array.len; i++)
    if (args->u.array.values[i]->type != yajl_t_string)
      return frc_error(err, "the process arguments are not all strings");

  old_path = frc_process_getenv(process, "PATH");
  image_path = xstrdup(old_path ? old_path : FRC_DEFAULT_PATH);
  frc_process_setenv(process, "FLOX_ENV", a->env_path);
  frc_process_setenv(process, "FLOX_ENV_DESCRIPTION", a->description);
  set_prepended(process, "PATH", bin, FRC_DEFAULT_PATH);
  set_prepended(process, "MANPATH", man, "");
  if (a->mode == FRC_MODE_RUN)
    {
      cleanup_free char *info = xasprintf("%s/share/info", a->env_path);
      cleanup_free char *share = xasprintf("%s/share", a->env_path);
      set_prepended(process, "INFOPATH", info, "");
      set_prepended(process, "XDG_DATA_DIRS", share, "/usr/local/share:/usr/share");
    }
  else
    {
      cleanup_free char *inc = xasprintf("%s/include", a->env_path);
      cleanup_free char *lib = xasprintf("%s/lib", a->env_path);
      cleanup_free char *pc = xasprintf("%s/lib/pkgconfig:%s/share/pkgconfig", a->env_path, a->env_path);
      cleanup_free char *aclocal = xasprintf("%s/share/aclocal", a->env_path);
      set_prepended(process, "CPATH", inc, "");
      set_prepended(process, "LIBRARY_PATH", lib, "");
      set_prepended(process, "PKG_CONFIG_PATH", pc, "");
      set_prepended(process, "ACLOCAL_PATH", aclocal, "");
    }
  for (size_t i = 0; i < a->nvars; i++)
    {
      cleanup_free char *v = frc_expand_vars(process, a->var_values[i]);
      if (v == NULL)
        return frc_error(err, "the manifest var `%s` of %s expands to more than %u bytes, more than "
                              "a process environment can hold: shorten it in the manifest",
                         a->var_names[i], a->description, FRC_VAR_EXPANDED_MAX);
      frc_process_setenv(process, a->var_names[i], v);
    }
  if (a->disable_metrics)
    frc_process_setenv(process, "FLOX_DISABLE_METRICS", "1");

  /* Already wrapped (exec of an activated process): the command is at 4. */
  if (frc_process_nargs(process) >= 4 && strcmp(frc_process_arg(process, 3) ? frc_process_arg(process, 3) : "", FRC_HOOK_ARGV0) == 0)
    return 0;
  if (resolve_command(a, process, image_path, err) < 0)
    return -1;
  if (a->has_hook)
    {
      if (a->shell == NULL)
        return frc_error(err, "the environment %s has an on-activate hook but no shell to run it: "
                              "add bash to the environment or set `hook_shell` in the node config",
                         a->description);
      wrap_hook(a, process);
    }
  return 0;
}
