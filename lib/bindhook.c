/* bindhook.c - see bindhook.h. */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "bindhook.h"
#include "json.h"
#include "util.h"

/* crun: where hooks' stderr goes (else /dev/null) */
#define CRUN_HOOKS_STDERR "run.oci.hooks.stderr"
#define CRUN_HOOKS_STDOUT "run.oci.hooks.stdout"

/* The value flox-runc itself gives CRUN_HOOKS_STDERR (frc_bindhook_add). */
#define OWN_HOOKS_STDERR "/proc/self/fd/2"

bool
frc_bindhook_screen(struct frc_spec *s, const struct frc_logger *log)
{
  static const char *const keys[] = { CRUN_HOOKS_STDOUT, CRUN_HOOKS_STDERR };
  bool removed = false;

  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    {
      const char *v = frc_spec_annotation(s, keys[i], NULL);
      cleanup_free char *esc = NULL;
      if (v == NULL || (strcmp(keys[i], CRUN_HOOKS_STDERR) == 0 && strcmp(v, OWN_HOOKS_STDERR) == 0))
        continue;
      esc = escape_for_message(v, strlen(v), 128);
      frc_log(log, FRC_LOG_WARNING,
              "flox-runc: removed the spec's %s `%s` (crun opens that node path as root, "
              "creating it, for the hooks' output): a pod cannot choose it",
              keys[i], esc);
      frc_json_remove(frc_json_get(s->doc.root, "annotations"), keys[i]);
      removed = true;
    }
  return removed;
}

/* args[1] the verb, or after flox-runc's --log and --log-format flags */
static bool
is_our_hook(yajl_val h, const void *unused __attribute__((unused)))
{
  yajl_val args = frc_json_get(h, "args");
  if (args == NULL || args->type != yajl_t_array)
    return false;
  for (size_t i = 1; i < args->u.array.len && i <= 5; i += 2)
    {
      yajl_val a = args->u.array.values[i];
      if (a->type != yajl_t_string)
        return false;
      if (strcmp(a->u.string, FRC_BINDHOOK_VERB) == 0)
        return true;
      if (strcmp(a->u.string, "--log") != 0 && strcmp(a->u.string, "--log-format") != 0)
        return false;
    }
  return false;
}

size_t
frc_bindhook_remove(struct frc_spec *s)
{
  return frc_json_array_remove_if(
    frc_json_get(frc_json_get(s->doc.root, "hooks"), "createContainer"), is_our_hook, NULL);
}

bool
frc_bindhook_program(char *exe, size_t size)
{
  const char *slash = strrchr(exe, '/');
  size_t dir = slash ? (size_t) (slash - exe) + 1 : 0;
  char hook[PATH_MAX];
  struct stat own, st;

  if (dir == 0 || dir + sizeof(FRC_BINDHOOK_PROGRAM) > sizeof(hook)
      || dir + sizeof(FRC_BINDHOOK_PROGRAM) > size)
    return false;
  memcpy(hook, exe, dir);
  memcpy(hook + dir, FRC_BINDHOOK_PROGRAM, sizeof(FRC_BINDHOOK_PROGRAM));
  if (stat(exe, &own) < 0 || stat(hook, &st) < 0 || !S_ISREG(st.st_mode)
      || st.st_uid != own.st_uid || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0
      || (st.st_mode & S_IXUSR) == 0)
    return false;
  memcpy(exe, hook, dir + sizeof(FRC_BINDHOOK_PROGRAM));
  return true;
}

static bool
has_user_namespace(struct frc_spec *s)
{
  yajl_val linux_ = frc_json_get(s->doc.root, "linux");
  yajl_val ns = frc_json_get(linux_, "namespaces");
  yajl_val maps = frc_json_get(linux_, "uidMappings");
  if (maps && maps->type == yajl_t_array && maps->u.array.len > 0)
    return true;
  for (size_t i = 0; ns && ns->type == yajl_t_array && i < ns->u.array.len; i++)
    {
      const char *t = frc_json_get_string(ns->u.array.values[i], "type");
      if (t && strcmp(t, "user") == 0)
        return true;
    }
  return false;
}

/* The spec's RLIMIT_STACK soft limit when it sets one below limit. */
static unsigned long long
spec_stack_limit(struct frc_spec *s, unsigned long long limit)
{
  yajl_val rl = frc_json_get(frc_spec_process(s), "rlimits");
  for (size_t i = 0; rl && rl->type == yajl_t_array && i < rl->u.array.len; i++)
    {
      const char *t = frc_json_get_string(rl->u.array.values[i], "type");
      yajl_val soft = frc_json_get(rl->u.array.values[i], "soft");
      if (t && strcmp(t, "RLIMIT_STACK") == 0 && soft && YAJL_IS_INTEGER(soft)
          && soft->u.number.i >= 0 && (unsigned long long) soft->u.number.i < limit)
        limit = (unsigned long long) soft->u.number.i;
    }
  return limit;
}

