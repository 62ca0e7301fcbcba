/* The lockfile by Flox's rules: buildenv/buildenv.nix and buildenv/builder.pl
 * for the outputs and priorities, cli/flox-rust-sdk/src/providers/buildenv.rs
 * for the systems (flox/flox 6536dac28; docs/flox-compatibility.md). */
#include <stdint.h>
#include <string.h>
#include <sys/utsname.h>

#include "json.h"
#include "lockfile.h"
#include "util.h"

#define STORE_DIR "/nix/store/"

/* Byte sets as bitmaps (bit c of the 256), tested without a branch a byte:
 * a hash's bytes are random, and a test per byte with early exits
 * mispredicted most of them (a warm create checks each path of its record,
 * 300 at 150 packages: ~90 µs by strchr, ~45 µs by comparisons, ~10 µs
 * so). */
static const unsigned long long nix32_set[4] = { 0x03ff000000000000ULL, 0x07cf7fde00000000ULL, 0, 0 };
/* letters, digits and "+-._?=" */
static const unsigned long long name_set[4] = { 0xa3ff680000000000ULL, 0x07fffffe87fffffeULL, 0, 0 };

static inline unsigned long long
in_set(const unsigned long long set[4], unsigned char c)
{
  return (set[c >> 6] >> (c & 63)) & 1;
}

bool
frc_store_path_valid(const char *path)
{
  const unsigned char *p, *name;
  unsigned long long ok = 1;
  size_t name_len;

  if (path == NULL || strncmp(path, STORE_DIR, sizeof(STORE_DIR) - 1) != 0)
    return false;
  p = (const unsigned char *) path + sizeof(STORE_DIR) - 1;
  if (strnlen((const char *) p, 33) < 33) /* (then no byte past the end is read) */
    return false;
  for (int i = 0; i < 32; i++)
    ok &= in_set(nix32_set, p[i]);
  if (!ok || p[32] != '-')
    return false;
  name = p + 33;
  name_len = strnlen((const char *) name, 212);
  if (name_len == 0 || name_len > 211 || name[0] == '.')
    return false;
  for (size_t i = 0; i < name_len; i++)
    ok &= in_set(name_set, name[i]);
  return ok != 0;
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

/* ---- a string set (open addressing) ---- */

static size_t
str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    {
      h ^= (unsigned char) *s;
      h *= 1099511628211ULL;
    }
  return (size_t) h;
}

static size_t
strset_find(const struct frc_strset *set, const char *s)
{
  size_t i = str_hash(s) & (set->cap - 1);
  while (set->slots[i] != NULL && strcmp(set->slots[i], s) != 0)
    i = (i + 1) & (set->cap - 1);
  return i;
}

bool
frc_strset_has(const struct frc_strset *set, const char *s)
{
  return set->cap > 0 && set->slots[strset_find(set, s)] != NULL;
}

bool
frc_strset_add(struct frc_strset *set, const char *s)
{
  size_t i;
  if ((set->n + 1) * 2 > set->cap)
    {
      struct frc_strset bigger = { .cap = set->cap ? set->cap * 2 : 64 };
      bigger.slots = xmalloc0(bigger.cap * sizeof(*bigger.slots));
      for (size_t j = 0; j < set->cap; j++)
        if (set->slots[j])
          bigger.slots[strset_find(&bigger, set->slots[j])] = set->slots[j];
      bigger.n = set->n;
      free(set->slots);
      *set = bigger;
    }
  i = strset_find(set, s);
  if (set->slots[i] != NULL)
    return false;
  set->slots[i] = s;
  set->n++;
  return true;
}

void
frc_strset_release(struct frc_strset *set)
{
  free(set->slots);
  memset(set, 0, sizeof(*set));
}

/* ---- messages ---- */

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

/* Flox itself refuses to build this lockfile (the environment, not
 * flox-runc, must change). */
