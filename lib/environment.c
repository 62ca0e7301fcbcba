#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dl.h"
#include "envbuild.h"
#include "environment.h"
#include "http.h"
#include "proc.h"
#include "propagate.h"
#include "json.h"
#include "linkpool.h"
#include "mounts.h"
#include "nodebash.h"
#include "store.h"
#include "util.h"

#define ENV_RECORD_MAX (4u << 20)

/* The 128-bit hex name (out) of the SHA-256 of "flox-runc WHAT VERSION",
 * the system and the mode, each on a line, then tail: with "env" and the
 * lockfile's text, the environment's key; with "memo" and the identity of
 * the node's copy of the lockfile, the name of that key's memo. */
static int
key_hash(const struct frc_env_request *req, const char *what, const char *tail, size_t tail_len,
         char out[65], frc_error_t *err)
{
  const char *sys = frc_nix_system();
  const char *mode = frc_mode_name(req->mode);
  size_t n = 32 + strlen(what) + strlen(sys) + strlen(mode) + tail_len;
  cleanup_free char *buf = xmalloc0(n);
  unsigned char d[32];
  /* v3 of dev: its envrc sources the plugin profile.d scripts and its
   * record says whether there are some (trees of v2 had neither) */
  int len = snprintf(buf, n, "flox-runc %s %s\n%s\n%s\n", what, req->mode == FRC_MODE_DEV ? "v3" : "v2",
                     sys, mode);
  memcpy(buf + len, tail, tail_len);
  if (frc_sha256(buf, (size_t) len + tail_len, d, err) < 0)
    return -1;
  frc_hex(d, 32, out);
  out[32] = '\0'; /* 128 bits name it well enough */
  return 0;
}

static int
hash_key(const struct frc_env_request *req, char out[65], frc_error_t *err)
{
  return key_hash(req, "env", req->lockfile, req->lockfile_len, out, err);
}

/* The key remembered for the node's copy of the lockfile
 * (req->lockfile_id), named by key_hash of that identity:
 * <state_dir>/keys/<name>, 32 hex digits, replaced whole once hashed;
 * anything else there is hashed again and rewritten.  gc removes memos
 * older than gc_max_age_seconds. */
static char *
key_memo_path(const struct frc_env_request *req, frc_error_t *err)
{
  char name[65];

  if (key_hash(req, "memo", req->lockfile_id, strlen(req->lockfile_id), name, err) < 0)
    return NULL;
  return xasprintf("%s/" FRC_KEY_MEMO_DIR "/%s", req->config->state_dir, name);
}

/* 0: out is the key; 1: not remembered and req has no text to hash
 * (frc_environment_find). */
static int
compute_key(const struct frc_env_request *req, char out[65], frc_error_t *err)
{
  cleanup_free char *memo = NULL, *text = NULL, *dir = NULL;
  frc_error_t ignored = NULL;
  size_t len = 0;

  if (req->lockfile_id == NULL || (memo = key_memo_path(req, &ignored)) == NULL)
    {
      frc_error_release(&ignored);
      return req->lockfile == NULL ? 1 : hash_key(req, out, err);
    }
  if (read_file_bounded(memo, 64, &text, &len, &ignored) == 0 && len == 32
      && strspn(text, "0123456789abcdef") == 32)
    {
      memcpy(out, text, 33);
      return 0;
    }
  frc_error_release(&ignored);
  if (req->lockfile == NULL)
    return 1;
  if (hash_key(req, out, err) < 0)
    return -1;
  /* not synced (a cold create must not wait for the disk): one lost or
   * left short by a crash of the node is hashed again; a memo not written
   * costs the next create the hash, nothing else */
  dir = xasprintf("%s/" FRC_KEY_MEMO_DIR, req->config->state_dir);
  if (frc_mkdir_p(dir, 0700, &ignored) < 0 || write_file_replace(memo, out, 32, 0600, &ignored) < 0)
    frc_error_release(&ignored);
  return 0;
}

static char *
record_path(const struct frc_env_request *req, const char *key)
{
  return xasprintf("%s/envs/%s.json", req->config->state_dir, key);
}

/* What load_record found. */
enum record_state
{
  RECORD_UNUSABLE, /* none, damaged, or its paths are gone: build */
  RECORD_USABLE,
  RECORD_NO_VIEW, /* usable, but from before closure-only /nix: add_view */
};

/* The record's summary of its lockfile (save_record): what a warm create
 * takes from the lockfile, so that it need not parse it (a 150 KiB one:
 * ~1.1 ms).  false when there is none (a record of an older release) or it
 * is damaged. */
static bool
load_summary(yajl_val o, struct frc_lockfile *l, size_t *npkgs, bool *has_hook)
{
  yajl_val mode = frc_json_get(o, "mode");
  yajl_val n = frc_json_get(o, "packages");
  yajl_val names = frc_json_get(o, "var_names");
  yajl_val values = frc_json_get(o, "var_values");
  yajl_val hook = frc_json_get(o, "has_hook");
  size_t nv;

  if (o == NULL || o->type != yajl_t_object || n == NULL || n->type != yajl_t_number
      || n->u.number.i < 0 || names == NULL || names->type != yajl_t_array || values == NULL
      || values->type != yajl_t_array || names->u.array.len != values->u.array.len || hook == NULL
      || (hook->type != yajl_t_true && hook->type != yajl_t_false)
      || (mode && (mode->type != yajl_t_string
                   || (strcmp(mode->u.string, "run") != 0 && strcmp(mode->u.string, "dev") != 0))))
    return false;
  nv = names->u.array.len;
  for (size_t i = 0; i < nv; i++)
    if (names->u.array.values[i]->type != yajl_t_string
        || values->u.array.values[i]->type != yajl_t_string)
      return false;
  memset(l, 0, sizeof(*l));
  l->has_mode = mode != NULL;
  l->mode = mode && strcmp(mode->u.string, "dev") == 0 ? FRC_MODE_DEV : FRC_MODE_RUN;
  l->var_names = xmalloc0((nv + 1) * sizeof(char *));
  l->var_values = xmalloc0((nv + 1) * sizeof(char *));
  for (size_t i = 0; i < nv; i++)
    {
      l->var_names[i] = xstrdup(names->u.array.values[i]->u.string);
      l->var_values[i] = xstrdup(values->u.array.values[i]->u.string);
    }
  l->nvars = nv;
  *npkgs = (size_t) n->u.number.i;
  *has_hook = hook->type == yajl_t_true;
  return true;
}

