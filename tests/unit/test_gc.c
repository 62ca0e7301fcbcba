/* What `flox-runc gc` (lib/gc.c) releases and keeps, without root: a node
 * state and store under a temporary directory, ages set with utime(2), and
 * a stand-in runtime whose `state ID` exits 0 for ids listed as live, 1
 * ("does not exist") for the others and 2 (a transient failure) for ids
 * listed as flaky.  Checked: records of containers the runtime no longer
 * knows are released with their GC roots, live, flaky and young ones kept;
 * orphaned container roots; environments unused for max_age (tree, GC root
 * and record) but not those a record uses or recently used; FLOX_ENV_CACHE
 * of deleted sandboxes and containers; leftovers of interrupted writes and
 * builds; --dry-run removes nothing and counts the same records.  A
 * container's root is one link to its environment's root, whatever the
 * number of packages, and keeps that environment while it is there.
 * Replacing either root never leaves it missing or partly built: a reader
 * racing the replacements always finds every link, and where renameat2
 * has no RENAME_EXCHANGE (a seccomp filter says EINVAL) they are replaced
 * all the same.  The node's pool of tree symlinks loses the entries no tree
 * uses, and a tree kept is whole. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "envbuild.h"
#include "envcache.h"
#include "gc.h"
#include "linkpool.h"
#include "record.h"
#include "store.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-gc-XXXXXX";
static struct frc_config cfg;
static struct frc_runtime rt;
static const char P1[] = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12";
#define OLD (FRC_GC_GRACE_SECONDS + 60)
#define MAX_AGE 86400

static void
age(const char *path, long seconds)
{
  struct utimbuf t = { .actime = time(NULL) - seconds, .modtime = time(NULL) - seconds };
  ck_assert_msg(utime(path, &t) == 0, "utime %s", path);
}

static bool
exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static void
put(const char *path, const char *text, long seconds)
{
  frc_error_t err = NULL;
  cleanup_free char *d = xstrdup(path);
  *strrchr(d, '/') = '\0';
  ck_assert_int_eq(frc_mkdir_p(d, 0700, &err), 0);
  ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0600, &err), 0);
  age(path, seconds);
}

static void
setup(void)
{
  frc_error_t err = NULL;
  frc_test_dir_make(dir, "gc");
  memset(&cfg, 0, sizeof(cfg));
  ck_assert_int_eq(frc_config_parse(&cfg, "{}", 2, "test", &err), 0);
  free(cfg.state_dir);
  free(cfg.store_root);
  cfg.state_dir = xasprintf("%s/state", dir);
  cfg.store_root = xasprintf("%s/store", dir);
  /* the stand-in runtime: argv is [--root ROOT] state ID */
  cleanup_free char *script = xasprintf("#!/bin/sh\n"
                                        "for id; do :; done\n"
                                        "grep -qx \"$id\" '%s/live' 2>/dev/null && exit 0\n"
                                        "grep -qx \"$id\" '%s/flaky' 2>/dev/null && exit 2\n"
                                        "exit 1\n",
                                        dir, dir);
  rt.path = xasprintf("%s/runtime", dir);
  ck_assert_int_eq(write_file_atomic(rt.path, script, strlen(script), 0755, &err), 0);
}

static void
teardown(void)
{
  free(rt.path);
  frc_config_release(&cfg);
  frc_test_dir_remove(dir);
}

/* A container `id` under /run/r with its GC root `k-<id>` on env_key,
 * recorded `seconds` ago. */
static char *
container(const char *id, const char *env_key, long seconds)
{
  cleanup_free char *gcroot = xasprintf("k-%s", id);
  cleanup_free char *env_path = xasprintf("/nix/var/flox-runc/envs/%s", env_key);
  struct frc_record r = { .id = (char *) id, .runtime_root = "/run/r", .env_key = (char *) env_key,
                          .env_path = env_path, .gcroot = gcroot };
  frc_error_t err = NULL;
  cleanup_free char *key = NULL;
  ck_assert_int_eq(frc_record_save(&cfg, &r, &err), 0);
  ck_assert_int_eq(frc_gcroot_link(&cfg, gcroot, env_key, &err), 0);
  ck_assert_int_eq(frc_record_key("/run/r", id, &key, &err), 0);
  key[16] = '\0';
  char *path = xasprintf("%s/containers/%s/%s.json", cfg.state_dir, key, id);
  age(path, seconds);
  return path;
}