static int
unbuildable(frc_error_t *err, const char *what, const char *detail, const char *fix)
{
  cleanup_free char *esc = escape_for_message(detail, strlen(detail), 80);
  frc_error(err, "the environment's manifest.lock cannot be built, by Flox either: %s \"%s\": %s",
            what, esc, fix);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

/* "a, b, c and 7 more", each escaped: a bounded line whatever the list. */
static char *
list_for_message(char *const *v)
{
  size_t n = 0, cap = 1, len = 0;
  char *out = xmalloc0(1);
  for (; v && v[n]; n++)
    if (n < FRC_LOCK_LIST_SHOWN)
      {
        cleanup_free char *e = escape_for_message(v[n], strlen(v[n]), 64);
        size_t el = strlen(e);
        cap = len + el + 3;
        out = xrealloc(out, cap);
        if (len)
          {
            memcpy(out + len, ", ", 2);
            len += 2;
          }
        memcpy(out + len, e, el + 1);
        len += el;
      }
  if (n > FRC_LOCK_LIST_SHOWN)
    {
      char *longer = xasprintf("%s and %zu more", out, n - FRC_LOCK_LIST_SHOWN);
      free(out);
      out = longer;
    }
  if (n == 0)
    {
      free(out);
      out = xstrdup("(none)");
    }
  return out;
}

/* ---- small helpers ---- */

static bool
json_array_has(yajl_val arr, const char *s)
{
  if (arr == NULL || arr->type != yajl_t_array)
    return false;
  for (size_t i = 0; i < arr->u.array.len; i++)
    {
      yajl_val v = arr->u.array.values[i];
      if (v->type == yajl_t_string && strcmp(v->u.string, s) == 0)
        return true;
    }
  return false;
}

/* The package's outputs_to_install (builder.pl:578-586 also reads the
 * kebab-case key of flake locks), or NULL. */
static yajl_val
outputs_to_install(yajl_val pkg)
{
  yajl_val v = frc_json_get(pkg, "outputs_to_install");
  if (v == NULL || v->type == yajl_t_null)
    v = frc_json_get(pkg, "outputs-to-install");
  if (v == NULL || v->type == yajl_t_null)
    {
      yajl_val li = frc_json_get(pkg, "locked_installable");
      v = frc_json_get(li, "outputs_to_install");
      if (v == NULL || v->type == yajl_t_null)
        v = frc_json_get(li, "outputs-to-install");
    }
  return v && v->type == yajl_t_array ? v : NULL;
}

/* ---- parsing ---- */

/* manifest.install by install ID, sorted for binary search: look-ups stay
 * O(log n) however many packages and descriptors a lockfile has. */
struct install_index
{
  size_t n;
  size_t *order; /* indices into install's keys, sorted by key */
  yajl_val install;
};

static int
cmp_key(const void *a, const void *b, void *ctx)
{
  yajl_val install = ctx;
  return strcmp(install->u.object.keys[*(const size_t *) a],
                install->u.object.keys[*(const size_t *) b]);
}

static void
index_install(struct install_index *ix, yajl_val install)
{
  ix->install = install;
  if (install == NULL || install->type != yajl_t_object)
    return;
  ix->n = install->u.object.len;
  ix->order = xmalloc0((ix->n + 1) * sizeof(*ix->order));
  for (size_t i = 0; i < ix->n; i++)
    ix->order[i] = i;
  qsort_r(ix->order, ix->n, sizeof(*ix->order), cmp_key, install);
}

static yajl_val
descriptor(const struct install_index *ix, const char *id)
{
  size_t lo = 0, hi = ix->n;
  if (id == NULL)
    return NULL;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(id, ix->install->u.object.keys[ix->order[mid]]);
      if (c == 0)
        return ix->install->u.object.values[ix->order[mid]];
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  return NULL;
}

struct parse
{
  const char *system;
  yajl_val manifest, install;
  struct install_index ix;
  bool v1; /* `version = 1`, else `schema-version` */
  struct frc_lockfile *out;
  struct frc_strset paths; /* out->paths, for de-duplication */
  size_t npaths_cap;
  size_t counter; /* builder.pl's $ignoreCollisionCounter, run numbering */
};

static int
add_output(struct parse *ps, struct frc_lock_package *p, size_t *n, const char *name,
           const char *path, long priority, bool other, frc_error_t *err)
{
  struct frc_lock_output *o;
  if (!frc_store_path_valid(path))
    return malformed(err, "an invalid store path", path);
  for (size_t i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].path, path) == 0)
      return 0;
  if (ps->out->npaths + p->noutputs >= FRC_LOCK_STORE_PATHS_MAX)
    {
      frc_error(err, "the environment selects more than %d store paths for %s: flox-runc refuses "
                     "it; split the environment",
                FRC_LOCK_STORE_PATHS_MAX, ps->system);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  p->outputs = xrealloc(p->outputs, (p->noutputs + 1) * sizeof(*p->outputs));
  o = &p->outputs[p->noutputs++];
  o->name = name ? xstrdup(name) : NULL;
  o->path = xstrdup(path);
  o->priority = priority;
  o->other = other;
  frc_strv_push(&p->store_paths, n, xstrdup(path));
  return 0;
}