static yajl_val
summary_json(const struct frc_lockfile *l)
{
  yajl_val o = frc_json_new_object();
  yajl_val names = frc_json_new_array();
  yajl_val values = frc_json_new_array();
  if (l->has_mode)
    frc_json_set(o, "mode", frc_json_new_string(frc_mode_name(l->mode)));
  frc_json_set(o, "packages", frc_json_new_int((long long) l->npkgs));
  for (size_t i = 0; i < l->nvars; i++)
    {
      frc_json_append(names, frc_json_new_string(l->var_names[i]));
      frc_json_append(values, frc_json_new_string(l->var_values[i]));
    }
  frc_json_set(o, "var_names", names);
  frc_json_set(o, "var_values", values);
  frc_json_set(o, "has_hook", frc_json_new_bool(l->hook_on_activate != NULL));
  return o;
}

/* This boot's id (the kernel makes a new random one at every boot), "" when
 * it cannot be read. */
static void
boot_id(char out[40])
{
  cleanup_close int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, out, 39);
  out[n > 0 ? n : 0] = '\0';
  out[strcspn(out, "\n")] = '\0';
}

/* Whether what the record names may be used (docs/design.md, "Durability"):
 * the tree and view are not synced before the record is written, so a
 * record is trusted in the boot that wrote it (the page cache holds every
 * byte written, on the disk or not) and after a reboot only once a syncfs
 * that followed it has confirmed it ("synced", written after that syncfs
 * returned).  A record without "boot" is from a release that synced first:
 * on the disk, as a marked one. */
static bool
record_on_disk(yajl_val root)
{
  yajl_val synced = frc_json_get(root, "synced");
  return frc_json_get_string(root, "boot") == NULL
         || (synced && synced->type == yajl_t_number && synced->u.number.i == 1);
}

static bool
record_trusted(yajl_val root)
{
  char now[40];
  if (record_on_disk(root))
    return true;
  boot_id(now);
  return now[0] != '\0' && strcmp(frc_json_get_string(root, "boot"), now) == 0;
}

/* A stamp of the store directory's state in which every pin of the record
 * named build was found present: its device, inode, link count, size,
 * mtime and ctime (ns), fixed width.  A store path added, removed or
 * renamed changes the directory's ctime, its mtime and (a directory) its
 * link count. */
#define PRESENT_STAMP_LEN (3 + 32 + 8 * 17)

static void
present_stamp(const struct stat *st, const char *build, char out[PRESENT_STAMP_LEN + 1])
{
  snprintf(out, PRESENT_STAMP_LEN + 1, "p1 %.32s %016llx %016llx %016llx %016llx %016llx %016llx %016llx %016llx",
           build, (unsigned long long) st->st_dev, (unsigned long long) st->st_ino,
           (unsigned long long) st->st_nlink, (unsigned long long) st->st_size,
           (unsigned long long) st->st_mtim.tv_sec, (unsigned long long) st->st_mtim.tv_nsec,
           (unsigned long long) st->st_ctim.tv_sec, (unsigned long long) st->st_ctim.tv_nsec);
}

/* How long the store directory must have been unchanged before a stamp of
 * it is written: file systems take their timestamps from a coarse clock
 * (a tick, up to 10 ms), so a change within the tick of the last one could
 * leave the ctime as it was; one made after a check that started more than
 * this after the last change gets a later ctime. */
#define PRESENT_SETTLED_NS (2 * 1000000000LL)

/* Whether every pin is in the store (the record's build is build, NULL
 * when it has none).  One fstatat a pin, unless the key's lock file
 * (stamp_fd, -1: none) holds the stamp of the store directory as it is
 * now for this build: no path of the store was added, removed or renamed
 * since the check that wrote it, which found every pin there (each a
 * direct entry of the store directory: a path below one is checked
 * always).  The stamp is written, without a sync, after a full check that
 * found them all, when the directory had not changed for
 * PRESENT_SETTLED_NS before that check began; a stamp lost, cut short or
 * of another state is only a full check more.  Writers hold the lock
 * shared: each writes a whole stamp of a state it checked. */
static bool
pins_present(const struct frc_env_request *req, char *const *pins, const char *build, int stamp_fd)
{
  cleanup_free char *store = NULL;
  char want[PRESENT_STAMP_LEN + 1], have[PRESENT_STAMP_LEN + 1];
  struct timespec began;
  struct stat st;
  bool stamped = stamp_fd >= 0 && build && strlen(build) == 32;

  for (char *const *p = pins; stamped && *p; p++)
    stamped = str_has_prefix(*p, "/nix/store/") && strchr(*p + strlen("/nix/store/"), '/') == NULL;
  if (stamped)
    {
      store = frc_store_physical(req->config, "/nix/store");
      if (stat(store, &st) == 0)
        {
          present_stamp(&st, build, want);
          if (pread(stamp_fd, have, sizeof(have), 0) == PRESENT_STAMP_LEN
              && memcmp(have, want, PRESENT_STAMP_LEN) == 0)
            return true;
        }
    }
  clock_gettime(CLOCK_REALTIME, &began);
  if (!frc_store_all_present(req->config, pins))
    return false;
  if (stamped && stat(store, &st) == 0
      && (long long) st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec
             < (long long) began.tv_sec * 1000000000LL + began.tv_nsec - PRESENT_SETTLED_NS)
    {
      ssize_t unchecked; /* not written: a full check again next time */
      present_stamp(&st, build, want);
      unchecked = pwrite(stamp_fd, want, PRESENT_STAMP_LEN, 0);
      (void) unchecked;
    }
  return true;
}

static void
record_lists_release(struct frc_json_strv (*lists)[2])
{
  frc_json_strv_release(*lists, 2);
}

/* Loads the record; usable when its paths are in the store and rooted.
 * Without req->lock (frc_environment_find) only a record with its
 * lockfile's summary is: *sum and *npkgs get it.  *summarised (optional)
 * says whether the record has one, *on_disk (optional) whether it is
 * trusted across a reboot (synced before it was written, or marked).
 * lock_fd: the key's lock file, held (it keeps pins_present's stamp). */
static enum record_state
load_record(const struct frc_env_request *req, int lock_fd, struct frc_environment *env,
            struct frc_lockfile *sum, size_t *npkgs, bool *summarised, bool *on_disk)
{
  cleanup_free char *path = record_path(req, env->key);
  cleanup_free char *root = frc_gcroot_dir(req->config, "envs", env->key);
  cleanup_free char *text = NULL;
  cleanup_json yajl_val rec = NULL;
  /* the record's two lists of store paths as vectors, each path checked
   * while it is read: no tree node a path (300 at 150 packages) */
  struct frc_json_strv lists[2] __attribute__((cleanup(record_lists_release)))
  = { { .key = "pins", .valid = frc_store_path_valid },
      { .key = "closure", .valid = frc_store_path_valid } };
  struct frc_json_strv *pins = &lists[0], *closure = &lists[1];
  frc_error_t ignored = NULL;
  const char *sp, *bash;
  struct stat st;
  struct frc_lockfile found = { 0 };
  size_t found_npkgs = 0, len = 0;
  bool has_hook = false, has_summary;