bool
frc_bindhook_usable(struct frc_spec *s, const char *exe, const struct frc_logger *log,
                    const char *root, const char *nix_source, const char *prefix,
                    char *const *paths, unsigned long long stack_limit)
{
  const char *fixed[] = { exe,         FRC_BINDHOOK_VERB, root,  nix_source,
                          prefix,      "--log",           "--log-format", "text",
                          log && log->path ? log->path : "" };
  unsigned long long budget = spec_stack_limit(s, stack_limit) / 4, size = 0;

  if (has_user_namespace(s))
    return false;
  /* crun opens these annotations' paths on the node, as root, O_CREAT, for
   * the hooks' output, and a pod can carry them: a pod without hooks of its
   * own never makes crun open them, so flox-runc's hook must not either. */
  if (frc_spec_annotation(s, CRUN_HOOKS_STDOUT, NULL) || frc_spec_annotation(s, CRUN_HOOKS_STDERR, NULL))
    return false;
  if (budget > 6ULL * 1024 * 1024)
    budget = 6ULL * 1024 * 1024;
  if (budget < 128 * 1024)
    budget = 128 * 1024;
  budget -= FRC_BINDHOOK_ENV_RESERVE + FRC_BINDHOOK_BINDS_RESERVE;
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    size += strlen(fixed[i]) + 1 + sizeof(char *);
  for (char *const *p = paths; p && *p; p++)
    {
      size += strlen(*p) + 1 + sizeof(char *);
      if (size > budget)
        return false;
    }
  return size <= budget;
}

void
frc_bindhook_add(struct frc_spec *s, const char *exe, const struct frc_logger *log,
                 const char *root, const char *nix_source, const char *prefix,
                 char *const *paths)
{
  yajl_val hooks = frc_json_get(s->doc.root, "hooks");
  yajl_val list, hook = frc_json_new_object(), args = frc_json_new_array();
  yajl_val kept = frc_json_new_array();
  struct stat st;

  if (hooks == NULL || hooks->type != yajl_t_object)
    {
      hooks = frc_json_new_object();
      frc_json_set(s->doc.root, "hooks", hooks);
    }
  frc_bindhook_remove(s);
  frc_json_append(args, frc_json_new_string(exe));
  if (log && log->path)
    {
      /* its error, a line of the runtime's log (crun sends a hook's stderr
       * to /dev/null) */
      frc_json_append(args, frc_json_new_string("--log"));
      frc_json_append(args, frc_json_new_string(log->path));
      frc_json_append(args, frc_json_new_string("--log-format"));
      frc_json_append(args, frc_json_new_string(log->json ? "json" : "text"));
    }
  else if (fstat(2, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
           && frc_spec_annotation(s, CRUN_HOOKS_STDERR, NULL) == NULL)
    /* no log (conmon's way): the user reads the runtime's stderr, which
     * crun (opening this in its own process) then hands the hooks; runc
     * puts a hook's stderr in its error anyway.  A pipe (conmon's) or a
     * terminal only: a socket cannot be opened again, and crun's own
     * writes to a file would overwrite the hook's appended line. */
    frc_spec_set_annotation(s, CRUN_HOOKS_STDERR, OWN_HOOKS_STDERR);
  frc_json_append(args, frc_json_new_string(FRC_BINDHOOK_VERB));
  frc_json_append(args, frc_json_new_string(root));
  frc_json_append(args, frc_json_new_string(nix_source));
  frc_json_append(args, frc_json_new_string(prefix));
  for (char *const *p = paths; *p; p++)
    frc_json_append(args, frc_json_new_string(*p));
  frc_json_set(hook, "path", frc_json_new_string(exe));
  frc_json_set(hook, "args", args);
  /* first: an engine's own createContainer hooks see the whole /nix */
  frc_json_append(kept, hook);
  list = frc_json_get(hooks, "createContainer");
  if (list && list->type == yajl_t_array)
    {
      for (size_t i = 0; i < list->u.array.len; i++)
        {
          frc_json_append(kept, list->u.array.values[i]);
          list->u.array.values[i] = NULL;
        }
      list->u.array.len = 0;
    }
  frc_json_set(hooks, "createContainer", kept);
}

bool
frc_bindhook_add_bind(struct frc_spec *s, const char *source, const char *destination, bool ro)
{
  yajl_val list = frc_json_get(frc_json_get(s->doc.root, "hooks"), "createContainer");
  yajl_val args;

  if (list == NULL || list->type != yajl_t_array || list->u.array.len == 0
      || !is_our_hook(list->u.array.values[0], NULL))
    return false;
  args = frc_json_get(list->u.array.values[0], "args");
  frc_json_append(args, frc_json_new_string(ro ? "--bind-ro" : "--bind-rw"));
  frc_json_append(args, frc_json_new_string(source));
  frc_json_append(args, frc_json_new_string(destination));
  return true;
}