/* The outputs Flox links for one package: builder.pl:544-650 (the same rule
 * is buildenv.nix:264-351, which makes them inputs of the build and so
 * realised). */
static int
select_outputs(struct parse *ps, yajl_val pkg, struct frc_lock_package *p, frc_error_t *err)
{
  yajl_val outputs = frc_json_get(pkg, "outputs");
  yajl_val oti = outputs_to_install(pkg);
  yajl_val desc = descriptor(&ps->ix, p->install_id);
  size_t n = 0;

  if (outputs == NULL)
    outputs = frc_json_get(frc_json_get(pkg, "locked_installable"), "outputs");
  if (outputs == NULL || outputs->type != yajl_t_object || outputs->u.object.len == 0)
    return malformed(err, "a package without outputs:", p->install_id);
  if (outputs->u.object.len > FRC_LOCK_OUTPUTS_MAX)
    return malformed(err, "a package with too many outputs:", p->install_id);
  if (oti != NULL && oti->u.array.len > FRC_LOCK_OUTPUTS_MAX)
    return malformed(err, "a package with too many outputs to install:", p->install_id);
  for (size_t i = 0; i < outputs->u.object.len; i++)
    if (outputs->u.object.values[i]->type != yajl_t_string)
      return malformed(err, "an output that is not a store path:", outputs->u.object.keys[i]);

  if (ps->v1)
    {
      /* builder.pl:589-627: every output but `stubs`; outputs_to_install at
       * the package's priority, every other one alone at 1000*p + n, n the
       * builder's global counter.  Perl's hash order decides the order of
       * one package's other outputs there; here it is the lockfile's. */
      for (size_t i = 0; i < outputs->u.object.len; i++)
        {
          const char *k = outputs->u.object.keys[i];
          bool other = !json_array_has(oti, k);
          long prio = other ? FRC_LOCK_DEMOTE * p->priority + (long) ps->counter : p->priority;
          if (strcmp(k, "stubs") == 0)
            continue;
          if (other)
            ps->counter++;
          if (add_output(ps, p, &n, k, outputs->u.object.values[i]->u.string, prio, other, err) < 0)
            return -1;
        }
      return 0;
    }

  /* schema-version (Flox 1.10+), builder.pl:628-642 and 518-542: the
   * descriptor's `outputs` ("all" or a list) if given, else
   * outputs_to_install, each at the package's priority. */
  if (desc == NULL || desc->type != yajl_t_object)
    return unbuildable(err, "the manifest has no package with install ID", p->install_id,
                       "lock the environment again with Flox");
  {
    yajl_val want = frc_json_get(desc, "outputs");
    if (want != NULL && want->type != yajl_t_null)
      {
        if (want->type == yajl_t_string && strcmp(want->u.string, "all") == 0)
          {
            for (size_t i = 0; i < outputs->u.object.len; i++)
              if (add_output(ps, p, &n, outputs->u.object.keys[i],
                             outputs->u.object.values[i]->u.string, p->priority, false, err)
                  < 0)
                return -1;
            return 0;
          }
        if (want->type != yajl_t_array || want->u.array.len > FRC_LOCK_OUTPUTS_MAX)
          return unbuildable(err, "the outputs of", p->install_id,
                             "set them to \"all\" or a list of output names");
        oti = want;
        for (size_t i = 0; i < want->u.array.len; i++)
          {
            yajl_val w = want->u.array.values[i];
            if (w->type != yajl_t_string || frc_json_get_string(outputs, w->u.string) == NULL)
              return unbuildable(err, "the manifest names an output the package has not, in",
                                 p->install_id, "fix its `outputs` in the manifest");
          }
      }
  }
  for (size_t i = 0; oti && i < oti->u.array.len; i++)
    {
      yajl_val w = oti->u.array.values[i];
      const char *path = w->type == yajl_t_string ? frc_json_get_string(outputs, w->u.string) : NULL;
      if (path == NULL)
        return malformed(err, "outputs_to_install names an output the package has not:",
                         p->install_id);
      if (add_output(ps, p, &n, w->u.string, path, p->priority, false, err) < 0)
        return -1;
    }
  return 0;
}