  if (read_file_bounded(path, ENV_RECORD_MAX, &text, &len, &ignored) < 0
      || frc_json_parse_strv(text, len, lists, 2, &rec, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return RECORD_UNUSABLE;
    }
  if (rec->type != yajl_t_object || !record_trusted(rec))
    return RECORD_UNUSABLE; /* an earlier boot's, never confirmed on the disk: rebuilt */
  has_summary = load_summary(frc_json_get(rec, "lock"), &found, &found_npkgs, &has_hook);
  if (summarised)
    *summarised = has_summary;
  if (on_disk)
    *on_disk = record_on_disk(rec);
  if (req->lock == NULL && sum != NULL && has_summary)
    {
      *sum = found;
      *npkgs = found_npkgs;
    }
  else
    frc_lockfile_release(&found);
  if (req->lock == NULL && !has_summary)
    return RECORD_UNUSABLE;
  sp = frc_json_get_string(rec, "path");
  bash = frc_json_get_string(rec, "bash");
  /* (a list that is not one of valid store paths: damaged) */
  if (sp == NULL || !str_has_prefix(sp, FRC_ENVS_DIR "/") || pins->strv == NULL
      || (closure->found && closure->strv == NULL) || stat(root, &st) < 0)
    return RECORD_UNUSABLE;
  {
    cleanup_free char *phys = frc_store_physical(req->config, sp);
    if (stat(phys, &st) < 0)
      return RECORD_UNUSABLE;
  }
  env->pins = steal_pointer(&pins->strv);
  if (!pins_present(req, env->pins, frc_json_get_string(rec, "build"), lock_fd))
    return RECORD_UNUSABLE;
  env->path = xstrdup(sp);
  env->bash = bash ? xstrdup(bash) : NULL;
  env->has_hook = req->lock ? req->lock->hook_on_activate != NULL : has_hook;
  frc_env_features_from_json(frc_json_get(rec, "features"), &env->features);
  env->view = frc_view_dir(req->config, env->key);
  if (!closure->found || stat(env->view, &st) < 0)
    return RECORD_NO_VIEW;
  env->closure = steal_pointer(&closure->strv);
  /* last use, for `flox-runc gc` */
  utimensat(AT_FDCWD, path, NULL, 0);
  return RECORD_USABLE;
}

/* build: a new random id naming this write of the record (the confirmation
 * marks only the record it was started for); synced: already on the disk. */
static int
save_record(const struct frc_env_request *req, const struct frc_environment *env, char build[33],
            bool synced, frc_error_t *err)
{
  cleanup_free char *path = record_path(req, env->key);
  cleanup_json yajl_val o = frc_json_new_object();
  yajl_val pins = frc_json_new_array();
  yajl_val closure = frc_json_new_array();
  cleanup_free char *text = NULL;
  char ref[64];
  size_t len;

  for (char **p = env->pins; *p; p++)
    frc_json_append(pins, frc_json_new_string(*p));
  frc_json_set(o, "path", frc_json_new_string(env->path));
  frc_json_set(o, "name", frc_json_new_string(req->name));
  frc_json_set(o, "mode", frc_json_new_string(frc_mode_name(req->mode)));
  frc_json_set(o, "system", frc_json_new_string(frc_nix_system()));
  if (env->bash)
    frc_json_set(o, "bash", frc_json_new_string(env->bash));
  frc_json_set(o, "features", frc_env_features_to_json(&env->features));
  frc_json_set(o, "pins", pins);
  for (char **p = env->closure; *p; p++)
    frc_json_append(closure, frc_json_new_string(*p));
  frc_json_set(o, "closure", closure);
  frc_json_set(o, "lock", summary_json(req->lock));
  snprintf(ref, sizeof(ref), "%lld", (long long) time(NULL));
  frc_json_set(o, "built_at", frc_json_new_string(ref));
  {
    char boot[40];
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r))
      {
        long long t = frc_now_ns();
        pid_t p = getpid();
        memcpy(r, &t, sizeof(t));
        memcpy(r + sizeof(t), &p, sizeof(p));
      }
    frc_hex(r, sizeof(r), build);
    build[32] = '\0';
    boot_id(boot);
    frc_json_set(o, "boot", frc_json_new_string(boot));
    frc_json_set(o, "build", frc_json_new_string(build));
    /* a number: confirm_synced turns 0 into 1 in place */
    frc_json_set(o, "synced", frc_json_new_int(synced ? 1 : 0));
  }
  text = frc_json_serialize(o, &len);
  return write_file_replace(path, text, len, 0600, err);
}

/* A confirmation to start (frc_environment_confirm): the record this build
 * wrote, its build id, and the store's and state_dir's file systems opened
 * before anything of the environment was written. */
struct frc_env_confirm
{
  char *record;
  char *pool, *tree; /* the tree whose symlinks go to the pool first (NULL: none) */
  char build[33];
  int store_fd;
  int state_fd;
  int ahead; /* the socket of the process confirm_ahead forked, -1: none */
};

/* Keeps the confirmation of the record build wrote for later
 * (frc_environment_confirm); takes the fds. */
static void
confirm_later(const struct frc_env_request *req, struct frc_environment *env, const char *build,
              const char *pool, const char *tree, int *store_fd, int *state_fd, int *ahead)
{
  struct frc_env_confirm *c = xmalloc0(sizeof(*c));
  frc_environment_confirm(env); /* one pending at most: an earlier one starts now */
  c->record = record_path(req, env->key);
  c->pool = pool && tree ? xstrdup(pool) : NULL;
  c->tree = pool && tree ? xstrdup(tree) : NULL;
  memcpy(c->build, build, sizeof(c->build));
  c->store_fd = steal_fd(store_fd);
  c->state_fd = steal_fd(state_fd);
  c->ahead = ahead ? steal_fd(ahead) : -1;
  env->confirm = c;
}

/* Adds the tree's new symlinks to the node's pool (lib/linkpool.h; the
 * build only looked entries up), then marks the record build wrote as on
 * the disk, once a syncfs of the
 * store's and state_dir's file systems (fds opened before anything of the
 * environment was written, so that a writeback error since is reported)
 * has returned: in a process of its own, off the caller's critical path.
 * A syncfs failure removes the record instead (the next create rebuilds).
 * Nothing here can make a record wrongly trusted: the mark is written
 * after the syncfs, only into the record of this build. */
