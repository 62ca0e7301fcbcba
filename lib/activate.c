#include <dirent.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activate.h"
#include "http.h"
#include "json.h"
#include "spec.h"
#include "store.h"
#include "util.h"

/* ---- path-like variables (cli/flox-activations/src/cli/fix_paths.rs) ---- */

/* std::env::split_paths, "" giving no entry (cli/flox-activations/src/cli/mod.rs:80-88). */
static char **
split_dirs(const char *s, size_t *n)
{
  size_t k = 1;
  char **v;
  *n = 0;
  if (s == NULL || s[0] == '\0')
    return xmalloc0(sizeof(char *));
  /* the array allocated once: a hostile PATH has 200,000 entries, and one
   * realloc a push is quadratic wherever realloc copies (ASan's) */
  for (const char *p = s; (p = strchr(p, ':')) != NULL; p++)
    k++;
  v = xmalloc0((k + 1) * sizeof(char *));
  for (const char *p = s;;)
    {
      const char *c = strchr(p, ':');
      size_t l = c ? (size_t) (c - p) : strlen(p);
      v[(*n)++] = xstrndup(p, l);
      if (c == NULL)
        break;
      p = c + 1;
    }
  return v;
}

/* An entry of frc_prepend_dedup's list, with its place in it. */
struct dedup_entry
{
  const char *s;
  size_t pos;
};

static int
cmp_dedup_entry(const void *a, const void *b)
{
  const struct dedup_entry *x = a, *y = b;
  int c = strcmp(x->s, y->s);
  return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The pod's variables are hostile (a PATH of 200,000 entries fits in a pod
 * spec): the first of equal entries is found by sorting, O(n log n), not by
 * comparing each with those kept before it. */
char *
frc_prepend_dedup(const char *dirs, const char *suffix, const char *old)
{
  size_t nd = 0, no = 0, nall, nsort = 0, len = 0, nout = 0;
  cleanup_strv char **d = split_dirs(dirs, &nd);
  cleanup_strv char **o = split_dirs(old, &no);
  cleanup_strv char **all = NULL;
  cleanup_free struct dedup_entry *sorted = NULL;
  cleanup_free bool *keep = NULL;
  char *r, *w;

  /* dirs joined with suffix, then old's entries; an empty one of old (a
   * leading ':' or '::') is kept every time, every other entry only where
   * it comes first */
  nall = nd + no;
  all = xmalloc0((nall + 1) * sizeof(char *));
  sorted = xmalloc0((nall + 1) * sizeof(*sorted));
  keep = xmalloc0((nall + 1) * sizeof(bool));
  for (size_t i = 0; i < nd; i++)
    all[i] = suffix ? xasprintf("%s/%s", d[i], suffix) : xstrdup(d[i]);
  for (size_t i = 0; i < no; i++)
    all[nd + i] = xstrdup(o[i]);
  for (size_t i = 0; i < nall; i++)
    {
      if (i >= nd && all[i][0] == '\0')
        keep[i] = true;
      else
        sorted[nsort++] = (struct dedup_entry){ all[i], i };
    }
  qsort(sorted, nsort, sizeof(*sorted), cmp_dedup_entry);
  for (size_t i = 0; i < nsort; i++)
    keep[sorted[i].pos] = i == 0 || strcmp(sorted[i].s, sorted[i - 1].s) != 0;
  for (size_t i = 0; i < nall; i++)
    if (keep[i])
      len += strlen(all[i]) + 1;
  r = w = xmalloc0(len + 1);
  for (size_t i = 0; i < nall; i++)
    if (keep[i])
      {
        if (nout++)
          *w++ = ':';
        w = stpcpy(w, all[i]);
      }
  return r;
}

/* "prefix:old" ("prefix" when old is empty) unless old already starts with
 * prefix: the profile.d scripts' `X="$FLOX_ENV/d${X:+:$X}"`, applied once. */
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
set_prepended(yajl_val process, const char *name, const char *prefix)
{
  cleanup_free char *v = prepend(prefix, frc_process_getenv(process, name));
  frc_process_setenv(process, name, v);
}

static void
set_dedup(yajl_val process, const char *name, const char *dirs, const char *suffix)
{
  cleanup_free char *v = frc_prepend_dedup(dirs, suffix, frc_process_getenv(process, name));
  frc_process_setenv(process, name, v);
}

/* FLOX_ENV_DIRS: FLOX_ENV prepended unless already an entry, which then
 * keeps its place; the other entries as they are
 * (cli/flox-activations/src/cli/set_env_dirs.rs:77-123 populate_env_dirs;
 * an empty or "empty" value has no entry, cli/mod.rs:80-88). */
static void
set_env_dirs(yajl_val process, const char *env)
{
  const char *old = frc_process_getenv(process, "FLOX_ENV_DIRS");
  size_t n = 0;
  bool present = false;
  cleanup_strv char **v = NULL;
  cleanup_free char *val = NULL;

  if (old && strcmp(old, "empty") == 0)
    old = NULL;
  v = split_dirs(old, &n);
  present = frc_strv_has(v, n, env);
  if (present)
    val = xstrdup(old);
  else
    val = old && old[0] ? xasprintf("%s:%s", env, old) : xstrdup(env);
  frc_process_setenv(process, "FLOX_ENV_DIRS", val);
}

/* ---- the built tree ---- */

static bool
tree_stat(const char *prefix, const char *env, const char *rel, struct stat *st)
{
  cleanup_free char *logical = xasprintf("%s/%s", env, rel);
  cleanup_free char *phys = frc_nix_resolve(prefix, logical);
  return phys && stat(phys, st) == 0;
}