static int
parse_package(struct parse *ps, yajl_val pkg, struct frc_lock_package *p, frc_error_t *err)
{
  const char *id = frc_json_get_string(pkg, "install_id");
  const char *pname = frc_json_get_string(pkg, "pname");
  const char *version = frc_json_get_string(pkg, "version");
  const char *store_path = frc_json_get_string(pkg, "store_path");
  yajl_val prio = frc_json_get(pkg, "priority");
  size_t n = 0;

  if (prio == NULL || prio->type == yajl_t_null)
    prio = frc_json_get(frc_json_get(pkg, "locked_installable"), "priority");
  if (id == NULL || id[0] == '\0' || strlen(id) > 256)
    return malformed(err, "a package without a valid install_id", NULL);
  p->install_id = xstrdup(id);
  p->label = pname && version ? xasprintf("%s-%s", pname, version) : xstrdup(id);
  p->priority = 5;
  if (prio != NULL && prio->type != yajl_t_null)
    {
      if (prio->type != yajl_t_number || !(prio->u.number.flags & YAJL_NUMBER_INT_VALID)
          || prio->u.number.i < 0 || prio->u.number.i > 1000000)
        return malformed(err, "an invalid priority for", id);
      p->priority = (long) prio->u.number.i;
    }
  p->store_paths = xmalloc0(sizeof(char *));
  if (store_path != NULL) /* builder.pl:549-556 */
    return add_output(ps, p, &n, NULL, store_path, p->priority, false, err);
  return select_outputs(ps, pkg, p, err);
}

static const char *
package_system(yajl_val pkg)
{
  const char *sys = frc_json_get_string(pkg, "system");
  if (sys == NULL)
    sys = frc_json_get_string(frc_json_get(pkg, "locked_installable"), "system");
  return sys;
}

static int
parse_vars(yajl_val vars, struct frc_lockfile *out, frc_error_t *err)
{
  if (vars == NULL || vars->type != yajl_t_object)
    return 0;
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
  return 0;
}