/* The confirmation's work, in its detached process (confirm_synced,
 * confirm_ahead); ends it. */
static void __attribute__((noreturn))
confirm_work(const char *path, const char *build, const char *pool, const char *tree, int store_fd,
             int state_fd)
{
  if (pool && tree)
    frc_linkpool_add_tree(pool, tree, NULL);
  {
    bool ok = syncfs(store_fd) == 0 && syncfs(state_fd) == 0;
    cleanup_free char *want = xasprintf("\"build\":\"%s\"", build);
    char *text = xmalloc0(ENV_RECORD_MAX + 1), *mark;
    /* The record this build wrote, read and marked through one fd: a
     * record written since (a rebuild) or removed (gc) is another file,
     * never touched.  No lock: nothing here changes what a create or gc
     * decides, and nothing is created (one byte written in place), so
     * nothing appears in a directory that someone may be removing. */
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = 0, r;
    while (fd >= 0 && n < (ssize_t) ENV_RECORD_MAX
           && ((r = pread(fd, text + n, ENV_RECORD_MAX - (size_t) n, n)) > 0 || (r < 0 && errno == EINTR)))
      n += r > 0 ? r : 0;
    if (fd >= 0 && strstr(text, want) != NULL && (mark = strstr(text, "\"synced\":0")) != NULL)
      {
        struct stat held, named;
        if (ok)
          ok = pwrite(fd, "1", 1, (off_t) (mark - text) + (off_t) strlen("\"synced\":")) == 1;
        /* the syncfs failed: the record goes (the next create rebuilds) */
        if (!ok && fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_ino == named.st_ino
            && held.st_dev == named.st_dev)
          unlink(path);
      }
    free(text);
  }
  _exit(0);
}

/* Adds the tree's new symlinks to the node's pool (lib/linkpool.h; the
 * build only looked entries up), then marks the record build wrote as on
 * the disk, once a syncfs of the
 * store's and state_dir's file systems (fds opened before anything of the
 * environment was written, so that a writeback error since is reported)
 * has returned: in a process of its own, off the caller's critical path.
 * A syncfs failure removes the record instead (the next create rebuilds).
 * Nothing here can make a record wrongly trusted: the mark is written
 * after the syncfs, only into the record of this build. */
static void
confirm_synced(const char *path, const char *build, const char *pool, const char *tree,
               int store_fd, int state_fd)
{
  int keep[2] = { store_fd, state_fd };

  /* No pipe of the caller's and no lock of the create's (a flock lives as
   * long as any copy of its fd) held open, no directory of its kept busy:
   * the caller waits only for the intermediate child (lib/proc.h). */
  if (store_fd < 0 || state_fd < 0 || frc_proc_detach(keep, 2) != 0)
    return; /* no mark: after a reboot the environment is rebuilt */
  confirm_work(path, build, pool, tree, keep[0], keep[1]);
}

/* The confirmation's process forked ahead, while Nix realises (its two
 * forks then cost the build nothing): detached as confirm_synced's, with
 * the two fds and one end of a socket, it reads what to confirm (record
 * path, build id, pool, tree: each NUL-terminated, the last two empty when
 * none) until the socket's end and then does confirm_synced's work; a
 * socket closed before all of it came (the build failed, the caller died)
 * ends it with nothing done.  The caller's end of the socket (close-on-exec),
 * -1 when none could be forked (confirm_synced forks at the hand-over). */
static int
confirm_ahead(int store_fd, int state_fd)
{
  int sv[2], r;

  if (store_fd < 0 || state_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -1;
  {
    int keep[3] = { store_fd, state_fd, sv[1] };
    r = frc_proc_detach(keep, 3);
    if (r == 0)
      {
        char msg[4 * PATH_MAX + 64];
        const char *f[4];
        size_t n = 0, k = 0;
        ssize_t got;
        while (n < sizeof(msg)
               && ((got = read(keep[2], msg + n, sizeof(msg) - n)) > 0 || (got < 0 && errno == EINTR)))
          n += got > 0 ? (size_t) got : 0;
        for (size_t i = 0, start = 0; i < n && k < 4; i++)
          if (msg[i] == '\0')
            {
              f[k++] = msg + start;
              start = i + 1;
            }
        if (k < 4 || strlen(f[1]) != 32)
          _exit(0); /* nothing to confirm */
        close(keep[2]);
        confirm_work(f[0], f[1], *f[2] ? f[2] : NULL, *f[3] ? f[3] : NULL, keep[0], keep[1]);
      }
  }
  close(sv[1]);
  if (r < 0)
    {
      close(sv[0]);
      return -1;
    }
  return sv[0];
}

void
frc_environment_confirm(struct frc_environment *env)
{
  struct frc_env_confirm *c = env->confirm;
  if (c == NULL)
    return;
  env->confirm = NULL;
  if (c->ahead >= 0)
    {
      /* what to confirm, to the process forked ahead (it starts at the
       * socket's end); a failed send leaves the record unmarked, as a
       * failed fork does */
      cleanup_free char *msg = xasprintf("%s%c%s%c%s%c%s%c", c->record, 0, c->build, 0,
                                         c->pool ? c->pool : "", 0, c->tree ? c->tree : "", 0);
      size_t len = strlen(c->record) + strlen(c->build) + (c->pool ? strlen(c->pool) : 0)
                   + (c->tree ? strlen(c->tree) : 0) + 4;
      for (size_t off = 0; off < len;)
        {
          ssize_t w = send(c->ahead, msg + off, len - off, MSG_NOSIGNAL);
          if (w < 0 && errno == EINTR)
            continue;
          if (w <= 0)
            break;
          off += (size_t) w;
        }
      close(c->ahead);
    }
  else
    confirm_synced(c->record, c->build, c->pool, c->tree, c->store_fd, c->state_fd);
  if (c->store_fd >= 0)
    close(c->store_fd);
  if (c->state_fd >= 0)
    close(c->state_fd);
  free(c->record);
  free(c->pool);
  free(c->tree);
  free(c);
}

/* The key's lock: exclusive to build (or, in `flox-runc gc`, to evict),
 * shared to use a record that is there. */
static int
lock_key(const struct frc_env_request *req, const char *key, bool shared, int *fd, frc_error_t *err)
{
  cleanup_free char *dir = xasprintf("%s/envs", req->config->state_dir);
  cleanup_free char *path = xasprintf("%s/%s.lock", dir, key);
  static const char what[] = "another create that is building the same environment (or gc removing it)";
  if (frc_mkdir_p(dir, 0700, err) < 0)
    return -1;
  if ((shared ? frc_lock_file_shared(path, req->deadline_ns, what, fd, err)
              : frc_lock_file(path, req->deadline_ns, what, fd, err))
      < 0)
    return frc_error_wrap(err, "deadline_seconds=%ld", req->config->deadline_seconds);
  return 0;
}

/* The bash of the activation: the store package to pin and its bin/bash. */
static int
provide_bash(const struct frc_env_request *req, char **pkg, char **bash, frc_error_t *err)
{
  const struct frc_config *c = req->config;
  if (c->bash_package)
    {
      *pkg = xstrdup(c->bash_package);
      *bash = xstrdup(c->bash);
      return 0;
    }
  {
    struct frc_store store = { c, req->log, req->deadline_ns };
    bool added;
    if (frc_node_bash(&store, pkg, &added, err) < 0)
      return -1;
  }
  *bash = xasprintf("%s/bin/bash", *pkg);
  return 0;
}

/* Leftovers of crashed builds of this key (<key>.<pid> of any pid): we hold
 * the key's lock, so no build of it is running. */
static void
remove_crashed_builds(const char *tmp_parent, const char *key)
{
  size_t klen = strlen(key);
  cleanup_dir DIR *d = opendir(tmp_parent);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, key, klen) == 0 && e->d_name[klen] == '.')
      {
        cleanup_free char *p = xasprintf("%s/%s", tmp_parent, e->d_name);
        frc_error_t ignored = NULL;
        frc_rm_rf(p, &ignored);
        frc_error_release(&ignored);
      }
}