static bool
tree_exec(const char *prefix, const char *env, const char *rel)
{
  struct stat st;
  return tree_stat(prefix, env, rel, &st) && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static bool
tree_dir(const char *prefix, const char *env, const char *rel)
{
  struct stat st;
  return tree_stat(prefix, env, rel, &st) && S_ISDIR(st.st_mode);
}

/* "3.12" from "python3.12" */
static bool
python_version(const char *name, char out[16])
{
  const char *v = name + strlen("python3.");
  size_t n = 0;
  if (!str_has_prefix(name, "python3."))
    return false;
  while (v[n] >= '0' && v[n] <= '9')
    n++;
  if (n == 0 || v[n] != '\0' || n > 6)
    return false;
  snprintf(out, 16, "3.%s", v);
  return true;
}

/* profile.d.functions setup_python runs python3 for its major.minor; here it
 * comes from the tree: the name bin/python3 resolves to (python3.12), else
 * the lib/python3.N directory. */
static void
probe_python(const char *prefix, const char *env, char out[16])
{
  cleanup_free char *logical = xasprintf("%s/bin/python3", env);
  cleanup_free char *phys = frc_nix_resolve(prefix, logical);
  cleanup_free char *lib = NULL;
  cleanup_free char *libphys = NULL;
  const char *base;
  DIR *d;
  struct dirent *e;

  out[0] = '\0';
  if (phys == NULL)
    return;
  base = strrchr(phys, '/');
  if (base && python_version(base + 1, out))
    return;
  lib = xasprintf("%s/lib", env);
  libphys = frc_nix_resolve(prefix, lib);
  if (libphys == NULL || (d = opendir(libphys)) == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    {
      char v[16];
      if (python_version(e->d_name, v) && (out[0] == '\0' || strcmp(v, out) < 0))
        memcpy(out, v, sizeof(v));
    }
  closedir(d);
}

/* Whether name is one of FRC_INTERPRETER_PROFILE_D's. */
static bool
interpreter_profile_d(const char *name)
{
  size_t n = strlen(name);
  for (const char *p = FRC_INTERPRETER_PROFILE_D; *p;)
    {
      const char *bar = strchrnul(p, '|');
      if ((size_t) (bar - p) == n && memcmp(p, name, n) == 0)
        return true;
      p = *bar ? bar + 1 : bar;
    }
  return false;
}

/* etc/profile.d/ holds a *.sh (any type: a dangling link fails the
 * activation as it fails Flox's) that is not one of the interpreter's. */
static bool
probe_profile_d_plugins(const char *prefix, const char *env)
{
  cleanup_free char *logical = xasprintf("%s/etc/profile.d", env);
  cleanup_free char *phys = frc_nix_resolve(prefix, logical);
  bool found = false;
  DIR *d;
  struct dirent *e;

  if (phys == NULL || (d = opendir(phys)) == NULL)
    return false;
  while (!found && (e = readdir(d)) != NULL)
    {
      size_t n = strlen(e->d_name);
      found = n > 3 && e->d_name[0] != '.' && strcmp(e->d_name + n - 3, ".sh") == 0
              && !interpreter_profile_d(e->d_name);
    }
  closedir(d);
  return found;
}

void
frc_env_features_probe(const char *prefix, const char *env, struct frc_env_features *f)
{
  struct stat st;
  memset(f, 0, sizeof(*f));
  f->ca_bundle = tree_stat(prefix, env, "etc/ssl/certs/ca-bundle.crt", &st) && S_ISREG(st.st_mode);
  f->locales = tree_stat(prefix, env, "lib/locale/locale-archive", &st) && S_ISREG(st.st_mode);
  f->java = tree_exec(prefix, env, "bin/java");
  f->rust_src = tree_dir(prefix, env, "rustc-std-workspace-std");
  f->jupyter = tree_dir(prefix, env, "share/jupyter");
  f->cmake = tree_exec(prefix, env, "bin/cmake");
  f->pip = tree_exec(prefix, env, "bin/pip3");
  if (tree_exec(prefix, env, "bin/python3"))
    probe_python(prefix, env, f->python);
  f->profile_d_plugins = probe_profile_d_plugins(prefix, env);
}

yajl_val
frc_env_features_to_json(const struct frc_env_features *f)
{
  yajl_val o = frc_json_new_object();
  frc_json_set(o, "ca_bundle", frc_json_new_bool(f->ca_bundle));
  frc_json_set(o, "locales", frc_json_new_bool(f->locales));
  frc_json_set(o, "java", frc_json_new_bool(f->java));
  frc_json_set(o, "rust_src", frc_json_new_bool(f->rust_src));
  frc_json_set(o, "jupyter", frc_json_new_bool(f->jupyter));
  frc_json_set(o, "cmake", frc_json_new_bool(f->cmake));
  frc_json_set(o, "pip", frc_json_new_bool(f->pip));
  frc_json_set(o, "python", frc_json_new_string(f->python));
  frc_json_set(o, "profile_d_plugins", frc_json_new_bool(f->profile_d_plugins));
  return o;
}

static bool
json_true(yajl_val o, const char *k)
{
  yajl_val v = frc_json_get(o, k);
  return v && v->type == yajl_t_true;
}

void
frc_env_features_from_json(yajl_val o, struct frc_env_features *f)
{
  const char *py = frc_json_get_string(o, "python");
  char v[16];
  memset(f, 0, sizeof(*f));
  if (o == NULL || o->type != yajl_t_object)
    return;
  f->ca_bundle = json_true(o, "ca_bundle");
  f->locales = json_true(o, "locales");
  f->java = json_true(o, "java");
  f->rust_src = json_true(o, "rust_src");
  f->jupyter = json_true(o, "jupyter");
  f->cmake = json_true(o, "cmake");
  f->pip = json_true(o, "pip");
  f->profile_d_plugins = json_true(o, "profile_d_plugins");
  if (py && strlen(py) < 12)
    {
      cleanup_free char *n = xasprintf("python%s", py);
      if (python_version(n, v))
        memcpy(f->python, v, sizeof(v));
    }
}

bool
frc_activation_needs_bash(char *const *values, size_t nvars, bool has_hook)
{
  if (has_hook)
    return true;
  for (size_t i = 0; i < nvars; i++)
    if (strpbrk(values[i], "$`\\\"") != NULL)
      return true;
  return false;
}

bool
frc_activation_wants_bash(const struct frc_activation *a)
{
  return frc_activation_needs_bash(a->var_values, a->nvars, a->has_hook)
         || (a->mode == FRC_MODE_DEV && a->features && a->features->profile_d_plugins);
}

/* ---- the command ---- */

static bool
is_store_executable(const char *prefix, const char *logical)
{
  cleanup_free char *phys = frc_nix_resolve(prefix, logical);
  struct stat st;
  return phys && stat(phys, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The image's own PATH entries, looked up in the rootfs on the node as the
 * container will (frc_stat_in_root: image symlinks stay inside the rootfs,
 * no host file is ever consulted).  It decides nothing but whether to fail
 * early with a clear message, runc does the real lookup inside the
 * container. */
static bool
found_in_image(const char *rootfs, const char *path_value, const char *cmd)
{
  cleanup_free char *copy = xstrdup(path_value ? path_value : "");
  cleanup_close int rfd = -1;
  char *save = NULL;
  if (rootfs == NULL)
    return true; /* cannot tell: let runc decide */
  rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0)
    return true;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *rel = NULL;
      struct stat st;
      if (d[0] != '/' || strstr(d, "..") || str_has_prefix(d, "/nix/"))
        continue;
      rel = xasprintf("%s/%s", d, cmd);
      if (frc_stat_in_root(rfd, rel, true, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
        return true;
    }
  return false;
}

static int
resolve_command(const struct frc_activation *a, yajl_val process, const char *image_path,
                bool wrapped, frc_error_t *err)
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
          /* in bin: the runtime (or bash's exec) finds it through PATH, whose
           * first entry is bin, and argv[0] stays the name, as Flox's exec
           * of the command leaves it (cli/flox-activations/src/attach.rs:
           * 262-280, Command::new(name)).  In sbin, which is not on PATH
           * without --add-sbin: the path. */
          if (i == 0)
            return 0;
          args = frc_json_get(process, "args");
          yajl_tree_free(args->u.array.values[0]);
          args->u.array.values[0] = frc_json_new_string(logical);
          return 0;
        }
    }
  /* The bash wrapper execs it with the PATH the vars and hook leave, which
   * may hold it (a venv or tool the hook puts in FLOX_ENV_CACHE, as Flox's
   * exec finds it, attach.rs:262-280): the wrapper looks, and fails as
   * Flox does when it is not there. */
  if (wrapped || found_in_image(a->rootfs, image_path, cmd))
    return 0;
  {
    cleanup_free char *esc = escape_for_message(cmd, strlen(cmd), 64);
    return frc_error(err, "command \"%s\" is in neither the environment %s nor the image: install "
                          "it in the environment or fix the container's command",
                     esc, a->description);
  }
}

/* ---- the activation ---- */

static bool
is_wrapped(yajl_val process)
{
  const char *a3 = frc_process_nargs(process) >= 4 ? frc_process_arg(process, 3) : NULL;
  return a3 && strcmp(a3, FRC_HOOK_ARGV0) == 0;
}

/* The exported names of the shell, into __flox_runc_x (bash builtins only:
 * no fork, no compgen, which a bash without programmable completion lacks):
 * for a bash before 5.2 only (hook_legacy below). */
#define EXPORTED_FN                                                                               \
  "__flox_runc_exported() {\n"                                                                    \
  "  __flox_runc_x=()\n"                                                                          \
  "  for __flox_runc_n in ${!A@} ${!B@} ${!C@} ${!D@} ${!E@} ${!F@} ${!G@} ${!H@} ${!I@} "       \
  "${!J@} ${!K@} ${!L@} ${!M@} ${!N@} ${!O@} ${!P@} ${!Q@} ${!R@} ${!S@} ${!T@} ${!U@} ${!V@} "   \
  "${!W@} ${!X@} ${!Y@} ${!Z@} ${!a@} ${!b@} ${!c@} ${!d@} ${!e@} ${!f@} ${!g@} ${!h@} ${!i@} "   \
  "${!j@} ${!k@} ${!l@} ${!m@} ${!n@} ${!o@} ${!p@} ${!q@} ${!r@} ${!s@} ${!t@} ${!u@} ${!v@} "   \
  "${!w@} ${!x@} ${!y@} ${!z@} ${!_@}; do\n"                                                      \
  "    if [[ $__flox_runc_n != __flox_runc_* && -n ${!__flox_runc_n+1} "                          \
  "&& ${!__flox_runc_n@a} == *x* && ${!__flox_runc_n@a} != *[aA]* ]]; then "                   \
  "__flox_runc_x+=(\"$__flox_runc_n\"); fi\n"              \
  "  done\n"                                                                                      \
  "}\n"

/* The names an activation never takes over from the hook's process: bash's
 * own, and the wrapper's. */
#define SKIPPED_NAMES "PWD|OLDPWD|SHLVL|SHELLOPTS|_|__flox_runc_*"

/* Flox's messages when the activate script fails (cli/flox-activations/src/
 * start.rs:105-118, printed as `✘ ERROR: ...` by main.rs and
 * flox-core/src/util/message.rs); flox-activations then exits 1. */
#define HOOK_FAILED "printf '%%s\\n' '\xe2\x9c\x98 ERROR: Running hook.on-activate failed' >&2\n"
/* attach.rs:262-280: a command name PATH does not find */
#define NOT_FOUND                                                                                \
  "if [[ $1 != */* ]] && ! type -P -- \"$1\" >/dev/null; then "                                  \
  "printf '%%s\\n' \"\xe2\x9c\x98 ERROR: $1: command not found\" >&2; exit 1; fi\n"
#define HOOK_INCOMPLETE                                                                          \
  "printf '%%s\\n' '\xe2\x9c\x98 ERROR: The hook.on-activate script did not complete normally.' '' " \
  "'Review your script for the use of:' "                                                        \
  "\"- 'exit' commands, which should be replaced with 'return'\" "                               \
  "\"- 'exec' commands, which should be run in a subshell: '(exec command)'\" >&2\n"

/* A function the hook named `builtin` or `set` would run in place of the
 * list below (bash finds functions first): removed by `unset -f` in POSIX
 * mode, where the special builtin `unset` is found before a function of
 * that name; the mode is entered by assigning POSIXLY_CORRECT (no command
 * to look up) and the variable then put back as the hook left it. */
#define POSIX_UNSET_F                                                                             \
  "    if [[ ${POSIXLY_CORRECT+1} ]]; then __flox_runc_pc=$POSIXLY_CORRECT; POSIXLY_CORRECT=y; "   \
  "unset -f builtin set; POSIXLY_CORRECT=$__flox_runc_pc\n"                                      \
  "    else POSIXLY_CORRECT=y; unset -f builtin set; unset POSIXLY_CORRECT; fi\n"

/* Reads the list from $__flox_runc_fd in 4 KiB blocks into __flox_runc_a
 * up to the end mark (__flox_runc_end=1), or to the end of the file. */
#define READ_BLOCKS                                                                                \
  "  __flox_runc_a=($'\\n')\n"                                                                   \
  "  __flox_runc_t=\n"                                                                            \
  "  __flox_runc_end=\n"                                                                          \
  "  while :; do\n"                                                                               \
  "    __flox_runc_c=\n"                                                                          \
  "    if ! IFS= read -r -N 4096 -u \"$__flox_runc_fd\" __flox_runc_c; then __flox_runc_a+=(\"$__flox_runc_c\"); break; fi\n" \
  "    __flox_runc_a+=(\"$__flox_runc_c\")\n"                                                    \
  "    __flox_runc_t=${__flox_runc_t: -16}$__flox_runc_c\n"                                       \
  "    if [[ $__flox_runc_t == *$'\\nflox-runc:after\\n'* ]]; then __flox_runc_end=1; break; fi\n" \
  "  done\n"

/* bash 5.2 and later: the hook's process writes `declare -px` before envrc
 * and after the hook (bash quotes every value on one line, with $'...' for
 * control characters), then 4096 bytes of padding, so that the parent reads
 * the pipe in blocks (`read -N`: one read per block, where `read -d` reads a
 * byte at a time) and still reaches the end marker while a background job
 * of the hook holds the pipe open.  The blocks are kept in an array and the
 * marker looked for in the last one (with the previous one's tail): matching
 * the whole list after each block was quadratic (3 s for 1 MiB).  Three
 * arguments: the record's creation (RECORD_CREATE or ""), the environment
 * twice. */
static const char hook_fast[] =
    "set -euo pipefail\n"
    "if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 502)); then\n"
    "  __flox_runc_dp=1\n"
    "  exec {__flox_runc_fd}< <(\n"
    "    set --\n"
    "    umask 077\n"
    "%s"
    "    builtin declare -px\n"
    "    builtin printf 'flox-runc:before\\n'\n"
    "    . '" "%s" "/activate.d/envrc'\n"
    "    set +euo pipefail\n"
    "    . '" "%s" "/activate.d/hook-on-activate' 1>&2\n"
    POSIX_UNSET_F
    "    set -euo pipefail\n"
    "    builtin declare -px\n"
    "    builtin printf 'flox-runc:after\\n%%4096s' '')\n"
    "  __flox_runc_pid=$!\n"
    READ_BLOCKS;

/* Before bash 5.2 (`declare -p` writes a newline in a value as it is): the
 * hook's process scans the exported names before and after, and writes
 * NUL-separated what changed (sNAME=VALUE), what it unset (uNAME), then
 * `e`; the parent reads it a byte at a time.  Two arguments: the
 * environment. */
static const char hook_legacy[] =
    "else\n"
    "  __flox_runc_dp=\n"
    EXPORTED_FN
    "  exec {__flox_runc_fd}< <(\n"
    "    set --\n"
    "    umask 077\n"
    "    __flox_runc_exported\n"
    "    declare -A __flox_runc_old=()\n"
    "    for __flox_runc_n in \"${__flox_runc_x[@]}\"; do __flox_runc_old[$__flox_runc_n]=${!__flox_runc_n}; done\n"
    "    . '" "%s" "/activate.d/envrc'\n"
    "    set +euo pipefail\n"
    "    . '" "%s" "/activate.d/hook-on-activate' 1>&2\n"
    "    set -euo pipefail\n"
    "    __flox_runc_exported\n"
    "    for __flox_runc_n in \"${__flox_runc_x[@]}\"; do\n"
    "      case $__flox_runc_n in " SKIPPED_NAMES ") ;; *)\n"
    "        if [[ -z ${__flox_runc_old[$__flox_runc_n]+1} || ${__flox_runc_old[$__flox_runc_n]} != \"${!__flox_runc_n}\" ]]; then printf 's%%s=%%s\\0' \"$__flox_runc_n\" \"${!__flox_runc_n}\"; fi ;;\n"
    "      esac\n"
    "      unset '__flox_runc_old[$__flox_runc_n]'\n"
    "    done\n"
    "    for __flox_runc_n in \"${!__flox_runc_old[@]}\"; do case $__flox_runc_n in " SKIPPED_NAMES ") ;; *) printf 'u%%s\\0' \"$__flox_runc_n\" ;; esac; done\n"
    "    printf 'e\\0')\n"
    "  __flox_runc_pid=$!\n"
    "  __flox_runc_end=\n"
    "  while IFS= read -r -d '' __flox_runc_kv <&\"$__flox_runc_fd\"; do\n"
    "    case $__flox_runc_kv in\n"
    "      s*) __flox_runc_kv=${__flox_runc_kv#s}; export \"${__flox_runc_kv%%%%=*}=${__flox_runc_kv#*=}\" || true ;;\n"
    "      u*) __flox_runc_kv=${__flox_runc_kv#u}; if [[ $__flox_runc_kv == [A-Za-z_]* && $__flox_runc_kv != *[!A-Za-z0-9_]* ]]; then unset \"$__flox_runc_kv\" || true; fi ;;\n"
    "      e) __flox_runc_end=1; break ;;\n"
    "    esac\n"
    "  done\n"
    "fi\n";

/* In the hook's process's list: __flox_runc_q is 1 when the value of
 * __flox_runc_v (NAME=VALUE) is one of bash's quoted forms, "..." with `"`,
 * `$`, backquote and backslash escaped, or $'...', with nothing that would
 * end the quotes or expand in the eval below (anything but bash's own
 * `declare -px` text, e.g. a line the hook wrote into the pipe, is not
 * evaluated), else empty. */
#define VALUE_CHECK \
    "          __flox_runc_q=${__flox_runc_v#*=}\n" \
    "          case $__flox_runc_q in\n" \
    "            \\$\\'*\\') __flox_runc_q=${__flox_runc_q:2:-1}; __flox_runc_q=${__flox_runc_q//\\\\\\\\/}; __flox_runc_q=${__flox_runc_q//\\\\\\'/}\n" \
    "              if [[ $__flox_runc_q == *\\'* || $__flox_runc_q == *\\\\ ]]; then __flox_runc_q=; else __flox_runc_q=1; fi ;;\n" \
    "            \\\"*\\\") __flox_runc_q=${__flox_runc_q:1:-1}; __flox_runc_q=${__flox_runc_q//\\\\\\\\/}; __flox_runc_q=${__flox_runc_q//\\\\\\\"/}\n" \
    "              __flox_runc_q=${__flox_runc_q//\\\\\\$/}; __flox_runc_q=${__flox_runc_q//\\\\\\`/}\n" \
    "              if [[ $__flox_runc_q == *[\\\"\\$\\`\\\\]* ]]; then __flox_runc_q=; else __flox_runc_q=1; fi ;;\n" \
    "            *) __flox_runc_q= ;;\n" \
    "          esac\n"

/* Both: the hook's result, then bash 5.2's comparison of the two lists,
 * applied in the parent: each variable whose line changed is exported (an
 * eval of bash's own quoting, VALUE_CHECK), each one gone, turned into an
 * array or left without a value is unset (an exported nameref is exported
 * as bash exports it: its target's name); then the command.  Two
 * arguments: the record's write (RECORD_WRITE or "") and the PWD line. */
static const char hook_apply[] =
    "if [ -z \"$__flox_runc_att\" ]; then\n"
    "exec {__flox_runc_fd}<&-\n"
    "__flox_runc_rc=0\n"
    "wait \"$__flox_runc_pid\" || __flox_runc_rc=$?\n"
    "if [ -z \"$__flox_runc_end\" ]; then\n"
    "  if [ \"$__flox_runc_rc\" -ne 0 ]; then " HOOK_FAILED "  else " HOOK_INCOMPLETE "  fi\n"
    "  exit 1\n"
    "fi\n"
    "fi\n"
    "%s"
    "if [ -n \"$__flox_runc_dp\" ]; then\n"
    "  set -f\n"
    "  IFS=\n"
    "  __flox_runc_b=\"${__flox_runc_a[*]}\"\n"
    "  IFS=$'\\n'\n"
    "  __flox_runc_b=($__flox_runc_b)\n"
    "  IFS=$' \\t\\n'\n"
    "  set +f\n"
    "  declare -A __flox_runc_old=()\n"
    "  __flox_runc_p=\n"
    "  for __flox_runc_l in \"${__flox_runc_b[@]}\"; do\n"
    "    case $__flox_runc_l in\n"
    "      flox-runc:pid\\ *) continue ;;\n"
    "      flox-runc:before) __flox_runc_p=1; continue ;;\n"
    "      flox-runc:after) break ;;\n"
    "    esac\n"
    "    __flox_runc_v=${__flox_runc_l#declare -* }\n"
    "    __flox_runc_n=${__flox_runc_v%%%%=*}\n"
    "    if [ -z \"$__flox_runc_p\" ]; then __flox_runc_old[$__flox_runc_n]=$__flox_runc_l; continue; fi\n"
    "    case $__flox_runc_n in " SKIPPED_NAMES ") ;; *)\n"
    "      if [[ ${__flox_runc_old[$__flox_runc_n]-} != \"$__flox_runc_l\" ]]; then\n"
    "        __flox_runc_f=${__flox_runc_l#declare -}\n"
    "        if [[ $__flox_runc_n != [A-Za-z_]* || $__flox_runc_n == *[!A-Za-z0-9_]* ]]; then :\n"
    "        elif [[ ${__flox_runc_f%%%% *} == *[aA]* || $__flox_runc_v != *=* ]]; then unset \"$__flox_runc_n\" || true\n"
    "        else\n"
    VALUE_CHECK
    "          if [ -n \"$__flox_runc_q\" ]; then eval \"export $__flox_runc_v\" || true; fi\n"
    "        fi\n"
    "      fi ;;\n"
    "    esac\n"
    "    unset '__flox_runc_old[$__flox_runc_n]'\n"
    "  done\n"
    "  for __flox_runc_n in \"${!__flox_runc_old[@]}\"; do case $__flox_runc_n in " SKIPPED_NAMES ") ;; *) unset \"$__flox_runc_n\" || true ;; esac; done\n"
    "fi\n"
    NOT_FOUND "%sexec \"$@\"\n";

/* The container's first activation records its list (both `declare -px`
 * lists and the end mark, as the hook's process wrote them) at
 * FRC_ACTIVATION_RECORD, in the /run/flox tmpfs that create mounted owned
 * by the container's user (mode 0755: only that user and root write
 * there), so that an exec attaches to it as Flox's does
 * (cli/flox-activations/src/cli/activate.rs:154-278): the same hook_apply
 * applies the recorded changes, envrc and the hook do not run again.  The
 * hook's process (umask 077) makes the file, empty, before envrc; the
 * parent appends the list once the hook has completed, only to an empty
 * file of its own: a record without its end mark is never used. */
#define RECORD_CREATE                                                                              \
  "    { builtin printf 'flox-runc:pid %s\\n' \"$BASHPID\" >|'" FRC_ACTIVATION_RECORD "'; } 2>/dev/null || :\n"
#define RECORD_WRITE                                                                               \
  "if [[ -n $__flox_runc_dp && -f " FRC_ACTIVATION_RECORD " && ! -L " FRC_ACTIVATION_RECORD        \
  " && -O " FRC_ACTIVATION_RECORD " ]] && { IFS= read -r __flox_runc_l <" FRC_ACTIVATION_RECORD "; } 2>/dev/null\\\n" \
  "   && [[ $__flox_runc_l == \"flox-runc:pid $__flox_runc_pid\" ]]; then\n"                     \
  "  { builtin printf '%s' \"${__flox_runc_a[@]}\" >>" FRC_ACTIVATION_RECORD "; } 2>/dev/null || :\n" \
  "fi\n"

/* An exec's attach: the record is used when it is a regular file of the
 * exec's own user (as Flox keeps activations per user: an exec as another
 * user runs envrc and the hook itself), checked on the descriptor read,
 * and holds the end mark (bash 5.2's lists only).  One without the end
 * mark is the first activation's hook still running: the exec waits for
 * it as Flox's attach does (activate.rs:160-210, a message every 5 s),
 * polling every 0.1 s (a `read -t` on a pipe it holds both ends of: no
 * process) for at most FRC_ATTACH_WAIT_SECONDS; then, or with no record,
 * envrc and the hook run as for the first activation. */
#define FRC_ATTACH_WAIT_SECONDS 600
#define STR_(x) #x
#define STR(x) STR_(x)
static const char attach_try[] =
    "set -euo pipefail\n"
    "__flox_runc_att=\n"
    "__flox_runc_end=\n"
    "__flox_runc_dp=\n"
    "__flox_runc_w=0\n"
    "__flox_runc_g=0\n"
    "__flox_runc_sl=\n"
    "if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 502)); then\n"
    "  while [[ -f " FRC_ACTIVATION_RECORD " && -O " FRC_ACTIVATION_RECORD " ]] && { exec {__flox_runc_fd}<" FRC_ACTIVATION_RECORD "; } 2>/dev/null; do\n"
    "    __flox_runc_end=\n"
    "    __flox_runc_dp=\n"
    "    if [[ -f /dev/fd/$__flox_runc_fd && -O /dev/fd/$__flox_runc_fd ]]; then\n"
    "      __flox_runc_dp=1\n"
    READ_BLOCKS
    "    fi\n"
    "    exec {__flox_runc_fd}<&-\n"
    "    if [ -n \"$__flox_runc_end\" ]; then __flox_runc_att=1; break; fi\n"
    "    if [ -z \"$__flox_runc_dp\" ] || ((__flox_runc_w >= " STR(FRC_ATTACH_WAIT_SECONDS) "0)); then break; fi\n"
    /* the hook's process gone without completing (or a record cut short):
     * a second's grace for its parent's append, then no waiting */
    "    __flox_runc_p=${__flox_runc_a[1]-}\n"
    "    __flox_runc_p=${__flox_runc_p%%$'\\n'*}\n"
    "    __flox_runc_p=${__flox_runc_p#flox-runc:pid }\n"
    "    if [[ $__flox_runc_p =~ ^[1-9][0-9]*$ ]] && kill -0 \"$__flox_runc_p\" 2>/dev/null; then __flox_runc_g=0\n"
    "    elif ((++__flox_runc_g > 10)); then break; fi\n"
    "    if ((__flox_runc_w % 50 == 0)); then builtin printf '%s\\n' '\xe2\x9a\xa0\xef\xb8\x8f  Waiting for the container'\\''s first activation to complete...' >&2; fi\n"
    "    if [ -z \"$__flox_runc_sl\" ]; then exec {__flox_runc_sl}<> <(:); fi\n"
    "    IFS= read -r -t 0.1 -u \"$__flox_runc_sl\" __flox_runc_c || :\n"
    "    __flox_runc_w=$((__flox_runc_w + 1))\n"
    "  done\n"
    "  if [ -n \"$__flox_runc_sl\" ]; then exec {__flox_runc_sl}<&-; fi\n"
    "fi\n"
    "if [ -z \"$__flox_runc_att\" ]; then\n";

/* [bash, -c, script, flox-activate, cmd...].  Flox runs its activate script
 * (envrc under `set -euo pipefail`, then the hook without it and with its
 * stdout on stderr: assets/environment-interpreter/activate/activate:34,
 * 278,286-302) as a process of its own, records what it changes in the
 * environment, and applies that to the command it then execs
 * (cli/flox-activations/src/start.rs:98-118, attach.rs:262-280), under
 * `umask 077` (activate:239-241, never reset before the hook): a `cd`,
 * `umask`, `ulimit` or file opened by the hook does not reach the command;
 * an `exit` or `exec` in the hook, or a failing envrc, fails the
 * activation (exit 1) and the command does not run.  The same here: a
 * subshell sources envrc and the hook and tells the parent what they
 * changed among the exported variables (hook_fast or hook_legacy above,
 * by the bash's version); the parent applies it and execs the command.
 * The parent reads up to an end mark, not to the end of the pipe, which a
 * background job of the hook may hold open.  Without a hook, envrc is
 * sourced in place.  envrc and the hook see no positional parameters, as
 * in Flox's script after its options.  What it costs grows with the
 * environment's size (a pod with many service links has hundreds of
 * variables): bash 5.2's path does a constant number of builtins and one
 * pass of a few string operations per variable. */
static void
wrap_bash(const struct frc_activation *a, yajl_val process)
{
  yajl_val args = frc_json_get(process, "args");
  yajl_val wrapped = frc_json_new_array();
  cleanup_free char *script = NULL;
  /* bash exports PWD, which Flox's exec of the command does not add */
  const char *pwd = frc_process_getenv(process, "PWD") ? "" : "export -n PWD\n";

  if (!a->has_hook)
    script = xasprintf("set -euo pipefail\n"
                       "__flox_runc_failed() {\n" HOOK_FAILED "}\n"
                       "__flox_runc_envrc() { . '%s/activate.d/envrc'; }\n"
                       "trap '__flox_runc_failed; exit 1' EXIT\n"
                       "__flox_runc_envrc\n"
                       "trap - EXIT\n" NOT_FOUND
                       "%sexec \"$@\"\n",
                       a->env_path, pwd);
  else
    {
      bool record = a->record && !a->attach;
      cleanup_free char *fast = xasprintf(hook_fast, record ? RECORD_CREATE : "", a->env_path, a->env_path);
      cleanup_free char *legacy = xasprintf(hook_legacy, a->env_path, a->env_path);
      cleanup_free char *apply = xasprintf(hook_apply, record ? RECORD_WRITE : "", pwd);
      if (a->record && a->attach)
        script = xasprintf("%s%s%sfi\n%s", attach_try, fast, legacy, apply);
      else
        script = xasprintf("__flox_runc_att=\n%s%s%s", fast, legacy, apply);
    }
  frc_json_append(wrapped, frc_json_new_string(a->bash));
  frc_json_append(wrapped, frc_json_new_string("-c"));
  frc_json_append(wrapped, frc_json_new_string(script));
  frc_json_append(wrapped, frc_json_new_string(FRC_HOOK_ARGV0));
  for (size_t i = 0; i < args->u.array.len; i++)
    {
      frc_json_append(wrapped, args->u.array.values[i]);
      args->u.array.values[i] = NULL;
    }
  args->u.array.len = 0;
  frc_json_set(process, "args", wrapped);
}

/* https://hub.flox.dev -> https://hub.flox.dev/ (the url crate's form),
 * without any userinfo: a hub URL's credentials never reach a container. */
static char *
url_normalised(const char *with_userinfo)
{
  cleanup_free char *url = frc_url_redact(with_userinfo);
  const char *host = strstr(url, "://");
  if (host && strchr(host + 3, '/') == NULL)
    return xasprintf("%s/", url);
  return steal_pointer(&url);
}

/* _FLOX_ACTIVE_ENVIRONMENTS: the serde JSON of Flox's ActiveEnvironments
 * (cli/flox/src/utils/active_environments.rs:16-39,132-149), this one first
 * (set_last_active) unless it is already active; FLOX_PROMPT_ENVIRONMENTS:
 * their names (cli/flox/src/commands/activate.rs:826-847). */
static void
set_active_environments(const struct frc_activation *a, yajl_val process)
{
  const char *old = frc_process_getenv(process, "_FLOX_ACTIVE_ENVIRONMENTS");
  cleanup_json yajl_val list = frc_json_new_array();
  cleanup_json yajl_val prev = NULL;
  cleanup_json yajl_val me = frc_json_new_object();
  yajl_val env = frc_json_new_object();
  cleanup_free char *url = url_normalised(a->floxhub_url ? a->floxhub_url : "https://hub.flox.dev");
  cleanup_free char *text = NULL;
  cleanup_free char *prompt = xstrdup("");
  frc_error_t ignored = NULL;
  bool active = false;
  size_t len;

  frc_json_set(env, "type", frc_json_new_string("remote"));
  frc_json_set(env, "owner", frc_json_new_string(a->owner));
  frc_json_set(env, "name", frc_json_new_string(a->name));
  frc_json_set(env, "floxhub_url", frc_json_new_string(url));
  frc_json_set(env, "version", frc_json_new_int(1));
  frc_json_set(me, "environment", env);
  if (a->generation > 0)
    {
      char g[16];
      snprintf(g, sizeof(g), "%u", a->generation);
      frc_json_set(me, "generation", frc_json_new_string(g));
    }
  frc_json_set(me, "mode", frc_json_new_string(frc_mode_name(a->mode)));

  if (old && old[0] && strlen(old) < (64u << 10)
      && frc_json_parse(old, strlen(old), &prev, &ignored) == 0 && prev->type == yajl_t_array)
    for (size_t i = 0; i < prev->u.array.len; i++)
      {
        yajl_val e = frc_json_get(prev->u.array.values[i], "environment");
        if (e && frc_json_equal(e, env))
          active = true;
      }
  frc_error_release(&ignored);
  if (!active)
    {
      frc_json_append(list, me);
      me = NULL;
    }
  if (prev && prev->type == yajl_t_array)
    for (size_t i = 0; i < prev->u.array.len; i++)
      {
        frc_json_append(list, prev->u.array.values[i]);
        prev->u.array.values[i] = NULL;
      }
  if (prev && prev->type == yajl_t_array)
    prev->u.array.len = 0;
  for (size_t i = 0; i < list->u.array.len; i++)
    {
      const char *n = frc_json_get_string(frc_json_get(list->u.array.values[i], "environment"), "name");
      char *p;
      if (n == NULL)
        continue;
      p = prompt[0] ? xasprintf("%s %s", prompt, n) : xstrdup(n);
      free(prompt);
      prompt = p;
    }
  text = frc_json_serialize(list, &len);
  frc_process_setenv(process, "_FLOX_ACTIVE_ENVIRONMENTS", text);
  frc_process_setenv(process, "FLOX_PROMPT_ENVIRONMENTS", prompt);
}

/* The profile.d scripts of dev mode
 * (assets/environment-interpreter/common/etc/profile.d/, sourced in name
 * order, then profile.d.functions' setup_python and setup_cmake). */
static void
set_dev(const struct frc_activation *a, yajl_val process, const char *env_dirs)
{
  const struct frc_env_features *f = a->features;
  const char *e = a->env_path;
  cleanup_free char *inc = xasprintf("%s/include", e);
  cleanup_free char *lib = xasprintf("%s/lib", e);
  cleanup_free char *pc = xasprintf("%s/lib/pkgconfig:%s/share/pkgconfig", e, e);
  cleanup_free char *aclocal = xasprintf("%s/share/aclocal", e);

  /* 0101_common-dev-mode-additional-paths.sh:11-22 (LD_AUDIT needs Flox's
   * ld-floxlib.so: not set) */
  set_prepended(process, "CPATH", inc);
  set_prepended(process, "LIBRARY_PATH", lib);
  set_prepended(process, "PKG_CONFIG_PATH", pc);
  set_prepended(process, "ACLOCAL_PATH", aclocal);
  if (f == NULL)
    return;
  if (f->rust_src) /* 0501_rust.sh */
    frc_process_setenv(process, "RUST_SRC_PATH", e);
  if (f->jupyter) /* 0502_jupyter.sh */
    {
      cleanup_free char *j = xasprintf("%s/share/jupyter", e);
      set_prepended(process, "JUPYTER_PATH", j);
    }
  if (f->java) /* 0503_java.sh */
    frc_process_setenv(process, "JAVA_HOME", e);
  if (f->python[0]) /* profile.d.functions:23-40 */
    {
      cleanup_free char *sfx = xasprintf("lib/python%s/site-packages", f->python);
      set_dedup(process, "PYTHONPATH", env_dirs, sfx);
    }
  if (f->pip && a->env_cache) /* profile.d.functions:47-54; create writes pip.ini */
    {
      cleanup_free char *ini = xasprintf("%s/pip.ini", a->env_cache);
      frc_process_setenv(process, "PIP_CONFIG_FILE", ini);
    }
  if (f->cmake) /* profile.d.functions:59-79 */
    set_dedup(process, "CMAKE_PREFIX_PATH", env_dirs, NULL);
}

int
frc_activate_process(const struct frc_activation *a, yajl_val process, frc_error_t *err)
{
  cleanup_free char *image_path = NULL;
  cleanup_free char *env_dirs = NULL;
  cleanup_free char *info = xasprintf("%s/share/info", a->env_path);
  cleanup_free char *share = xasprintf("%s/share", a->env_path);
  const char *old_path, *cwd, *ssl;
  bool wants_bash = frc_activation_wants_bash(a);
  bool bash = a->bash != NULL && wants_bash;
  yajl_val args = frc_json_get(process, "args");

  if (args == NULL || args->type != yajl_t_array)
    return frc_error(err, "the container has no command: set command (or args) in the pod spec");
  for (size_t i = 0; i < args->u.array.len; i++)
    if (args->u.array.values[i]->type != yajl_t_string)
      return frc_error(err, "the process arguments are not all strings");
  if (wants_bash && a->bash == NULL)
    return frc_error(err, "the environment %s needs bash for its vars, hook or profile.d scripts and the node has none: "
                          "install Debian's bash-static on the node or set `bash` in the node config",
                     a->description);

  old_path = frc_process_getenv(process, "PATH");
  image_path = xstrdup(old_path ? old_path : FRC_DEFAULT_PATH);

  /* The CLI's exports (cli/flox-activations/src/attach_diff/mod.rs:328-392). */
  frc_process_setenv(process, "FLOX_ENV", a->env_path);
  if (a->env_cache)
    frc_process_setenv(process, "FLOX_ENV_CACHE", a->env_cache);
  /* a FloxHub environment's project is the directory activate runs in
   * (cli/flox-rust-sdk/src/models/environment/remote_environment.rs:469-471) */
  cwd = frc_json_get_string(process, "cwd");
  frc_process_setenv(process, "FLOX_ENV_PROJECT", cwd && cwd[0] == '/' ? cwd : "/");
  {
    cleanup_free char *d = xasprintf("%s/%s", a->owner, a->name);
    frc_process_setenv(process, "FLOX_ENV_DESCRIPTION", d);
  }
  set_active_environments(a, process);
  /* a pod starts no services (cli/flox-activations/src/attach_diff/mod.rs:
   * 362-367, documented in cli/flox/doc/flox-activate.md) */
  frc_process_setenv(process, "FLOX_ACTIVATE_START_SERVICES", "false");

  /* flox-core/src/util/mod.rs:21-49 and the default envrc
   * (pkgs/flox-buildenv/default.nix:36-50): SSL_CERT_FILE kept when set,
   * else a bundle; NIX_SSL_CERT_FILE follows it; LOCALE_ARCHIVE the
   * environment's locales. */
  ssl = frc_process_getenv(process, "SSL_CERT_FILE");
  if (ssl == NULL)
    {
      cleanup_free char *own = xasprintf("%s/etc/ssl/certs/ca-bundle.crt", a->env_path);
      if (a->features && a->features->ca_bundle)
        frc_process_setenv(process, "SSL_CERT_FILE", own);
      else if (a->ca_bundle)
        frc_process_setenv(process, "SSL_CERT_FILE", a->ca_bundle);
      ssl = frc_process_getenv(process, "SSL_CERT_FILE");
    }
  if (ssl)
    {
      /* set again even when unchanged: a second activation gives the same
       * process, entries in the same order */
      cleanup_free char *copy = xstrdup(ssl);
      frc_process_setenv(process, "SSL_CERT_FILE", copy);
      frc_process_setenv(process, "NIX_SSL_CERT_FILE", copy);
    }
  if (a->features && a->features->locales)
    {
      cleanup_free char *la = xasprintf("%s/lib/locale/locale-archive", a->env_path);
      frc_process_setenv(process, "LOCALE_ARCHIVE", la);
    }

  /* set-env-dirs and fix-paths (activate:212-237): FLOX_ENV_DIRS, PATH
   * (bin of every environment; sbin only with --add-sbin, which a pod has
   * not), MANPATH with a trailing ':' */
  set_env_dirs(process, a->env_path);
  env_dirs = xstrdup(frc_process_getenv(process, "FLOX_ENV_DIRS"));
  {
    cleanup_free char *p = frc_prepend_dedup(env_dirs, "bin", old_path ? old_path : FRC_DEFAULT_PATH);
    const char *mp = frc_process_getenv(process, "MANPATH");
    cleanup_free char *m = frc_prepend_dedup(env_dirs, "share/man", mp);
    frc_process_setenv(process, "PATH", p);
    if (!(mp && (mp[0] == ':' || strstr(mp, "::") || (mp[0] && mp[strlen(mp) - 1] == ':'))))
      {
        char *t = xasprintf("%s:", m);
        free(m);
        m = t;
      }
    frc_process_setenv(process, "MANPATH", m);
  }

  /* 0100_common-run-mode-paths.sh, both modes: INFOPATH keeps a trailing ':' */
  {
    const char *old = frc_process_getenv(process, "INFOPATH");
    cleanup_free char *want = xasprintf("%s:", info);
    cleanup_free char *v = old && str_has_prefix(old, want) ? xstrdup(old)
                                                           : xasprintf("%s:%s", info, old ? old : "");
    frc_process_setenv(process, "INFOPATH", v);
  }
  set_prepended(process, "XDG_DATA_DIRS", share);
  if (a->mode == FRC_MODE_DEV)
    set_dev(a, process, env_dirs);

  /* [vars] without anything to evaluate are what bash would export */
  if (!bash)
    for (size_t i = 0; i < a->nvars; i++)
      frc_process_setenv(process, a->var_names[i], a->var_values[i]);
  if (a->disable_metrics)
    frc_process_setenv(process, "FLOX_DISABLE_METRICS", "1");

  if (is_wrapped(process))
    return 0;
  if (resolve_command(a, process, image_path, bash, err) < 0)
    return -1;
  if (bash)
    wrap_bash(a, process);
  return 0;
}