/* A built environment: record, tree and GC root, last used `seconds` ago. */
static void
environment(const char *key, long seconds)
{
  char *const pins[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  cleanup_free char *rec = xasprintf("%s/envs/%s.json", cfg.state_dir, key);
  cleanup_free char *tree = xasprintf("%s/nix/var/flox-runc/envs/%s/bin", cfg.store_root, key);
  put(rec, "{}", seconds);
  ck_assert_int_eq(frc_mkdir_p(tree, 0755, &err), 0);
  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", key, pins, &err), 0);
}

static char *
env_tree(const char *key)
{
  return xasprintf("%s/nix/var/flox-runc/envs/%s", cfg.store_root, key);
}

static char *
env_record(const char *key)
{
  return xasprintf("%s/envs/%s.json", cfg.state_dir, key);
}

static char *
env_cache(const char *sandbox, const char *container_key)
{
  struct frc_env_cache_request r = { .config = &cfg, .sandbox_id = sandbox, .runtime_root = "/run/r",
                                     .container_key = container_key, .owner = "acme",
                                     .name = "tools", .uid = geteuid(), .gid = getegid() };
  char *d = NULL;
  frc_error_t err = NULL;
  ck_assert_msg(frc_env_cache_prepare(&r, &d, &err) == 0, "%s", err ? err->msg : "");
  /* age the top directory gc looks at: env-cache/<kind>/<name> */
  cleanup_free char *top = xasprintf("%s/env-cache/%s/%s", cfg.state_dir,
                                     sandbox ? "sandbox" : "container",
                                     sandbox ? sandbox : container_key);
  age(top, OLD);
  free(d);
  return steal_pointer(&top);
}

static void
node(void)
{
  cleanup_free char *live = xasprintf("%s/live", dir);
  cleanup_free char *flaky = xasprintf("%s/flaky", dir);
  put(live, "c-live\nsb-live\n", 0);
  put(flaky, "c-flaky\n", 0);
}

START_TEST(test_gc)
{
  frc_error_t err = NULL;
  struct frc_gc_stats st;
  struct frc_gc_opts o = { .config = &cfg, .runtime = &rt, .max_age_seconds = MAX_AGE };

  node();
  cleanup_free char *r_live = container("c-live", "e-used", OLD);
  cleanup_free char *r_gone = container("c-gone", "e-used", OLD);
  cleanup_free char *r_flaky = container("c-flaky", "e-flaky", OLD);
  cleanup_free char *r_young = container("c-young", "e-young", 5);
  cleanup_free char *root_gone = frc_gcroot_dir(&cfg, "containers", "k-c-gone");
  cleanup_free char *root_live = frc_gcroot_dir(&cfg, "containers", "k-c-live");
  cleanup_free char *orphan = frc_gcroot_dir(&cfg, "containers", "k-orphan");
  cleanup_free char *orphan_young = frc_gcroot_dir(&cfg, "containers", "k-orphan-young");
  ck_assert_int_eq(frc_mkdir_p(orphan, 0755, &err), 0);
  ck_assert_int_eq(frc_mkdir_p(orphan_young, 0755, &err), 0);
  age(orphan, OLD);
  /* the node's bash (lib/nodebash.h): node/, old, no record names it */
  cleanup_free char *node_root = frc_gcroot_dir(&cfg, "node", "bash");
  cleanup_free char *bash_cache = xasprintf("%s/bash.json", cfg.state_dir);
  {
    char *const bash[] = { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-flox-runc-bash", NULL };
    ck_assert_int_eq(frc_gcroot_set(&cfg, "node", "bash", bash, &err), 0);
    age(node_root, OLD);
    put(bash_cache, "{}", OLD);
  }

  environment("e-used", 2 * MAX_AGE); /* old, but a live container uses it */
  environment("e-flaky", 2 * MAX_AGE);
  environment("e-young", 2 * MAX_AGE);
  environment("e-unused", 2 * MAX_AGE); /* no container, unused for long: evicted */
  environment("e-recent", MAX_AGE / 2); /* no container, used recently: kept */

  cleanup_free char *sb_live = env_cache("sb-live", "x");
  cleanup_free char *sb_gone = env_cache("sb-gone", "x");
  /* the sandbox's runtime-root file is not synced (lib/envcache.c): after a
   * crash it may be missing or damaged, and the directory goes all the same */
  cleanup_free char *sb_lost = env_cache("sb-lost", "x");
  cleanup_free char *sb_torn = env_cache("sb-torn", "x");
  {
    cleanup_free char *lost = xasprintf("%s/.runtime-root", sb_lost);
    cleanup_free char *torn = xasprintf("%s/.runtime-root", sb_torn);
    int fd = open(torn, O_WRONLY | O_TRUNC | O_CLOEXEC);
    ck_assert_int_eq(unlink(lost), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\0\0\0\0/r\xff", 7), 7);
    close(fd);
    age(sb_lost, OLD);
  }
  cleanup_free char *cc_live = env_cache(NULL, "k-c-live");
  cleanup_free char *cc_gone = env_cache(NULL, "k-deleted");

  cleanup_free char *tmp_write = xasprintf("%s/envs/.e-used.json.Ab12Cd", cfg.state_dir);
  cleanup_free char *tmp_young = xasprintf("%s/envs/.e-used.json.Zz99Yy", cfg.state_dir);
  cleanup_free char *not_tmp = xasprintf("%s/envs/.keep-me", cfg.state_dir);
  cleanup_free char *build_left = xasprintf("%s/nix/var/flox-runc/tmp/half-built", cfg.store_root);
  cleanup_free char *build_young = xasprintf("%s/nix/var/flox-runc/tmp/building", cfg.store_root);
  put(tmp_write, "x", OLD);
  put(tmp_young, "x", 0);
  put(not_tmp, "x", OLD);
  put(build_left, "x", 0);
  age(build_left, 7200);
  put(build_young, "x", 0);

  /* --dry-run: counted, nothing removed */
  o.dry_run = true;
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.containers, 1);
  ck_assert_uint_eq(st.environments, 1);
  ck_assert_uint_eq(st.env_caches, 4);
  ck_assert_uint_eq(st.failures, 0);
  ck_assert(exists(r_gone) && exists(root_gone) && exists(orphan) && exists(sb_gone));
  ck_assert(exists(tmp_write) && exists(build_left));
  {
    cleanup_free char *rec = env_record("e-unused");
    ck_assert(exists(rec));
  }

  o.dry_run = false;
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.containers, 1);
  ck_assert_uint_eq(st.container_roots, 1);
  ck_assert_uint_eq(st.environments, 1);
  ck_assert_uint_eq(st.env_caches, 4);
  ck_assert_uint_eq(st.leftovers, 2);
  ck_assert_uint_eq(st.failures, 0);

  /* containers: the gone one released, the others untouched */
  ck_assert(!exists(r_gone));
  ck_assert(!exists(root_gone));
  ck_assert(exists(r_live) && exists(root_live));
  ck_assert_msg(exists(r_flaky), "a transient `state` failure released a container");
  ck_assert(exists(r_young));
  ck_assert(!exists(orphan));
  ck_assert(exists(orphan_young));
  ck_assert_msg(exists(node_root) && exists(bash_cache), "gc released the node's bash");
  /* environments */
  {
    const char *kept[] = { "e-used", "e-flaky", "e-young", "e-recent" };
    for (size_t i = 0; i < 4; i++)
      {
        cleanup_free char *rec = env_record(kept[i]);
        cleanup_free char *tree = env_tree(kept[i]);
        cleanup_free char *root = frc_gcroot_dir(&cfg, "envs", kept[i]);
        ck_assert_msg(exists(rec) && exists(tree) && exists(root), "%s was evicted", kept[i]);
      }
    cleanup_free char *rec = env_record("e-unused");
    cleanup_free char *tree = env_tree("e-unused");
    cleanup_free char *root = frc_gcroot_dir(&cfg, "envs", "e-unused");
    ck_assert(!exists(rec) && !exists(tree) && !exists(root));
  }
  /* FLOX_ENV_CACHE */
  ck_assert(exists(sb_live) && exists(cc_live));
  ck_assert(!exists(sb_gone) && !exists(cc_gone));
  ck_assert(!exists(sb_lost) && !exists(sb_torn));
  /* leftovers */
  ck_assert(!exists(tmp_write) && !exists(build_left));
  ck_assert(exists(tmp_young) && exists(not_tmp) && exists(build_young));

  /* a second run finds nothing more */
  ck_assert_int_eq(frc_gc_run(&o, &st, &err), 0);
  ck_assert_uint_eq(st.containers + st.container_roots + st.environments + st.env_caches + st.leftovers,
                    0);
}
END_TEST

/* Once the runtime forgets a container, its environment is in use no more
 * and is evicted after max_age like any other. */
START_TEST(test_release_then_evict)
{
  frc_error_t err = NULL;
  struct frc_gc_stats st;
  struct frc_gc_opts o = { .config = &cfg, .runtime = &rt, .max_age_seconds = MAX_AGE };
  node();
  cleanup_free char *r = container("c-later", "e-only", OLD);
  environment("e-only", 2 * MAX_AGE);
  ck_assert_int_eq(frc_gc_run(&o, &st, &err), 0);
  ck_assert_uint_eq(st.containers, 1);
  ck_assert_uint_eq(st.environments, 1);
  cleanup_free char *rec = env_record("e-only");
  ck_assert(!exists(r) && !exists(rec));
}
END_TEST

/* The link itself aged (utime would follow it to the environment's root). */
static void
age_link(const char *path, long seconds)
{
  struct timespec ts[2] = { { time(NULL) - seconds, 0 }, { time(NULL) - seconds, 0 } };
  ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* A record a node's crash left empty or torn (records are not synced,
 * docs/design.md "The warm create's files"): read as no record by create,
 * exec and delete, so only gc can take it; it did skip it, for ever.  Now
 * an old one is removed with what it held (its root is an orphan); a young
 * one is left alone. */
START_TEST(test_damaged_record)
{
  frc_error_t err = NULL;
  struct frc_gc_stats st;
  struct frc_gc_opts o = { .config = &cfg, .runtime = &rt, .max_age_seconds = MAX_AGE };

  node();
  environment("e-used", 0);
  cleanup_free char *torn = container("c-torn", "e-used", OLD);
  cleanup_free char *young = container("c-torn-young", "e-used", 5);
  cleanup_free char *root = frc_gcroot_dir(&cfg, "containers", "k-c-torn");
  put(torn, "", OLD);
  age_link(root, OLD);
  put(young, "{\"id\":", 5);
  /* one gc cannot read (here EISDIR; EIO, EMFILE on a node): not damaged */
  cleanup_free char *unread = container("c-unreadable", "e-used", OLD);
  ck_assert_int_eq(unlink(unread), 0);
  ck_assert_int_eq(mkdir(unread, 0700), 0);
  age(unread, OLD);

  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.failures, 0);
  ck_assert_msg(!exists(torn), "gc kept a damaged container record");
  ck_assert(!exists(root));
  ck_assert(exists(young));
  ck_assert_msg(exists(unread), "gc removed a record it could not read");
  ck_assert_uint_eq(st.containers, 1);
}
END_TEST