/* The packages the tree links, by builder.pl's rules: each selected output
 * at its priority (lib/lockfile.h), then what they propagate
 * (lib/propagate.h).  pkgs[i].store_paths points into *paths. */
static int
link_list(const struct frc_env_request *req, struct frc_envbuild_pkg **pkgs, size_t *npkgs,
          char ***paths, frc_error_t *err)
{
  const struct frc_lockfile *l = req->lock;
  struct frc_propagated *prop = NULL;
  cleanup_free struct frc_lock_link *links = NULL;
  size_t nprop = 0, n = 0, k = 0;
  frc_error_t perr = NULL;

  if (frc_propagate(req->config->store_root, l, req->mode, &prop, &nprop, &perr) < 0)
    {
      *err = perr;
      return frc_error_wrap(err, "the packages' nix-support files");
    }
  n = frc_lock_links(l, req->mode, &links);
  *pkgs = xmalloc0((n + nprop + 1) * sizeof(**pkgs));
  *paths = xmalloc0((2 * (n + nprop) + 1) * sizeof(char *)); /* path, NULL pairs */
  for (; k < n; k++)
    {
      (*paths)[2 * k] = xstrdup(links[k].path);
      (*pkgs)[k].label = l->pkgs[links[k].pkg].label;
      (*pkgs)[k].priority = links[k].priority;
      (*pkgs)[k].store_paths = &(*paths)[2 * k];
    }
  for (size_t i = 0; i < nprop; i++, k++)
    {
      (*paths)[2 * k] = steal_pointer(&prop[i].path);
      (*pkgs)[k].label = (*paths)[2 * k] + strlen("/nix/store/") + 33;
      (*pkgs)[k].priority = prop[i].priority;
      (*pkgs)[k].store_paths = &(*paths)[2 * k];
      (*pkgs)[k].propagated = true;
    }
  frc_propagated_free(prop, nprop);
  *npkgs = k;
  return 0;
}

/* link_list's paths: path, NULL pairs. */
struct pairs
{
  char **v;
  size_t n;
};

static void
pairs_release(struct pairs *p)
{
  for (size_t i = 0; p->v && i < 2 * p->n; i++)
    free(p->v[i]);
  free(p->v);
}

static void
closure_query_abort(struct frc_store_query **q)
{
  frc_store_closure_abort(*q);
}

static void
realising_abort(struct frc_store_realising **r)
{
  frc_store_realise_abort(*r);
}

static void
closure_dbq_free(struct frc_store_closure_dbq **q)
{
  frc_store_closure_db_free(*q);
}

/* The tree's directory while it is built: removed unless moved into place
 * (path NULL then). */
static void
tmp_tree_remove(char **path)
{
  frc_error_t ignored = NULL;
  if (*path == NULL)
    return;
  frc_rm_rf(*path, &ignored);
  frc_error_release(&ignored);
  free(*path);
}

/* A draft of the tree written while Nix realises (lib/envbuild.h
 * frc_envbuild_draft): at the first substitution Nix starts once some of
 * the packages the tree links are valid (in our bench, hello's, once
 * busybox's is), their part of the tree; the build then keeps what it got
 * right.  Propagated packages, known only from the realised packages'
 * files, wait for the build. */
#define FRC_DRAFT_MAX_ASKS 16

struct drafting
{
  const struct frc_env_request *req;
  const struct frc_envbuild_input *in; /* the build's, but for its packages */
  const char *tmp;
  struct frc_lock_link *links;
  size_t nlinks;
  struct frc_envbuild_draft *draft;
  bool done; /* tried (one draft per build) */
  bool spoilt; /* a failed draft left tmp to be emptied */
  unsigned asked; /* Nix's database asked (a query each: bounded) */
};

static void
draft_now(void *data)
{
  struct drafting *d = data;
  const struct frc_lockfile *l = d->req->lock;
  cleanup_free char **paths = NULL;
  cleanup_free bool *valid = NULL;
  cleanup_free struct frc_envbuild_pkg *pkgs = NULL;
  cleanup_free char **one = NULL; /* path, NULL pairs */
  struct frc_envbuild_input in;
  frc_error_t e = NULL;
  size_t n = 0;

  /* a closure of hundreds of paths none of which the tree links: a few
   * queries, not one per path */
  if (d->done || d->nlinks == 0 || ++d->asked > FRC_DRAFT_MAX_ASKS)
    return;
  paths = xmalloc0((d->nlinks + 1) * sizeof(char *));
  valid = xmalloc0((d->nlinks + 1) * sizeof(bool));
  for (size_t i = 0; i < d->nlinks; i++)
    paths[i] = (char *) d->links[i].path;
  if (frc_store_valid_db(d->req->config, paths, valid, &e) < 0)
    {
      frc_error_release(&e); /* busy: the next line tries again */
      return;
    }
  pkgs = xmalloc0((d->nlinks + 1) * sizeof(*pkgs));
  one = xmalloc0((2 * d->nlinks + 1) * sizeof(char *));
  for (size_t i = 0; i < d->nlinks; i++)
    if (valid[i])
      {
        one[2 * n] = paths[i];
        pkgs[n].label = l->pkgs[d->links[i].pkg].label;
        pkgs[n].priority = d->links[i].priority;
        pkgs[n].store_paths = &one[2 * n];
        n++;
      }
  if (n == 0)
    return;
  d->done = true;
  in = *d->in;
  in.pkgs = pkgs;
  in.npkgs = n;
  if (frc_envbuild_draft(&in, d->tmp, &d->draft, &e) < 0)
    {
      frc_log(d->req->log, FRC_LOG_DEBUG, "flox-runc: no draft of the tree: %s", e->msg);
      frc_error_release(&e);
      d->spoilt = true;
      return;
    }
  frc_log(d->req->log, FRC_LOG_DEBUG, "flox-runc: drafted the tree: %zu of %zu packages realised", n,
          d->nlinks);
}