static int
parse_manifest(struct parse *ps, frc_error_t *err)
{
  yajl_val manifest = ps->manifest;
  yajl_val version = frc_json_get(manifest, "version");
  yajl_val options = frc_json_get(manifest, "options");
  yajl_val systems = frc_json_get(options, "systems");
  yajl_val mode = frc_json_get(frc_json_get(options, "activate"), "mode");
  const char *on_activate = frc_json_get_string(frc_json_get(manifest, "hook"), "on-activate");
  struct frc_lockfile *out = ps->out;

  if (manifest == NULL || manifest->type != yajl_t_object)
    return malformed(err, "no \"manifest\" object", NULL);
  ps->install = frc_json_get(manifest, "install");
  /* buildenv.nix:333-342, builder.pl:589-649: `version` (only 1) first,
   * then `schema-version`. */
  if (version != NULL)
    {
      if (version->type != yajl_t_number || strcmp(version->u.number.r, "1") != 0)
        return unbuildable(err, "unsupported manifest version",
                           version->type == yajl_t_number ? version->u.number.r : "(not a number)",
                           "lock the environment again with a current Flox (flox upgrade) and "
                           "push it");
      ps->v1 = true;
      out->manifest_version = 1;
    }
  else if (frc_json_get(manifest, "schema-version") == NULL)
    return unbuildable(err, "the manifest has neither", "version or schema-version",
                       "lock the environment again with a current Flox and push it");

  if (systems != NULL && systems->type != yajl_t_null)
    {
      size_t n = 0;
      if (systems->type != yajl_t_array || systems->u.array.len > FRC_LOCK_SYSTEMS_MAX)
        return malformed(err, "options.systems is not a short list of systems", NULL);
      out->systems = xmalloc0(sizeof(char *));
      for (size_t i = 0; i < systems->u.array.len; i++)
        {
          yajl_val s = systems->u.array.values[i];
          if (s->type != yajl_t_string || strlen(s->u.string) > 64)
            return malformed(err, "options.systems holds something that is not a system", NULL);
          frc_strv_push(&out->systems, &n, xstrdup(s->u.string));
        }
    }
  if (mode != NULL && mode->type != yajl_t_null)
    {
      if (mode->type == yajl_t_string && strcmp(mode->u.string, "run") == 0)
        out->mode = FRC_MODE_RUN;
      else if (mode->type == yajl_t_string && strcmp(mode->u.string, "dev") == 0)
        out->mode = FRC_MODE_DEV;
      else
        return malformed(err, "options.activate.mode is neither \"run\" nor \"dev\"", NULL);
      out->has_mode = true;
    }
  if (parse_vars(frc_json_get(manifest, "vars"), out, err) < 0)
    return -1;
  if (on_activate != NULL && on_activate[0] != '\0')
    out->hook_on_activate = xstrdup(on_activate);
  return 0;
}

/* Whether Flox builds the environment on this system
 * (cli/flox-rust-sdk/src/providers/buildenv.rs:1462-1486): options.systems
 * when given; else the systems the catalog packages without their own
 * `systems` were locked for (cli/flox-manifest/src/lockfile/mod.rs:203-235,
 * buildenv.rs:1426-1445), when there are any. */