START_TEST(test_container_root_is_one_link)
{
  char *paths[201];
  cleanup_free char *root = frc_gcroot_dir(&cfg, "containers", "k-c1");
  cleanup_free char *key = NULL;
  frc_error_t err = NULL;
  char target[256];
  ssize_t n;
  struct stat st;

  /* an environment of 200 packages: its root has 200 links, the
   * container's is one */
  for (int i = 0; i < 200; i++)
    paths[i] = xasprintf("/nix/store/%032d-pkg-%d", i, i);
  paths[200] = NULL;
  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", "e-many", paths, &err), 0);
  for (int i = 0; i < 200; i++)
    free(paths[i]);
  ck_assert_msg(frc_gcroot_link(&cfg, "k-c1", "e-many", &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_eq(lstat(root, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  n = readlink(root, target, sizeof(target) - 1);
  ck_assert_int_gt(n, 0);
  target[n] = '\0';
  ck_assert_str_eq(target, "../envs/e-many");
  key = frc_gcroot_env_of(&cfg, "k-c1");
  ck_assert_ptr_nonnull(key);
  ck_assert_str_eq(key, "e-many");
  /* again (a crashed create of the same id), over a link or a directory
   * of links from before */
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-c1", "e-many", &err), 0);
  ck_assert_int_eq(frc_gcroot_release(&cfg, "containers", "k-c1", &err), 0);
  ck_assert(!exists(root));
  ck_assert_ptr_null(frc_gcroot_env_of(&cfg, "k-c1"));
  ck_assert_int_eq(mkdir(root, 0755), 0);
  ck_assert_ptr_null(frc_gcroot_env_of(&cfg, "k-c1"));
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-c1", "e-many", &err), 0);
  ck_assert_int_eq(lstat(root, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
}
END_TEST

/* A container root with no record (a create in flight, within the grace
 * period) keeps its environment; orphaned long ago, the root goes and then
 * the environment. */
START_TEST(test_root_keeps_environment)
{
  frc_error_t err = NULL;
  struct frc_gc_stats st;
  struct frc_gc_opts o = { .config = &cfg, .runtime = &rt, .max_age_seconds = MAX_AGE };
  cleanup_free char *croot = frc_gcroot_dir(&cfg, "containers", "k-inflight");
  cleanup_free char *eroot = frc_gcroot_dir(&cfg, "envs", "e-linked");

  environment("e-linked", 2 * MAX_AGE);
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-inflight", "e-linked", &err), 0);
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.environments, 0);
  ck_assert_uint_eq(st.container_roots, 0);
  ck_assert(exists(eroot));
  age_link(croot, OLD);
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.container_roots, 1);
  ck_assert_uint_eq(st.environments, 1);
  ck_assert(!exists(eroot) && !exists(croot));
}
END_TEST

/* What a racing reader (a process, as Nix's GC is) saw. */
struct race
{
  volatile int stop;
  int checks, missing;
  char why[256];
};

#define RACE_LINKS 64

/* Until told to stop: the environment root eroot must hold links 0..63
 * and the container root croot must be a link, at every look.  A link
 * missing from a directory that was swapped for another during the look
 * is a look at the old set being removed, not a missing root: the
 * directory's inode tells. */
static void
race_reader(struct race *r, const char *eroot, const char *croot)
{
  char target[256];
  while (!r->stop)
    {
      struct stat before, after;
      if (lstat(eroot, &before) < 0)
        {
          r->missing++;
          snprintf(r->why, sizeof(r->why), "the environment root was missing");
          r->checks++;
          continue;
        }
      for (int i = 0; i < RACE_LINKS; i++)
        {
          char lp[4096];
          snprintf(lp, sizeof(lp), "%s/%d", eroot, i);
          if (readlink(lp, target, sizeof(target)) > 0)
            continue;
          if (lstat(eroot, &after) < 0 || after.st_ino == before.st_ino)
            {
              r->missing++;
              snprintf(r->why, sizeof(r->why), "link %d of the environment root was missing", i);
            }
          break;
        }
      if (readlink(croot, target, sizeof(target)) <= 0)
        {
          r->missing++;
          snprintf(r->why, sizeof(r->why), "the container root was missing");
        }
      r->checks++;
    }
}

/* A root set again (a rebuild of the environment, a create again of the
 * same container) replaces the old one in one step: never missing, never
 * half made, so a concurrent `nix-store --gc` cannot collect the
 * environment in between; nothing is left beside it. */
START_TEST(test_root_replaced_atomically)
{
  char *a[RACE_LINKS + 1], *b[RACE_LINKS + 1];
  cleanup_free char *eroot = frc_gcroot_dir(&cfg, "envs", "e-race");
  cleanup_free char *croot = frc_gcroot_dir(&cfg, "containers", "k-race");
  cleanup_free char *parent = frc_gcroot_dir(&cfg, "envs", "");
  frc_error_t err = NULL;
  struct race *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int status, n = 0;
  pid_t pid;
  char target[256];
  ssize_t len;

  ck_assert_ptr_ne(r, MAP_FAILED);
  memset(r, 0, sizeof(*r));
  for (int i = 0; i < RACE_LINKS; i++)
    {
      a[i] = xasprintf("/nix/store/%032d-a-%d", i, i);
      b[i] = xasprintf("/nix/store/%032d-b-%d", i, i);
    }
  a[RACE_LINKS] = b[RACE_LINKS] = NULL;
  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", "e-race", a, &err), 0);
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-race", "e-race", &err), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    {
      race_reader(r, eroot, croot);
      _exit(0);
    }
  /* at least 200 rounds, and until the reader looked often enough */
  for (int round = 0; round < 200 || (r->checks < 200 && round < 20000); round++)
    {
      ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", "e-race", round % 2 ? a : b, &err), 0);
      ck_assert_int_eq(frc_gcroot_link(&cfg, "k-race", round % 2 ? "e-race" : "e-other", &err), 0);
    }
  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", "e-race", b, &err), 0);
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-race", "e-other", &err), 0);
  r->stop = 1;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_int_gt(r->checks, 0);
  ck_assert_msg(r->missing == 0, "%d of %d looks: %s", r->missing, r->checks, r->why);
  /* the last set is in place, whole, and nothing is left beside it */
  len = readlink(croot, target, sizeof(target) - 1);
  ck_assert_int_gt(len, 0);
  target[len] = '\0';
  ck_assert_str_eq(target, "../envs/e-other");
  for (int i = 0; i < RACE_LINKS; i++)
    {
      cleanup_free char *lp = xasprintf("%s/%d", eroot, i);
      len = readlink(lp, target, sizeof(target) - 1);
      ck_assert_int_gt(len, 0);
      target[len] = '\0';
      ck_assert_str_eq(target, b[i]);
      free(a[i]);
      free(b[i]);
    }
  {
    cleanup_dir DIR *d = opendir(parent);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    ck_assert_int_eq(n, 1);
  }
  munmap(r, sizeof(*r));
}
END_TEST

/* Where the file system has no RENAME_EXCHANGE (renameat2 answers EINVAL,
 * here by a seccomp filter in a child): the roots are still replaced,
 * whole, a container root over a directory of links from before too, and
 * nothing is left beside them.  The child's exit status says which check
 * failed. */
static int
without_exchange(const char *eroot, const char *croot, char *const *a, char *const *b)
{
  struct sock_filter prog[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_renameat2, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EINVAL & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fprog = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
  frc_error_t err = NULL;
  cleanup_free char *parent = xstrdup(eroot);
  char target[256];
  ssize_t len;

  *strrchr(parent, '/') = '\0';
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) < 0)
    return 10;
  if (renameat2(AT_FDCWD, eroot, AT_FDCWD, croot, RENAME_EXCHANGE) == 0 || errno != EINVAL)
    return 11;
  if (frc_gcroot_set(&cfg, "envs", "e-noex", b, &err) < 0 || mkdir(croot, 0755) < 0
      || frc_gcroot_link(&cfg, "k-noex", "e-noex", &err) < 0)
    return 12;
  for (int i = 0; b[i]; i++)
    {
      cleanup_free char *lp = xasprintf("%s/%d", eroot, i);
      len = readlink(lp, target, sizeof(target) - 1);
      if (len <= 0 || (target[len] = '\0', strcmp(target, b[i]) != 0))
        return 13;
    }
  len = readlink(croot, target, sizeof(target) - 1);
  if (len <= 0 || (target[len] = '\0', strcmp(target, "../envs/e-noex") != 0))
    return 14;
  {
    cleanup_dir DIR *d = opendir(parent);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
      n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (n != 1)
      return 15;
  }
  (void) a;
  return 0;
}

START_TEST(test_root_replaced_without_exchange)
{
  char *a[] = { (char *) P1, NULL };
  char *b[] = { "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b-1", "/nix/store/cccccccccccccccccccccccccccccccc-c-1",
                NULL };
  cleanup_free char *eroot = frc_gcroot_dir(&cfg, "envs", "e-noex");
  cleanup_free char *croot = frc_gcroot_dir(&cfg, "containers", "k-noex");
  frc_error_t err = NULL;
  int status;
  pid_t pid;

  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", "e-noex", a, &err), 0);
  ck_assert_int_eq(frc_gcroot_link(&cfg, "k-noex", "e-noex", &err), 0);
  ck_assert_int_eq(unlink(croot), 0); /* made a directory of links from before, in the child */
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(without_exchange(eroot, croot, a, b));
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

/* A store path of store_root with files bin/<name> and share/<shared>
 * (the latter also in other packages). */
static char *
package(const char *hash_char, const char *name)
{
  char *sp = xasprintf("/nix/store/%.32s-%s", hash_char, name);
  const char *files[] = { "bin/", "share/man/man1/", "share/doc/" };
  for (size_t i = 0; i < 3; i++)
    {
      cleanup_free char *f = xasprintf("%s%s/%s%s", cfg.store_root, sp, files[i], name);
      put(f, name, 0);
    }
  return sp;
}

/* An environment's tree built by lib/envbuild.c with the node's pool, its
 * record last used `seconds` ago. */
static void
built_environment(const char *key, char *const *paths, size_t n, long seconds)
{
  struct frc_envbuild_pkg pkgs[8];
  cleanup_free char *tree = env_tree(key);
  cleanup_free char *rec = env_record(key);
  cleanup_free char *pool = frc_store_physical(&cfg, FRC_LINKPOOL_DIR);
  struct frc_envbuild_input in = { .store_root = cfg.store_root, .mode = FRC_ENVBUILD_RUN,
                                   .pkgs = pkgs, .npkgs = n, .lockfile = "{}",
                                   .lockfile_len = 2, .link_pool = pool };
  char *const *one[8];
  char *v[8][2];
  frc_error_t err = NULL;

  ck_assert(n <= 8);
  for (size_t i = 0; i < n; i++)
    {
      v[i][0] = paths[i];
      v[i][1] = NULL;
      one[i] = v[i];
      pkgs[i] = (struct frc_envbuild_pkg) { .label = paths[i] + 44, .priority = 5,
                                            .store_paths = one[i] };
    }
  ck_assert_int_eq(frc_mkdir_p(pool, 0700, &err), 0);
  ck_assert_int_eq(frc_mkdir_p(tree, 0755, &err), 0);
  ck_assert_msg(frc_envbuild(&in, tree, NULL, &err) == 0, "%s", err ? err->msg : "");
  frc_linkpool_add_tree(pool, tree, NULL); /* as the record's confirmation does */
  put(rec, "{}", seconds);
  ck_assert_int_eq(frc_gcroot_set(&cfg, "envs", key, paths, &err), 0);
}

/* Every entry of dir with its target, in order (the tree as a program
 * reads it). */
static char *
tree_listing(const char *tree)
{
  cleanup_free char *cmd = xasprintf("cd '%s' && find . -printf '%%p %%y %%l\\n' | LC_ALL=C sort",
                                     tree);
  FILE *f = popen(cmd, "r");
  char *text = xmalloc0(1 << 16);
  size_t n;
  ck_assert_ptr_nonnull(f);
  n = fread(text, 1, (1 << 16) - 1, f);
  text[n] = '\0';
  ck_assert_int_eq(pclose(f), 0);
  return text;
}

static size_t
pool_entries(void)
{
  cleanup_free char *pool = frc_store_physical(&cfg, FRC_LINKPOOL_DIR);
  cleanup_dir DIR *d = opendir(pool);
  struct dirent *e;
  size_t n = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  return n;
}

/* The node's pool of tree symlinks (lib/linkpool.h): gc removes the entries
 * of the environments it evicts that no other tree uses, and any other
 * entry no tree uses; the entries a kept tree uses stay, and that tree is
 * whole afterwards. */
START_TEST(test_link_pool)
{
  frc_error_t err = NULL;
  struct frc_gc_stats st;
  struct frc_gc_opts o = { .config = &cfg, .runtime = &rt, .max_age_seconds = MAX_AGE };
  cleanup_free char *a = package("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "shared");
  cleanup_free char *b = package("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "old");
  cleanup_free char *c = package("cccccccccccccccccccccccccccccccc", "kept");
  char *old_paths[] = { a, b, NULL }, *kept_paths[] = { a, c, NULL };
  cleanup_free char *kept_tree = env_tree("e-kept");
  cleanup_free char *old_tree = env_tree("e-old");
  cleanup_free char *pool = frc_store_physical(&cfg, FRC_LINKPOOL_DIR);
  cleanup_free char *stray = xasprintf("%s/%064d", pool, 0);
  cleanup_free char *before = NULL, *after = NULL;
  struct stat sst;

  node();
  built_environment("e-old", old_paths, 2, 2 * MAX_AGE); /* evicted */
  built_environment("e-kept", kept_paths, 2, 0);
  /* each tree: bin/ share/man/man1/ share/doc/ of two packages: 6 links;
   * the shared package's 3 are one entry each */
  ck_assert_uint_eq(pool_entries(), 9);
  ck_assert_int_eq(symlink("/nix/store/gone", stray), 0); /* in no tree */
  before = tree_listing(kept_tree);

  o.dry_run = true;
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.environments, 1);
  ck_assert_uint_eq(st.shared_links, 1); /* the stray: e-old is still there */
  ck_assert_uint_eq(pool_entries(), 10);

  o.dry_run = false;
  ck_assert_msg(frc_gc_run(&o, &st, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(st.environments, 1);
  ck_assert_uint_eq(st.shared_links, 4); /* e-old's own 3 and the stray */
  ck_assert_uint_eq(st.failures, 0);
  ck_assert(!exists(old_tree) && !exists(stray));
  ck_assert_uint_eq(pool_entries(), 6);
  after = tree_listing(kept_tree);
  ck_assert_str_eq(before, after);
  {
    cleanup_free char *hello = xasprintf("%s/bin/shared", kept_tree);
    cleanup_free char *want = xasprintf("%s/bin/shared", a);
    char target[256];
    ssize_t n = readlink(hello, target, sizeof(target) - 1);
    ck_assert_int_gt(n, 0);
    target[n] = '\0';
    ck_assert_str_eq(target, want); /* in the store: the file itself */
    ck_assert_int_eq(lstat(hello, &sst), 0);
    ck_assert_uint_eq(sst.st_nlink, 2); /* the tree's and the pool's */
  }

  /* nothing more; a tree built now shares the entries left */
  ck_assert_int_eq(frc_gc_run(&o, &st, &err), 0);
  ck_assert_uint_eq(st.shared_links, 0);
  built_environment("e-again", old_paths, 2, 0);
  ck_assert_uint_eq(pool_entries(), 9);
  {
    cleanup_free char *t = env_tree("e-again");
    cleanup_free char *p1 = xasprintf("%s/bin/shared", t);
    cleanup_free char *p2 = xasprintf("%s/bin/shared", kept_tree);
    struct stat s1, s2;
    ck_assert_int_eq(lstat(p1, &s1), 0);
    ck_assert_int_eq(lstat(p2, &s2), 0);
    ck_assert(s1.st_ino == s2.st_ino);
  }
}
END_TEST

/* gc's sweep of the pool running all the time beside builds (no lock
 * between them): every tree built is whole and reads as a tree built
 * without the pool, whichever of the sweep's removals and the build's
 * look-ups and additions came first.  The rounds alternate two package sets
 * and remove the previous tree, so the entries of one set's own package
 * are in no tree between rounds and the sweep takes them while the next
 * build wants them again. */
START_TEST(test_link_pool_concurrent_gc)
{
  cleanup_free char *pool = frc_store_physical(&cfg, FRC_LINKPOOL_DIR);
  cleanup_free char *stop = xasprintf("%s/stop", dir);
  char *want[2] = { NULL, NULL };
  char *paths[3];
  char *sets[2][3];
  const char *names[] = { "one", "two", "three" };
  frc_error_t err = NULL;
  size_t swept = 0;
  int status;
  pid_t pid;

  for (int i = 0; i < 3; i++)
    {
      char h[33];
      memset(h, 'a' + i, 32);
      h[32] = '\0';
      paths[i] = package(h, names[i]);
      for (int k = 0; k < 40; k++) /* share/x/ merged: one symlink per file */
        {
          cleanup_free char *f = xasprintf("%s%s/share/x/%s-%d", cfg.store_root, paths[i], names[i], k);
          put(f, "x", 0);
        }
    }
  for (int k = 0; k < 2; k++)
    {
      /* the reference: built without the pool */
      struct frc_envbuild_pkg pkgs[2];
      char *v[2][2] = { { paths[0], NULL }, { paths[1 + k], NULL } };
      cleanup_free char *ref = xasprintf("%s/ref%d", dir, k);
      struct frc_envbuild_input in = { .store_root = cfg.store_root, .mode = FRC_ENVBUILD_RUN,
                                       .pkgs = pkgs, .npkgs = 2, .lockfile = "{}", .lockfile_len = 2 };
      for (int i = 0; i < 2; i++)
        pkgs[i] = (struct frc_envbuild_pkg) { .label = v[i][0] + 44, .priority = 5, .store_paths = v[i] };
      sets[k][0] = paths[0];
      sets[k][1] = paths[1 + k];
      sets[k][2] = NULL;
      ck_assert_int_eq(frc_mkdir_p(ref, 0755, &err), 0);
      ck_assert_int_eq(frc_envbuild(&in, ref, NULL, &err), 0);
      want[k] = tree_listing(ref);
    }
  ck_assert_int_eq(frc_mkdir_p(pool, 0700, &err), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    {
      size_t n = 0, total = 0;
      while (access(stop, F_OK) != 0)
        {
          frc_error_t e = NULL;
          if (frc_linkpool_sweep(pool, false, &n, &e) < 0)
            _exit(1);
          total += n;
          usleep(50);
        }
      _exit(total > 0 ? 0 : 2); /* it did remove entries under the builds */
    }
  for (int round = 0; round < 40; round++)
    {
      cleanup_free char *key = xasprintf("e-%d", round);
      cleanup_free char *tree = env_tree(key);
      cleanup_free char *got = NULL;
      built_environment(key, sets[round % 2], 2, 0);
      got = tree_listing(tree);
      ck_assert_str_eq(got, want[round % 2]);
      if (round > 0)
        {
          cleanup_free char *prev_key = xasprintf("e-%d", round - 1);
          cleanup_free char *prev = env_tree(prev_key);
          ck_assert_int_eq(frc_rm_rf(prev, &err), 0);
        }
    }
  put(stop, "", 0);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the sweep: status %d", status);
  /* quiet again: the one tree left is whole and keeps its entries */
  ck_assert_int_eq(frc_linkpool_sweep(pool, false, &swept, &err), 0);
  {
    cleanup_free char *last = env_tree("e-39");
    cleanup_free char *got = tree_listing(last);
    ck_assert_str_eq(got, want[1]);
  }
  for (int i = 0; i < 3; i++)
    free(paths[i]);
  free(want[0]);
  free(want[1]);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("gc");
  TCase *tc = tcase_create("gc");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_gc);
  tcase_add_test(tc, test_damaged_record);
  tcase_add_test(tc, test_release_then_evict);
  tcase_add_test(tc, test_container_root_is_one_link);
  tcase_add_test(tc, test_root_keeps_environment);
  tcase_add_test(tc, test_root_replaced_atomically);
  tcase_add_test(tc, test_root_replaced_without_exchange);
  tcase_add_test(tc, test_link_pool);
  tcase_add_test(tc, test_link_pool_concurrent_gc);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