static void
drafting_release(struct drafting *d)
{
  frc_envbuild_draft_free(d->draft);
  free(d->links);
}

static int
build(const struct frc_env_request *req, struct frc_environment *env, frc_error_t *err)
{
  const struct frc_config *c = req->config;
  struct frc_store store = { c, req->log, req->deadline_ns };
  const struct frc_lockfile *l = req->lock;
  cleanup_free char **outputs = xmalloc0((l->npaths + 2) * sizeof(char *));
  cleanup_free struct frc_envbuild_pkg *pkgs = NULL;
  struct pairs pkg_paths __attribute__((cleanup(pairs_release))) = { 0 };
  cleanup_strv char **closure = NULL;
  struct frc_store_query *closure_query __attribute__((cleanup(closure_query_abort))) = NULL;
  struct frc_store_realising *realising __attribute__((cleanup(realising_abort))) = NULL;
  struct frc_store_closure_dbq *dbq __attribute__((cleanup(closure_dbq_free))) = NULL;
  frc_error_t dberr = NULL;
  cleanup_free char *tmp_parent = frc_store_physical(c, "/nix/var/flox-runc/tmp");
  cleanup_free char *tmp_path = xasprintf("%s/%s.%d", tmp_parent, env->key, (int) getpid());
  char *tmp __attribute__((cleanup(tmp_tree_remove))) = NULL;
  cleanup_free char *envs_dir = frc_store_physical(c, FRC_ENVS_DIR);
  cleanup_free char *final = xasprintf("%s/%s", envs_dir, env->key);
  cleanup_free char *pool = frc_store_physical(c, FRC_LINKPOOL_DIR);
  struct frc_envbuild_input in = { 0 };
  size_t nout = 0;
  cleanup_free char *bash_pkg = NULL;
  cleanup_close int store_fd = -1;
  cleanup_close int state_fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int ahead = -1;
  struct drafting drafting __attribute__((cleanup(drafting_release))) = { .req = req, .in = &in };
  char build_id[33];

  /* What the environment links, each path once (lib/lockfile.c made the
   * list in linear time), and the bash of its vars, hook and plugin
   * profile.d scripts. */
  for (; nout < l->npaths; nout++)
    outputs[nout] = l->paths[nout];
  env->has_hook = l->hook_on_activate != NULL;
  /* In dev mode the packages' profile.d scripts may need it too, which is
   * known only once they are realised: a dev environment has it whenever
   * the node does (frc_activation_wants_bash decides at each create). */
  bool needs_bash = frc_activation_needs_bash(l->var_values, l->nvars, env->has_hook);
  if (needs_bash || req->mode == FRC_MODE_DEV)
    {
      bool has = false;
      if (provide_bash(req, &bash_pkg, &env->bash, err) < 0)
        {
          if (needs_bash)
            return -1;
          frc_log(req->log, FRC_LOG_DEBUG, "flox-runc: a dev environment without bash: %s", (*err)->msg);
          frc_error_release(err);
          free(steal_pointer(&bash_pkg));
          free(steal_pointer(&env->bash));
        }
      for (size_t i = 0; bash_pkg && i < nout; i++)
        has = has || strcmp(outputs[i], bash_pkg) == 0;
      if (bash_pkg && !has)
        outputs[nout++] = bash_pkg;
    }
  outputs[nout] = NULL;

  /* Rooted before they are realised (Nix accepts roots to paths it does
   * not have yet): a concurrent nix-collect-garbage cannot take them
   * between the realisation and the end of the build.  A failed build
   * releases the root again (frc_environment_materialise).  Propagated
   * packages are in the outputs' closure, realised and rooted with them. */
  if (frc_gcroot_set(c, "envs", env->key, outputs, err) < 0)
    return -1;
  /* The store directory spreads its entries over the disk's block groups
   * (frc_dir_spread): Nix unpacking thousands of files right after a
   * garbage collection freed thousands is then not slowed by journal-less
   * ext4's scan of the freed inodes.  Made here when missing, as Nix would
   * make it (Nix sets its owner and mode itself when it uses build users). */
  {
    cleanup_free char *store_dir = frc_store_physical(c, "/nix/store");
    if (frc_mkdir_p(store_dir, 0755, err) < 0)
      return -1;
    frc_dir_spread(store_dir);
    /* for confirm_synced: open before Nix and the build write anything */
    store_fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  /* While nix-store realises, what does not need the paths: Nix's
   * database opened for the closure and the build's directories
   * (docs/performance.md, "Lever: ... (cold3)"). */
  /* without one started beside the fetch, a nix-store --serve all the
   * same: its answer comes before its exit (frc_store_realise_answered) */
  struct frc_store_early *no_early = NULL;
  if (nout > 0
      && frc_store_realise_start_early(&store, req->early ? req->early : &no_early, outputs, &realising, err) < 0)
    return -1;
  if (nout > 0 && frc_store_closure_db_prepare(c, outputs, &dbq, &dberr) < 0)
    frc_error_release(&dberr); /* a new node: nix-store makes the database; again below */
  if (frc_mkdir_p(tmp_parent, 0755, err) < 0 || frc_mkdir_p(envs_dir, 0755, err) < 0)
    return -1;
  /* The symlinks the trees share (lib/linkpool.h), beside them; without
   * it (or with share_tree_symlinks off) the tree's symlinks are all its own. */
  if (c->share_tree_symlinks && mkdir(pool, 0700) < 0 && errno != EEXIST)
    frc_log(req->log, FRC_LOG_DEBUG, "flox-runc: no shared symlinks: cannot create `%s`: %s",
            pool, strerror(errno));
  frc_dir_spread(tmp_parent);
  /* the record's confirmation, forked now rather than at the hand-over */
  ahead = confirm_ahead(store_fd, state_fd);
  /* The tree is built at tmp and moved into place by one rename. */
  remove_crashed_builds(tmp_parent, env->key);
  if (mkdir(tmp_path, 0755) < 0)
    return frc_error_errno(err, errno, "cannot create `%s`", tmp_path);
  tmp = xstrdup(tmp_path);
  /* the input of the tree but its packages (a draft's are those realised
   * so far; the build's, link_list's) */
  in.store_root = c->store_root;
  in.mode = req->mode == FRC_MODE_DEV ? FRC_ENVBUILD_DEV : FRC_ENVBUILD_RUN;
  in.var_names = l->var_names;
  in.var_values = l->var_values;
  in.nvars = l->nvars;
  in.hook = l->hook_on_activate;
  in.lockfile = req->lockfile;
  in.lockfile_len = req->lockfile_len;
  /* looked up only: the confirmation adds the new symlinks, off the
   * critical path */
  in.link_pool = c->share_tree_symlinks ? pool : NULL;
  if (realising && c->draft_tree)
    {
      drafting.tmp = tmp;
      drafting.nlinks = frc_lock_links(l, req->mode, &drafting.links);
      frc_store_realise_on_copy(realising, draft_now, &drafting);
    }
  /* Once nix-store's answer says every path is valid: its exit (its
   * store's teardown, 2-7 ms) overlaps the build and is reaped at its end
   * (docs/performance.md, "Lever: cold fixed costs (cold6)"). */
  if (realising && frc_store_realise_answered(&realising, err) < 0)
    return -1;
  /* The closure: what a container of the environment sees (its view).
   * nix-store answers while the tree, which does not need it, is built
   * (docs/performance.md, "Lever: cold start fixed costs"). */
  if (nout > 0)
    {
      /* from Nix's database when it can be read (no process: ~20 ms),
       * else from nix-store, which answers while the tree is built */
      if ((dbq ? frc_store_closure_db_read(steal_pointer(&dbq), &closure, &dberr)
               : frc_store_closure_db(c, outputs, &closure, &dberr))
          < 0)
        {
          frc_log(req->log, FRC_LOG_DEBUG, "flox-runc: the closure from nix-store: %s", dberr->msg);
          frc_error_release(&dberr);
          if (frc_store_closure_start(&store, outputs, &closure_query, err) < 0)
            return -1;
        }
    }
  if (link_list(req, &pkgs, &pkg_paths.n, &pkg_paths.v, err) < 0)
    return -1;

  in.pkgs = pkgs;
  in.npkgs = pkg_paths.n;
  in.draft = drafting.draft;
  if (drafting.spoilt && (frc_rm_rf(tmp, err) < 0 || mkdir(tmp, 0755) < 0))
    return frc_error_wrap(err, "cannot empty `%s` after a failed draft of the tree", tmp);
  frc_log(req->log, FRC_LOG_INFO, "flox-runc: building the %s environment %s", frc_mode_name(req->mode),
          req->name);
  /* The view first, then the tree, each built aside and renamed into
   * place whole, and the record, which is what makes them used
   * (load_record), last.  Nothing is synced here: the record says which
   * boot wrote it, and confirm_synced marks it once a syncfs after it has
   * returned; a record of an earlier boot without that mark is not trusted
   * (rebuilt), and a view left incomplete by a crash is built anew
   * (docs/design.md, "Durability"). */
  if (frc_envbuild(&in, tmp, NULL, err) < 0
      || (closure_query && frc_store_closure_finish(steal_pointer(&closure_query), &closure, err) < 0)
      || frc_view_build(c, env->key, closure, &env->closure, err) < 0
      || frc_rm_rf(final, err) < 0) /* a tree left by a crash */
    return -1;
  if (rename(tmp, final) < 0)
    return frc_error_errno(err, errno, "cannot move the built environment to `%s`", final);
  free(steal_pointer(&tmp));
  env->path = xasprintf("%s/%s", FRC_ENVS_DIR, env->key);

  frc_env_features_probe(c->store_prefix, env->path,
                         &env->features);
  env->pins = xmalloc0((nout + 1) * sizeof(char *));
  for (size_t i = 0; i < nout; i++)
    env->pins[i] = xstrdup(outputs[i]);
  env->view = frc_view_dir(c, env->key);
  /* The GC roots were set to these pins before the realisation. */
  if (save_record(req, env, build_id, false, err) < 0)
    return -1;
  /* the syncfs once the caller has written its own files (a create: its
   * container record and spec), which it would hold up on this disk */
  confirm_later(req, env, build_id, in.link_pool, final, &store_fd, &state_fd, &ahead);
  /* the early nix-store's exit overlapped all of the build (on failure:
   * killed, as before it answered) */
  frc_store_realise_reap(steal_pointer(&realising));
  env->built = true;
  frc_log(req->log, FRC_LOG_INFO, "flox-runc: environment %s (%s) is %s", req->name,
          frc_mode_name(req->mode), env->path);
  return 0;
}

/* dir exists with mode 0700 (an older flox-runc made some 0755). */
static int
private_dir(const char *dir, frc_error_t *err)
{
  struct stat st;
  if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700)
    return 0;
  if (frc_mkdir_p(dir, 0755, err) < 0) /* parents as usual, then dir itself */
    return -1;
  if (chmod(dir, 0700) < 0)
    return frc_error_errno(err, errno, "cannot make `%s` private (mode 0700)", dir);
  return 0;
}