static int
check_system(struct parse *ps, yajl_val packages, frc_error_t *err)
{
  struct frc_lockfile *out = ps->out;
  cleanup_strv char **locked = NULL;
  cleanup_free char *list = NULL;
  struct frc_strset seen = { 0 };
  size_t nlocked = 0;
  bool ok;

  if (out->systems != NULL)
    {
      for (char **s = out->systems; *s; s++)
        if (strcmp(*s, ps->system) == 0)
          return 0;
      list = list_for_message(out->systems);
      frc_error(err, "the environment supports only the systems %s (its manifest's "
                     "options.systems), not this node's %s: add \"%s\" to options.systems "
                     "(flox edit) and push the environment again, or schedule the pod on a node "
                     "of a listed system",
                list, ps->system, ps->system);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  locked = xmalloc0(sizeof(char *));
  ok = false;
  for (size_t i = 0; i < packages->u.array.len; i++)
    {
      yajl_val pkg = packages->u.array.values[i];
      const char *id = frc_json_get_string(pkg, "install_id");
      const char *sys = package_system(pkg);
      yajl_val desc = descriptor(&ps->ix, id);
      if (id == NULL || sys == NULL || desc == NULL || desc->type != yajl_t_object
          || frc_json_get_string(desc, "pkg-path") == NULL
          || (frc_json_get(desc, "systems") && frc_json_get(desc, "systems")->type != yajl_t_null))
        continue;
      if (strcmp(sys, ps->system) == 0)
        ok = true;
      if (frc_strset_add(&seen, sys))
        {
          if (nlocked >= FRC_LOCK_SYSTEMS_MAX)
            {
              frc_strset_release(&seen);
              return malformed(err, "packages for too many systems", NULL);
            }
          frc_strv_push(&locked, &nlocked, xstrdup(sys));
        }
    }
  frc_strset_release(&seen);
  if (ok || nlocked == 0)
    return 0;
  list = list_for_message(locked);
  frc_error(err, "the environment is not locked for this node's system %s, only for %s: re-lock "
                 "it for %s with a current Flox (flox upgrade, or add \"%s\" to options.systems "
                 "with flox edit) and push it again",
            ps->system, list, ps->system, ps->system);
  return frc_error_code(err, FRC_ECODE_NOT_FOUND);
}

/* How far builder.pl's counter moves for the build-<name> outputs of a
 * version = 1 manifest (builder.pl:713-767,785-791): the other outputs of
 * each build's packages, the "toplevel" group or its runtime-packages. */
static int
count_build_others(struct parse *ps, yajl_val packages, const size_t *others, size_t *total,
                   frc_error_t *err)
{
  yajl_val builds = frc_json_get(ps->manifest, "build");

  *total = 0;
  if (!ps->v1 || builds == NULL || builds->type != yajl_t_object)
    return 0;
  if (builds->u.object.len > FRC_LOCK_BUILDS_MAX)
    return malformed(err, "too many builds", NULL);
  for (size_t b = 0; b < builds->u.object.len; b++)
    {
      yajl_val rp = frc_json_get(builds->u.object.values[b], "runtime-packages");
      struct frc_strset wanted = { 0 }; /* the pkg-paths runtime-packages names */
      bool all = rp == NULL || rp->type != yajl_t_array;
      size_t k = 0;

      for (size_t j = 0; !all && j < rp->u.array.len; j++)
        {
          yajl_val name = rp->u.array.values[j];
          yajl_val d = name->type == yajl_t_string ? descriptor(&ps->ix, name->u.string) : NULL;
          const char *pp = frc_json_get_string(d, "pkg-path");
          yajl_val ds = frc_json_get(d, "systems");
          if (pp == NULL || (ds && ds->type == yajl_t_array && ds->u.array.len > FRC_LOCK_SYSTEMS_MAX))
            continue;
          if (ds && ds->type == yajl_t_array && !json_array_has(ds, ps->system))
            continue;
          frc_strset_add(&wanted, pp);
        }
      for (size_t i = 0; i < packages->u.array.len; i++)
        {
          yajl_val pkg = packages->u.array.values[i];
          const char *group = frc_json_get_string(pkg, "group");
          const char *attr = frc_json_get_string(pkg, "attr_path");
          if (strcmp(package_system(pkg), ps->system) != 0)
            continue;
          if (group && strcmp(group, "toplevel") == 0
              && (all || (attr && frc_strset_has(&wanted, attr))))
            *total += others[k];
          k++;
        }
      frc_strset_release(&wanted);
    }
  return 0;
}

int
frc_lockfile_parse(const char *text, size_t len, const char *system, struct frc_lockfile *out,
                   frc_error_t *err)
{
  cleanup_json yajl_val root = NULL;
  cleanup_free size_t *others = NULL;
  yajl_val lv, packages;
  struct parse ps = { .system = system, .out = out };
  int rc = -1;

  memset(out, 0, sizeof(*out));
  out->paths = xmalloc0(sizeof(char *));
  if (len > FRC_LOCKFILE_MAX_BYTES)
    {
      frc_error(err, "the environment's manifest.lock is larger than %u KiB: flox-runc refuses "
                     "it (real lockfiles are far smaller)",
                FRC_LOCKFILE_MAX_BYTES >> 10);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  if (frc_json_parse(text, len, &root, err) < 0)
    {
      frc_error_wrap(err, "the environment's manifest.lock");
      return frc_error_code(err, FRC_ECODE_SERVER);
    }
  /* Flox reads lockfile-version 1 only (cli/flox-manifest/src/lockfile/mod.rs:69-70,
   * cli/flox-core/src/version.rs:50-63: the integer 1). */
  lv = frc_json_get(root, "lockfile-version");
  if (lv == NULL || lv->type != yajl_t_number || strcmp(lv->u.number.r, "1") != 0)
    {
      cleanup_free char *v = lv && lv->type == yajl_t_number
                                 ? escape_for_message(lv->u.number.r, strlen(lv->u.number.r), 20)
                                 : xstrdup("(missing)");
      frc_error(err, "the environment's manifest.lock has lockfile-version %s, which current Flox "
                     "no longer reads (only 1): re-lock the environment with a current Flox "
                     "(flox upgrade) and push it again",
                v);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  ps.manifest = frc_json_get(root, "manifest");
  if (parse_manifest(&ps, err) < 0)
    return -1;
  packages = frc_json_get(root, "packages");
  if (packages == NULL || packages->type != yajl_t_array)
    return malformed(err, "no \"packages\" array", NULL);
  if (packages->u.array.len > FRC_LOCK_PACKAGES_MAX)
    return malformed(err, "too many packages", NULL);
  for (size_t i = 0; i < packages->u.array.len; i++)
    {
      const char *sys = package_system(packages->u.array.values[i]);
      if (sys == NULL || strlen(sys) > 64)
        return malformed(err, "a package without a \"system\"", NULL);
    }
  index_install(&ps.ix, ps.install);
  if (check_system(&ps, packages, err) < 0)
    goto out;

  others = xmalloc0((packages->u.array.len + 1) * sizeof(*others));
  for (size_t i = 0; i < packages->u.array.len; i++)
    {
      yajl_val pkg = packages->u.array.values[i];
      struct frc_lock_package *p;
      size_t before = ps.counter;
      if (strcmp(package_system(pkg), system) != 0)
        continue;
      out->pkgs = xrealloc(out->pkgs, (out->npkgs + 1) * sizeof(*out->pkgs));
      p = memset(&out->pkgs[out->npkgs++], 0, sizeof(out->pkgs[0]));
      if (parse_package(&ps, pkg, p, err) < 0)
        goto out;
      others[out->npkgs - 1] = ps.counter - before;
      for (size_t j = 0; j < p->noutputs; j++)
        if (frc_strset_add(&ps.paths, p->outputs[j].path))
          {
            frc_strv_push(&out->paths, &out->npaths, xstrdup(p->outputs[j].path));
          }
    }
  out->n_other = ps.counter;
  if (count_build_others(&ps, packages, others, &out->n_build, err) < 0)
    goto out;
  rc = 0;
out:
  frc_strset_release(&ps.paths);
  free(ps.ix.order);
  return rc;
}

long
frc_lock_priority(const struct frc_lockfile *l, const struct frc_lock_output *o, enum frc_mode m)
{
  /* builder.pl:773-784: packagesToPkgs runs for run, then for dev, on one
   * counter. */
  return o->other && m == FRC_MODE_DEV ? o->priority + (long) l->n_other : o->priority;
}

size_t
frc_lock_links(const struct frc_lockfile *l, enum frc_mode m, struct frc_lock_link **out)
{
  struct frc_strset seen = { 0 };
  size_t n = 0, max = 0;

  for (size_t i = 0; i < l->npkgs; i++)
    max += l->pkgs[i].noutputs;
  *out = xmalloc0((max + 1) * sizeof(**out));
  for (size_t i = 0; i < l->npkgs; i++)
    for (int pass = 0; pass < 2; pass++) /* outputs_to_install, then the others */
      for (size_t j = 0; j < l->pkgs[i].noutputs; j++)
        {
          const struct frc_lock_output *o = &l->pkgs[i].outputs[j];
          if (o->other != (pass == 1) || !frc_strset_add(&seen, o->path))
            continue;
          (*out)[n].path = o->path;
          (*out)[n].priority = frc_lock_priority(l, o, m);
          (*out)[n].pkg = i;
          (*out)[n++].output = o;
        }
  frc_strset_release(&seen);
  return n;
}

enum frc_mode
frc_lock_pick_mode(const struct frc_lockfile *l, bool annotated, enum frc_mode ann)
{
  if (annotated)
    return ann;
  return l->has_mode ? l->mode : FRC_MODE_RUN;
}

void
frc_lockfile_release(struct frc_lockfile *l)
{
  for (size_t i = 0; i < l->npkgs; i++)
    {
      free(l->pkgs[i].install_id);
      free(l->pkgs[i].label);
      frc_strv_freep(&l->pkgs[i].store_paths);
      for (size_t j = 0; j < l->pkgs[i].noutputs; j++)
        {
          free(l->pkgs[i].outputs[j].name);
          free(l->pkgs[i].outputs[j].path);
        }
      free(l->pkgs[i].outputs);
    }
  free(l->pkgs);
  frc_strv_freep(&l->paths);
  frc_strv_freep(&l->systems);
  frc_strv_freep(&l->var_names);
  frc_strv_freep(&l->var_values);
  free(l->hook_on_activate);
  memset(l, 0, sizeof(*l));
}