/* What is derived from environments (trees, records, views, the hub cache,
 * container records: vars and hooks of private environments) is readable
 * by root only on the node; containers reach their own through binds.  The
 * GC roots name every container and environment: root only too. */
static int
private_dirs(const struct frc_config *c, frc_error_t *err)
{
  cleanup_free char *var = frc_store_physical(c, "/nix/var/flox-runc");
  cleanup_free char *roots = frc_store_physical(c, "/nix/var/nix/gcroots/flox-runc");
  return private_dir(var, err) < 0 || private_dir(roots, err) < 0 || private_dir(c->state_dir, err) < 0
             ? -1
             : 0;
}

/* An environment built before closure-only /nix (its record has no
 * closure, or its view is gone): query the closure of its pins once, build
 * the view and record both.  The tree, which running containers may use,
 * stays as it is.  Called with the key's lock held. */
static int
add_view(const struct frc_env_request *req, struct frc_environment *env, frc_error_t *err)
{
  struct frc_store store = { req->config, req->log, req->deadline_ns };
  cleanup_strv char **closure = NULL;

  frc_strv_freep(&env->closure);
  if (env->pins[0] && frc_store_closure(&store, env->pins, &closure, err) < 0)
    return -1;
  cleanup_close int store_fd = -1;
  cleanup_close int state_fd = open(req->config->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char build_id[33];
  {
    cleanup_free char *store_dir = frc_store_physical(req->config, "/nix/store");
    store_fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (frc_view_build(req->config, env->key, closure, &env->closure, err) < 0
      || save_record(req, env, build_id, false, err) < 0)
    return -1;
  confirm_later(req, env, build_id, NULL, NULL, &store_fd, &state_fd, NULL);
  return 0;
}

char *
frc_environment_nix_db_dir(const struct frc_config *c, const char *env_key)
{
  return xasprintf("%s/views/%s.nixdb/nix/var/nix/db", c->state_dir, env_key);
}

int
frc_environment_nix_db(const struct frc_env_request *req, const struct frc_environment *env,
                       char **db_dir, frc_error_t *err)
{
  struct frc_store store = { req->config, req->log, req->deadline_ns };
  cleanup_free char *db = frc_environment_nix_db_dir(req->config, env->key);
  cleanup_free char *final = xasprintf("%s/views/%s.nixdb", req->config->state_dir, env->key);
  cleanup_free char *tmp = xasprintf("%s/views/.%s.nixdb.%d", req->config->state_dir, env->key,
                                     (int) getpid());
  cleanup_strv char **closure = NULL;
  cleanup_close int lock_fd = -1;
  frc_error_t ignored = NULL;
  struct stat st;

  /* Built once per environment, under its lock; a warm create finds it. */
  if (stat(db, &st) == 0 || (lock_key(req, env->key, false, &lock_fd, err) == 0 && stat(db, &st) == 0))
    {
      *db_dir = steal_pointer(&db);
      return 0;
    }
  if (lock_fd < 0)
    return -1;
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  frc_rm_rf(final, &ignored); /* a half-made one has no db/ */
  frc_error_release(&ignored);
  if (frc_mkdir_p(tmp, 0700, err) < 0)
    return -1;
  if ((env->pins[0] && frc_store_closure(&store, env->pins, &closure, err) < 0)
      || frc_store_db_template(&store, closure, tmp, err) < 0)
    goto fail;
  if (rename(tmp, final) < 0)
    {
      frc_error_errno(err, errno, "cannot move the Nix database to `%s`", final);
      goto fail;
    }
  *db_dir = steal_pointer(&db);
  return 0;
fail:
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  return frc_error_wrap(err, "cannot build the Nix database of the writable /nix");
}

/* compute_key for materialise, which has the text. */
static int
key_of(const struct frc_env_request *req, char out[65], frc_error_t *err)
{
  int rc = compute_key(req, out, err);
  return rc > 0 ? frc_error(err, "the environment's key needs its manifest.lock, which was not read") : rc;
}

int
frc_environment_materialise(const struct frc_env_request *req, struct frc_environment *env,
                            frc_error_t *err)
{
  cleanup_close int lock_fd = -1;
  bool summarised = false, on_disk = false;

  memset(env, 0, sizeof(*env));
  if (private_dirs(req->config, err) < 0)
    return -1;
  if (key_of(req, env->key, err) < 0)
    return -1;
  /* The warm path reads and touches the record under the key's lock,
   * shared: gc decides (by the record's age) and evicts under it,
   * exclusive, so it either sees this use or is done before it. */
  if (lock_key(req, env->key, true, &lock_fd, err) < 0)
    return -1;
  if (load_record(req, lock_fd, env, NULL, NULL, &summarised, &on_disk) == RECORD_USABLE)
    {
      if (!summarised) /* a record of an older release: later creates need not parse */
        {
          frc_error_t ignored = NULL;
          char build_id[33];
          /* as trusted as the record it replaces: one of an older release
           * was synced before it was written; one of this boot not yet
           * marked stays unmarked (rebuilt after a reboot) */
          save_record(req, env, build_id, on_disk, &ignored);
          frc_error_release(&ignored);
        }
      return 0;
    }
  close(steal_fd(&lock_fd));
  frc_environment_release(env);
  if (key_of(req, env->key, err) < 0 || lock_key(req, env->key, false, &lock_fd, err) < 0)
    return -1;
  switch (load_record(req, lock_fd, env, NULL, NULL, NULL, NULL))
    {
    case RECORD_USABLE: /* built by the create we waited for */
      return 0;
    case RECORD_NO_VIEW:
      return add_view(req, env, err);
    default:
      break;
    }
  frc_environment_release(env);
  if (key_of(req, env->key, err) < 0)
    return -1;
  if (build(req, env, err) < 0)
    {
      frc_error_t ignored = NULL;
      frc_gcroot_release(req->config, "envs", env->key, &ignored);
      frc_error_release(&ignored);
      return -1;
    }
  return 0;
}

int
frc_environment_find(const struct frc_env_request *req, bool annotated, struct frc_environment *env,
                     struct frc_lockfile *summary, size_t *npkgs, frc_error_t *err)
{
  struct frc_env_request r = *req;
  /* Without the annotation the mode is the manifest's (run when it has
   * none), which the records of both modes say. */
  const enum frc_mode modes[2] = { annotated ? req->mode : FRC_MODE_RUN, FRC_MODE_DEV };

  memset(env, 0, sizeof(*env));
  memset(summary, 0, sizeof(*summary));
  r.lock = NULL;
  if (private_dirs(req->config, err) < 0)
    return -1;
  for (int i = 0; i < (annotated ? 1 : 2); i++)
    {
      cleanup_close int lock_fd = -1;
      cleanup_free char *path = NULL;
      int known;
      r.mode = modes[i];
      if ((known = compute_key(&r, env->key, err)) < 0)
        return -1;
      if (known > 0)
        continue;
      /* no record, no lock file made for a key never built */
      path = record_path(&r, env->key);
      if (access(path, F_OK) < 0)
        continue;
      if (lock_key(&r, env->key, true, &lock_fd, err) < 0)
        return -1;
      if (load_record(&r, lock_fd, env, summary, npkgs, NULL, NULL) == RECORD_USABLE
          && frc_lock_pick_mode(summary, annotated, req->mode) == r.mode)
        return 1;
      frc_environment_release(env);
      frc_lockfile_release(summary);
    }
  frc_environment_release(env);
  frc_lockfile_release(summary);
  return 0;
}

void
frc_environment_release(struct frc_environment *env)
{
  frc_environment_confirm(env);
  free(env->path);
  frc_strv_freep(&env->pins);
  frc_strv_freep(&env->closure);
  free(env->view);
  free(env->bash);
  memset(env, 0, sizeof(*env));
}
