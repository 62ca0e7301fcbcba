/* Environment records (lib/environment.c), without root and without Nix:
 * a store under a temporary store_root holding one package, and a
 * stand-in `nix-store` first in PATH that logs each call and prints the
 * package as the closure.  Checked: a cold materialise realises, builds the
 * tree and writes the record (path, pins, closure, mode, system); a warm one
 * reads the record, calls no nix-store and marks the record used (gc's
 * clock); a damaged record, a missing tree or a released GC root rebuild; a
 * record from before closure-only /nix gets its closure and view with one
 * query and no rebuild; the mode is part of the key; a warm look-up by the
 * record's summary of the lockfile needs no parse.  Built trees are sealed
 * (0555) as on a node, where flox-runc runs as root: an unprivileged run of
 * this test first makes itself root of a user namespace of its own (its
 * files are then its to manage, nothing else is). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "environment.h"
#include "json.h"
#include "lockfile.h"
#include "store.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-environment-XXXXXX";
static char *old_path;
static struct frc_config cfg;
static struct frc_lockfile lock;
static char *lock_text;
static const struct frc_logger quiet = { .path = NULL, .stderr_fd = -1 };
static const char P1[] = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12";

static char *
calls(void)
{
  cleanup_free char *p = xasprintf("%s/calls", dir);
  char *text = NULL;
  size_t len;
  frc_error_t err = NULL;
  if (read_file_bounded(p, 1 << 20, &text, &len, &err) < 0)
    {
      frc_error_release(&err);
      return xstrdup("");
    }
  return text;
}

static void
forget_calls(void)
{
  cleanup_free char *p = xasprintf("%s/calls", dir);
  unlink(p);
}

static void
setup(void)
{
  frc_error_t err = NULL;
  strcpy(dir, "/tmp/frc-test-environment-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  /* one line per call: the verb (the argument after the options) */
  cleanup_free char *script = xasprintf("#!/bin/sh\n"
                                        "d='%s'\n"
                                        "echo \"$*\" | sed 's/.*max-jobs 0 //' >>\"$d/calls\"\n"
                                        "case \"$*\" in *--query*) echo '%s' ;; esac\n"
                                        "exit 0\n",
                                        dir, P1);
  old_path = frc_test_fake_program(dir, "nix-store", script);

  memset(&cfg, 0, sizeof(cfg));
  cleanup_free char *json = xasprintf("{\"store_root\": \"%s/store\", \"state_dir\": \"%s/state\"}",
                                      dir, dir);
  ck_assert_msg(frc_config_parse(&cfg, json, strlen(json), "test", &err) == 0, "%s",
                err ? err->msg : "");
  /* the package, as Nix would have realised it */
  cleanup_free char *pkg_bin = xasprintf("%s/store%s/bin", dir, P1);
  cleanup_free char *hello = xasprintf("%s/hello", pkg_bin);
  ck_assert_int_eq(frc_mkdir_p(pkg_bin, 0755, &err), 0);
  ck_assert_int_eq(write_file_atomic(hello, "#!/bin/sh\n", 10, 0755, &err), 0);

  lock_text = xasprintf("{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":["
                        "{\"install_id\":\"hello\",\"system\":\"%s\",\"priority\":5,"
                        "\"outputs_to_install\":[\"out\"],\"outputs\":{\"out\":\"%s\"}}]}",
                        frc_nix_system(), P1);
  ck_assert_msg(frc_lockfile_parse(lock_text, strlen(lock_text), frc_nix_system(), &lock, &err) == 0,
                "%s", err ? err->msg : "");
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  frc_test_path_restore(old_path);
  free(lock_text);
  frc_lockfile_release(&lock);
  frc_config_release(&cfg);
  ck_assert_int_eq(system(cmd), 0);
}

static int
materialise(enum frc_mode mode, struct frc_environment *env, frc_error_t *err)
{
  struct frc_env_request req = { .config = &cfg, .log = &quiet, .deadline_ns = 0, .name = "hello",
                                 .mode = mode, .lockfile = lock_text,
                                 .lockfile_len = strlen(lock_text), .lock = &lock };
  return frc_environment_materialise(&req, env, err);
}

static char *
record_of(const struct frc_environment *env)
{
  return xasprintf("%s/envs/%s.json", cfg.state_dir, env->key);
}

static void
cold(struct frc_environment *env)
{
  frc_error_t err = NULL;
  ck_assert_msg(materialise(FRC_MODE_RUN, env, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(env->built);
}

START_TEST(test_cold_then_warm)
{
  cleanup_environment struct frc_environment env = { 0 };
  cleanup_environment struct frc_environment warm = { 0 };
  frc_error_t err = NULL;
  struct stat st;

  cold(&env);
  cleanup_free char *c = calls();
  ck_assert_msg(strstr(c, "--realise " "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12")
                    && strstr(c, "--query --requisites"),
                "%s", c);
  cleanup_free char *want_path = xasprintf("%s/%s", FRC_ENVS_DIR, env.key);
  ck_assert_str_eq(env.path, want_path);
  ck_assert_str_eq(env.pins[0], P1);
  ck_assert_ptr_null(env.pins[1]);
  /* the tree is on the node under store_root, with the package linked
   * (a directory only one package has is one link, as in Nix's buildEnv) */
  cleanup_free char *hello = xasprintf("%s/bin/hello", env.path);
  cleanup_free char *node = frc_nix_resolve(cfg.store_root, hello);
  ck_assert_msg(node && stat(node, &st) == 0, "%s", hello);
  cleanup_free char *want_node = xasprintf("%s%s/bin/hello", cfg.store_root, P1);
  ck_assert_str_eq(node, want_node);

  /* the record */
  cleanup_free char *rec = record_of(&env);
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
  ck_assert_str_eq(frc_json_get_string(doc.root, "path"), env.path);
  ck_assert_str_eq(frc_json_get_string(doc.root, "mode"), "run");
  ck_assert_str_eq(frc_json_get_string(doc.root, "system"), frc_nix_system());
  ck_assert_str_eq(frc_json_get_string(doc.root, "name"), "hello");
  yajl_val pins = frc_json_get(doc.root, "pins");
  ck_assert(pins && pins->type == yajl_t_array && pins->u.array.len == 1);
  ck_assert_str_eq(pins->u.array.values[0]->u.string, P1);
  yajl_val closure = frc_json_get(doc.root, "closure");
  ck_assert(closure && closure->type == yajl_t_array);
  ck_assert_int_eq(stat(rec, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);

  /* warm: no nix-store at all, the same environment, the record touched */
  forget_calls();
  struct utimbuf t = { .actime = time(NULL) - 86400, .modtime = time(NULL) - 86400 };
  ck_assert_int_eq(utime(rec, &t), 0);
  ck_assert_msg(materialise(FRC_MODE_RUN, &warm, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(!warm.built);
  cleanup_free char *c2 = calls();
  ck_assert_msg(c2[0] == '\0', "a warm materialise ran nix-store: %s", c2);
  ck_assert_str_eq(warm.key, env.key);
  ck_assert_str_eq(warm.path, env.path);
  ck_assert_str_eq(warm.pins[0], P1);
  ck_assert_str_eq(warm.view, env.view);
  ck_assert_int_eq(stat(rec, &st), 0);
  ck_assert_msg(time(NULL) - st.st_mtime < 60, "the record's last use was not updated");
}
END_TEST

/* `flox-runc gc` decides by the record's age and evicts under the key's
 * lock, exclusive: a warm create reads and touches the record under it
 * too (shared), so it never uses an environment gc has chosen to remove;
 * it waits (here: deadline 0, at once the deadline error). */
START_TEST(test_warm_waits_for_gc)
{
  cleanup_environment struct frc_environment env = { 0 };
  cleanup_environment struct frc_environment warm = { 0 };
  cleanup_environment struct frc_environment again = { 0 };
  frc_error_t err = NULL;
  cleanup_close int gc_fd = -1;
  cleanup_free char *lockp = NULL;

  cold(&env);
  lockp = xasprintf("%s/envs/%s.lock", cfg.state_dir, env.key);
  gc_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ck_assert_int_ge(gc_fd, 0);
  ck_assert_int_eq(flock(gc_fd, LOCK_EX | LOCK_NB), 0); /* as gc_environments takes it */
  ck_assert_int_lt(materialise(FRC_MODE_RUN, &warm, &err), 0);
  ck_assert_int_eq(err->code, FRC_ECODE_DEADLINE);
  frc_error_release(&err);
  close(steal_fd(&gc_fd));
  ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(!again.built);
  /* and while a create uses it (shared), gc's exclusive try fails */
  {
    cleanup_close int user_fd = -1;
    ck_assert_int_eq(frc_lock_file_shared(lockp, 0, "test", &user_fd, &err), 0);
    gc_fd = open(lockp, O_RDWR | O_CLOEXEC);
    ck_assert_int_lt(flock(gc_fd, LOCK_EX | LOCK_NB), 0);
  }
}
END_TEST

/* Whatever makes the record unusable leads to a rebuild, never to a
 * container on a half-present environment. */
START_TEST(test_unusable_rebuilds)
{
  cleanup_environment struct frc_environment env = { 0 };
  cold(&env);
  cleanup_free char *rec = record_of(&env);
  cleanup_free char *tree = xasprintf("%s%s", cfg.store_root, env.path);
  static const char *const damaged[] = {
    "{", "[]", "{\"path\": \"/etc\", \"pins\": []}",
    "{\"path\": \"/nix/var/flox-runc/envs/x\", \"pins\": [\"/etc/passwd\"]}",
  };
  frc_error_t err = NULL;

  for (int i = 0; i < 6; i++)
    {
      cleanup_environment struct frc_environment again = { 0 };
      cleanup_free char *cmd = NULL;
      if (i < 4)
        ck_assert_int_eq(write_file_atomic(rec, damaged[i], strlen(damaged[i]), 0600, &err), 0);
      else if (i == 4)
        {
          cmd = xasprintf("/bin/rm -rf '%s'", tree);
          ck_assert_int_eq(system(cmd), 0);
        }
      else
        ck_assert_int_eq(frc_gcroot_release(&cfg, "envs", env.key, &err), 0);
      forget_calls();
      ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "case %d: %s", i,
                    err ? err->msg : "");
      ck_assert_msg(again.built, "case %d: not rebuilt", i);
      cleanup_free char *c = calls();
      ck_assert_msg(strstr(c, "--realise") != NULL, "case %d: %s", i, c);
      ck_assert_str_eq(again.path, env.path);
    }
}
END_TEST

/* A record from before closure-only /nix (no closure): one closure query,
 * the view built and recorded, the tree kept (containers may use it). */
START_TEST(test_record_without_closure)
{
  cleanup_environment struct frc_environment env = { 0 };
  cleanup_environment struct frc_environment again = { 0 };
  cleanup_environment struct frc_environment warm = { 0 };
  frc_error_t err = NULL;
  cold(&env);
  cleanup_free char *rec = record_of(&env);
  cleanup_free char *old = xasprintf("{\"path\": \"%s\", \"pins\": [\"%s\"]}", env.path, P1);
  ck_assert_int_eq(write_file_atomic(rec, old, strlen(old), 0600, &err), 0);
  forget_calls();
  ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(!again.built);
  cleanup_free char *c = calls();
  ck_assert_msg(strstr(c, "--query --requisites") && !strstr(c, "--realise"), "%s", c);
  ck_assert_ptr_nonnull(again.closure);
  /* and now it is an ordinary warm record */
  forget_calls();
  ck_assert_int_eq(materialise(FRC_MODE_RUN, &warm, &err), 0);
  cleanup_free char *c2 = calls();
  ck_assert_str_eq(c2, "");
}
END_TEST

START_TEST(test_mode_in_key)
{
  cleanup_environment struct frc_environment run = { 0 };
  cleanup_environment struct frc_environment dev = { 0 };
  frc_error_t err = NULL;
  cold(&run);
  ck_assert_msg(materialise(FRC_MODE_DEV, &dev, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(dev.built);
  ck_assert_str_ne(run.key, dev.key);
  ck_assert_str_ne(run.path, dev.path);
}
END_TEST

/* A manifest without a mode, on a node that has only its dev environment
 * (an annotated pod's): an unannotated create gets run, which is not
 * there, never the dev one. */
START_TEST(test_find_no_mode_not_dev)
{
  cleanup_environment struct frc_environment dev = { 0 };
  cleanup_environment struct frc_environment found = { 0 };
  cleanup_lockfile struct frc_lockfile sum = { 0 };
  frc_error_t err = NULL;
  size_t npkgs = 0;
  struct frc_env_request req = { .config = &cfg, .log = &quiet, .name = "hello",
                                 .mode = FRC_MODE_RUN, .lockfile = lock_text,
                                 .lockfile_len = strlen(lock_text) };
  ck_assert_msg(materialise(FRC_MODE_DEV, &dev, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_eq(frc_environment_find(&req, false, &found, &sum, &npkgs, &err), 0);
  ck_assert_ptr_null(found.path);
  req.mode = FRC_MODE_DEV;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, dev.key);
  ck_assert(!sum.has_mode);
}
END_TEST

/* The key remembered per lockfile copy (lockfile_id): the first find
 * hashes and writes the memo, the next reads it (the text is then not
 * hashed: a memo naming another key finds that one), a damaged memo is
 * hashed again and rewritten, another copy's identity has a memo of its
 * own; without the text only a remembered key is found. */
START_TEST(test_key_memo)
{
  cleanup_environment struct frc_environment built = { 0 };
  cleanup_environment struct frc_environment found = { 0 };
  cleanup_lockfile struct frc_lockfile sum = { 0 };
  frc_error_t err = NULL;
  size_t npkgs = 0;
  struct frc_env_request req = { .config = &cfg, .log = &quiet, .name = "hello", .mode = FRC_MODE_RUN,
                                 .lockfile = lock_text, .lockfile_len = strlen(lock_text),
                                 .lockfile_id = "1:2:3:4.000000005:6.000000007" };
  cleanup_free char *memos = xasprintf("%s/" FRC_KEY_MEMO_DIR, cfg.state_dir);
  cleanup_free char *memo = NULL, *text = NULL;
  char fake[33] = "0123456789abcdef0123456789abcdef";

  cold(&built);
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  {
    cleanup_dir DIR *d = opendir(memos);
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.')
        {
          ck_assert_ptr_null(memo);
          memo = xasprintf("%s/%s", memos, e->d_name);
        }
  }
  ck_assert_ptr_nonnull(memo);
  ck_assert_int_eq(read_file_bounded(memo, 64, &text, NULL, &err), 0);
  ck_assert_str_eq(text, built.key);
  /* read, not hashed: a memo naming another key finds no environment */
  ck_assert_int_eq(write_file_atomic(memo, fake, 32, 0600, &err), 0);
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  /* damaged: hashed again, rewritten */
  ck_assert_int_eq(write_file_atomic(memo, "not a key", 9, 0600, &err), 0);
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  free(text);
  text = NULL;
  ck_assert_int_eq(read_file_bounded(memo, 64, &text, NULL, &err), 0);
  ck_assert_str_eq(text, built.key);
  /* another copy of the lockfile (a new inode): its own memo */
  ck_assert_int_eq(write_file_atomic(memo, fake, 32, 0600, &err), 0);
  req.lockfile_id = "1:9:3:4.000000005:6.000000007";
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  /* without the text (a create's resolution does not read it): the memo
   * answers; a copy with none is not found (the create then reads, parses
   * and materialises, which writes the memo) */
  req.lockfile = NULL;
  req.lockfile_len = 0;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  req.lockfile_id = "1:10:3:4.000000005:6.000000007";
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
  ck_assert_ptr_null(found.path);
  req.lockfile_id = NULL;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
}
END_TEST

/* The pins' presence check: once the store directory has been unchanged
 * for 2 s, a warm look-up that found every pin writes a stamp of the
 * directory and the record's build into the key's lock file, and the next
 * ones compare the stamp instead of looking each pin up; a store path
 * deleted behind flox-runc's back changes the directory and is caught
 * with a stamp as without one. */
START_TEST(test_present_stamp)
{
  cleanup_environment struct frc_environment built = { 0 };
  cleanup_environment struct frc_environment found = { 0 };
  cleanup_lockfile struct frc_lockfile sum = { 0 };
  frc_error_t err = NULL;
  size_t npkgs = 0;
  struct frc_env_request req = { .config = &cfg, .log = &quiet, .name = "hello", .mode = FRC_MODE_RUN,
                                 .lockfile = lock_text, .lockfile_len = strlen(lock_text) };
  cleanup_free char *store = xasprintf("%s/nix/store", cfg.store_root);
  cleanup_free char *pin = xasprintf("%s%s", cfg.store_root, P1);
  cleanup_free char *lockp = NULL, *stamp = NULL, *rm = NULL, *rec = NULL;
  cleanup_json_doc struct frc_json_doc doc = { 0 };
  const char *build;
  struct stat st;
  size_t len = 0;

  cold(&built);
  lockp = xasprintf("%s/envs/%s.lock", cfg.state_dir, built.key);
  /* the store changed just now (setup's package): checked, no stamp */
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  ck_assert_int_eq(stat(lockp, &st), 0);
  ck_assert_int_eq(st.st_size, 0);
  /* settled: the stamp is written */
  for (;;)
    {
      struct timespec now;
      ck_assert_int_eq(stat(store, &st), 0);
      clock_gettime(CLOCK_REALTIME, &now);
      if (now.tv_sec - st.st_ctim.tv_sec > 3)
        break;
      usleep(200 * 1000);
    }
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  ck_assert_int_eq(read_file_bounded(lockp, 4096, &stamp, &len, &err), 0);
  rec = record_of(&built);
  ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
  build = frc_json_get_string(doc.root, "build");
  ck_assert(build && strlen(build) == 32);
  ck_assert_msg(len > 35 && strncmp(stamp, "p1 ", 3) == 0 && strncmp(stamp + 3, build, 32) == 0,
                "no stamp of build %s: '%s'", build, stamp);
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  frc_environment_release(&found);
  frc_lockfile_release(&sum);
  /* the pin deleted: not found, the stamp notwithstanding */
  rm = xasprintf("/bin/rm -rf '%s'", pin);
  ck_assert_int_eq(system(rm), 0);
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
  ck_assert_ptr_null(found.path);
}
END_TEST

/* A warm create finds the environment by its record alone, without the
 * parsed lockfile (frc_environment_find): the record summarises the
 * lockfile's mode option, packages and vars; without the annotation the
 * manifest's mode decides which environment; a record without the summary
 * (an older release) is not found that way, and the next materialise adds
 * the summary to it without a build. */
START_TEST(test_find_by_summary)
{
  cleanup_environment struct frc_environment built = { 0 };
  cleanup_environment struct frc_environment found = { 0 };
  cleanup_environment struct frc_environment again = { 0 };
  cleanup_lockfile struct frc_lockfile dev_lock = { 0 };
  cleanup_lockfile struct frc_lockfile sum = { 0 };
  frc_error_t err = NULL;
  size_t npkgs = 0;
  cleanup_free char *text = xasprintf(
      "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"vars\":{\"GREETING\":\"hi there\","
      "\"EMPTY\":\"\"},\"options\":{\"activate\":{\"mode\":\"dev\"}}},\"packages\":["
      "{\"install_id\":\"hello\",\"system\":\"%s\",\"priority\":5,"
      "\"outputs_to_install\":[\"out\"],\"outputs\":{\"out\":\"%s\"}}]}",
      frc_nix_system(), P1);
  struct frc_env_request req = { .config = &cfg, .log = &quiet, .name = "hello",
                                 .lockfile = text, .lockfile_len = strlen(text) };

  ck_assert_msg(frc_lockfile_parse(text, strlen(text), frc_nix_system(), &dev_lock, &err) == 0, "%s",
                err ? err->msg : "");
  req.mode = frc_lock_pick_mode(&dev_lock, false, FRC_MODE_RUN);
  ck_assert_int_eq(req.mode, FRC_MODE_DEV);
  req.lock = &dev_lock;
  ck_assert_msg(frc_environment_materialise(&req, &built, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(built.built);

  /* unannotated: the record's summary says dev */
  req.lock = NULL;
  req.mode = FRC_MODE_RUN;
  forget_calls();
  ck_assert_int_eq(frc_environment_find(&req, false, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  ck_assert_str_eq(found.path, built.path);
  ck_assert_ptr_nonnull(found.closure);
  ck_assert(sum.has_mode);
  ck_assert_int_eq(sum.mode, FRC_MODE_DEV);
  ck_assert_int_eq(frc_lock_pick_mode(&sum, false, FRC_MODE_RUN), FRC_MODE_DEV);
  ck_assert_uint_eq(npkgs, 1);
  ck_assert_uint_eq(sum.nvars, 2);
  ck_assert_str_eq(sum.var_names[0], "GREETING");
  ck_assert_str_eq(sum.var_values[0], "hi there");
  ck_assert_str_eq(sum.var_names[1], "EMPTY");
  ck_assert_str_eq(sum.var_values[1], "");
  ck_assert(!found.has_hook);
  cleanup_free char *c = calls();
  ck_assert_str_eq(c, "");
  frc_environment_release(&found);
  frc_lockfile_release(&sum);

  /* annotated run: that environment is not on the node */
  req.mode = FRC_MODE_RUN;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
  ck_assert_ptr_null(found.path);
  ck_assert_ptr_null(sum.var_names);

  /* a record without the summary */
  cleanup_free char *rec = record_of(&built);
  cleanup_json_doc struct frc_json_doc doc = { 0 };
  ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
  ck_assert_ptr_nonnull(frc_json_get(doc.root, "lock"));
  frc_json_set(doc.root, "lock", frc_json_new_bool(false));
  ck_assert_int_eq(frc_json_doc_save(&doc, &err), 0);
  req.mode = FRC_MODE_DEV;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 0);
  req.lock = &dev_lock;
  forget_calls();
  ck_assert_msg(frc_environment_materialise(&req, &again, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(!again.built);
  cleanup_free char *c2 = calls();
  ck_assert_str_eq(c2, "");
  req.lock = NULL;
  ck_assert_int_eq(frc_environment_find(&req, true, &found, &sum, &npkgs, &err), 1);
  ck_assert_str_eq(found.key, built.key);
  ck_assert_uint_eq(sum.nvars, 2);
}
END_TEST

/* The record with boot and synced replaced (a new file, as a build
 * writes it). */
static void
set_record_boot(const struct frc_environment *env, const char *boot, int synced)
{
  cleanup_free char *rec = record_of(env);
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  cleanup_free char *text = NULL;
  frc_error_t err = NULL;
  size_t len;
  ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
  frc_json_set(doc.root, "boot", frc_json_new_string(boot));
  frc_json_set(doc.root, "synced", frc_json_new_int(synced));
  /* another write of the record than the build's (which its confirmation
   * marks): as a rebuild or an earlier boot's build would have */
  frc_json_set(doc.root, "build", frc_json_new_string("0123456789abcdef0123456789abcdef"));
  text = frc_json_serialize(doc.root, &len);
  ck_assert_int_eq(write_file_atomic(rec, text, len, 0600, &err), 0);
}

static char *
this_boot(void)
{
  char *id = NULL;
  size_t len;
  frc_error_t err = NULL;
  ck_assert_int_eq(read_file_bounded("/proc/sys/kernel/random/boot_id", 64, &id, &len, &err), 0);
  id[strcspn(id, "\n")] = '\0';
  return id;
}

/* Whether env's record (of this boot) is marked synced within tries * 10 ms
 * (2000 where it must be: a syncfs on a loaded CI disk takes seconds). */
static bool
record_marked(const struct frc_environment *env, const char *boot, int tries)
{
  cleanup_free char *rec = record_of(env);
  frc_error_t err = NULL;
  for (int i = 0; i < tries; i++)
    {
      struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
      ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
      ck_assert_str_eq(frc_json_get_string(doc.root, "boot"), boot);
      yajl_val s = frc_json_get(doc.root, "synced");
      ck_assert(s && s->type == yajl_t_number);
      if (s->u.number.i == 1)
        return true;
      usleep(10000);
    }
  return false;
}

/* Nothing of a build is synced before its record (docs/design.md,
 * "Durability"): the record names the boot that wrote it, and a process
 * of its own, started when the caller hands over, marks it synced once a
 * syncfs after it returned.  A record of
 * an earlier boot without the mark is not trusted: rebuilt (its view, if it
 * lost an entry in the crash, built anew); with the mark, or of this boot,
 * it is used. */
START_TEST(test_record_of_another_boot)
{
  cleanup_environment struct frc_environment env = { 0 };
  frc_error_t err = NULL;
  cleanup_free char *boot = this_boot();
  static const char other[] = "00000000-1111-2222-3333-444444444444";

  cold(&env);
  /* the build's record: this boot, not marked while the caller still
   * writes (no syncfs to hold its writes up), then, once the caller hands
   * over (frc_environment_confirm), marked synced in place */
  ck_assert_msg(!record_marked(&env, boot, 50), "the record was marked before the caller handed over");
  ck_assert_ptr_nonnull(env.confirm);
  frc_environment_confirm(&env);
  ck_assert_ptr_null(env.confirm);
  ck_assert_msg(record_marked(&env, boot, 2000), "the record was never marked synced");
  for (int i = 0; i < 3; i++)
    {
      cleanup_environment struct frc_environment again = { 0 };
      set_record_boot(&env, i == 0 ? boot : other, i == 1 ? 1 : 0);
      forget_calls();
      ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
      cleanup_free char *c = calls();
      if (i < 2) /* this boot unsynced, another boot synced: used */
        ck_assert_msg(!again.built && c[0] == '\0', "case %d rebuilt: %s", i, c);
      else
        ck_assert_msg(again.built && strstr(c, "--realise"), "case %d: not rebuilt: %s", i, c);
    }
  /* a view that lost an entry in the crash: built anew with the record */
  {
    cleanup_environment struct frc_environment again = { 0 };
    cleanup_free char *entry = xasprintf("%s/store/%s", env.view, P1 + strlen("/nix/store/"));
    struct stat st;
    ck_assert_int_eq(stat(entry, &st), 0);
    ck_assert_int_eq(rmdir(entry), 0);
    set_record_boot(&env, other, 0);
    ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
    ck_assert(again.built);
    ck_assert_msg(stat(entry, &st) == 0 && S_ISDIR(st.st_mode), "the view's entry is still missing");
  }
  /* a record of this boot, not yet marked, without the lockfile's summary:
   * rewritten with the summary, and still unmarked (it was marked synced,
   * so trusted after a crash that its syncfs never covered) */
  {
    cleanup_environment struct frc_environment again = { 0 };
    cleanup_free char *rec = record_of(&env);
    set_record_boot(&env, boot, 0);
    {
      struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
      ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
      frc_json_set(doc.root, "lock", frc_json_new_bool(false));
      ck_assert_int_eq(frc_json_doc_save(&doc, &err), 0);
    }
    ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
    ck_assert(!again.built);
    struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
    ck_assert_int_eq(frc_json_doc_load(&doc, rec, 1 << 20, &err), 0);
    yajl_val summary = frc_json_get(doc.root, "lock");
    ck_assert_msg(summary && summary->type == yajl_t_object, "the record was not rewritten with its summary");
    yajl_val s = frc_json_get(doc.root, "synced");
    ck_assert(s && s->type == yajl_t_number);
    ck_assert_msg(s->u.number.i == 0, "an unmarked record was rewritten as synced");
  }
  /* a whole view is kept (it may be bound in running containers) */
  {
    cleanup_environment struct frc_environment again = { 0 };
    struct stat before, after;
    ck_assert_int_eq(stat(env.view, &before), 0);
    set_record_boot(&env, other, 0);
    ck_assert_msg(materialise(FRC_MODE_RUN, &again, &err) == 0, "%s", err ? err->msg : "");
    ck_assert(again.built);
    ck_assert_int_eq(stat(env.view, &after), 0);
    ck_assert_int_eq(before.st_ino, after.st_ino);
  }
}
END_TEST

/* The tree's symlinks go to the node's pool (lib/linkpool.h) in the
 * confirmation's process, not during the build (off the create's critical
 * path): none is in the pool when materialise returns, each is there,
 * sharing the tree's inode, once the caller has handed over and the record
 * is marked; another environment's build then takes them from the pool. */
static size_t
pool_entries(nlink_t *nlink)
{
  cleanup_free char *pool = xasprintf("%s/store/nix/var/flox-runc/links", dir);
  cleanup_dir DIR *d = opendir(pool);
  struct dirent *e;
  size_t n = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)) != NULL)
    {
      struct stat st;
      if (e->d_name[0] == '.')
        continue;
      ck_assert_int_eq(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
      ck_assert(S_ISLNK(st.st_mode));
      *nlink = st.st_nlink;
      n++;
    }
  return n;
}

/* Processes other than this one holding path (a directory) open. */
static int
holders_of(const char *path)
{
  char real[PATH_MAX];
  cleanup_dir DIR *proc = opendir("/proc");
  struct dirent *p;
  int n = 0;

  ck_assert_ptr_nonnull(realpath(path, real));
  ck_assert_ptr_nonnull(proc);
  while ((p = readdir(proc)) != NULL)
    {
      char fds[300];
      cleanup_dir DIR *d = NULL;
      struct dirent *f;
      if (p->d_name[0] < '1' || p->d_name[0] > '9' || atoi(p->d_name) == (int) getpid())
        continue;
      snprintf(fds, sizeof(fds), "/proc/%s/fd", p->d_name);
      if ((d = opendir(fds)) == NULL)
        continue;
      while ((f = readdir(d)) != NULL)
        {
          char link[PATH_MAX];
          ssize_t len = readlinkat(dirfd(d), f->d_name, link, sizeof(link) - 1);
          if (len > 0 && (link[len] = '\0', strcmp(link, real) == 0))
            {
              n++;
              break;
            }
        }
    }
  return n;
}

static bool
no_holders_of(const char *path, int tries)
{
  for (int i = 0; i < tries; i++, usleep(10000))
    if (holders_of(path) == 0)
      return true;
  return false;
}

/* The confirmation's process is forked while Nix realises (its forks then
 * cost the build nothing; docs/performance.md, "Lever: cold
 * materialisation (mat5)"): it waits, holding the state directory open,
 * until the hand-over says what to confirm, then ends; a build that fails
 * leaves none behind. */
START_TEST(test_confirmation_forked_ahead)
{
  cleanup_free char *boot = this_boot();
  cleanup_free char *fail = xasprintf("#!/bin/sh\ncase \"$*\" in *--realise*) exit 1 ;; esac\nexit 0\n");
  cleanup_free char *fake = xasprintf("%s/bin/nix-store", dir);
  frc_error_t werr = NULL;
  {
    cleanup_environment struct frc_environment env = { 0 };
    cold(&env);
    ck_assert_int_eq(holders_of(cfg.state_dir), 1);
    ck_assert_msg(!record_marked(&env, boot, 5), "the record was marked before the caller handed over");
    frc_environment_confirm(&env);
    ck_assert_msg(record_marked(&env, boot, 2000), "the record was never marked synced");
    ck_assert_msg(no_holders_of(cfg.state_dir, 2000), "the confirmation did not end");
  }
  /* a realisation that fails after the fork */
  ck_assert_msg(write_file_replace(fake, fail, strlen(fail), 0755, &werr) == 0, "%s", werr ? werr->msg : "");
  {
    cleanup_environment struct frc_environment env = { 0 };
    cleanup_free char *rec = NULL;
    frc_error_t err = NULL;
    struct frc_env_request req = { .config = &cfg, .log = &quiet, .name = "hello", .mode = FRC_MODE_DEV,
                                   .lockfile = lock_text, .lockfile_len = strlen(lock_text), .lock = &lock };
    ck_assert_int_lt(frc_environment_materialise(&req, &env, &err), 0);
    frc_error_release(&err);
    ck_assert_msg(no_holders_of(cfg.state_dir, 2000), "a failed build left its confirmation process");
    rec = xasprintf("%s/envs/%s.json", cfg.state_dir, env.key);
    ck_assert_int_ne(access(rec, F_OK), 0);
  }
}
END_TEST

START_TEST(test_pool_after_handover)
{
  cleanup_environment struct frc_environment env = { 0 };
  cleanup_free char *boot = this_boot();
  cleanup_free char *bin = NULL;
  struct stat tree_st, pool_st;
  nlink_t nlink = 0;

  cold(&env);
  ck_assert_uint_eq(pool_entries(&nlink), 0);
  bin = xasprintf("%s/store%s/bin", dir, env.path);
  ck_assert_int_eq(lstat(bin, &tree_st), 0);
  ck_assert_msg(S_ISLNK(tree_st.st_mode), "bin is one package's: a symlink to it");
  ck_assert_uint_eq(tree_st.st_nlink, 1);
  frc_environment_confirm(&env);
  ck_assert_msg(record_marked(&env, boot, 2000), "the record was never marked synced");
  ck_assert_uint_eq(pool_entries(&nlink), 1);
  ck_assert_uint_eq(nlink, 2);
  ck_assert_int_eq(lstat(bin, &pool_st), 0);
  ck_assert_uint_eq(pool_st.st_nlink, 2);
  /* the dev environment's tree (another key) takes it from the pool */
  {
    cleanup_environment struct frc_environment dev = { 0 };
    frc_error_t err = NULL;
    cleanup_free char *dev_bin = NULL;
    struct stat st;
    ck_assert_msg(materialise(FRC_MODE_DEV, &dev, &err) == 0, "%s", err ? err->msg : "");
    ck_assert(dev.built);
    dev_bin = xasprintf("%s/store%s/bin", dir, dev.path);
    ck_assert_int_eq(lstat(dev_bin, &st), 0);
    ck_assert_msg(st.st_ino == tree_st.st_ino, "the second tree did not take the pool's symlink");
  }
}
END_TEST

static void
write_proc(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
    {
      fprintf(stderr, "test_environment: cannot write %s: %s\n", path, strerror(errno));
      exit(1);
    }
  close(fd);
}

/* Not root: uid 0 of a new user namespace mapped to our own ids. */
static void
root_of_own_userns(void)
{
  uid_t uid = geteuid();
  gid_t gid = getegid();
  char map[64];
  if (uid == 0)
    return;
  if (unshare(CLONE_NEWUSER) < 0)
    {
      fprintf(stderr, "test_environment: run as root, or enable unprivileged user namespaces "
                      "(sysctl kernel.unprivileged_userns_clone=1): %s\n", strerror(errno));
      exit(1);
    }
  write_proc("/proc/self/setgroups", "deny");
  snprintf(map, sizeof(map), "0 %u 1\n", (unsigned) uid);
  write_proc("/proc/self/uid_map", map);
  snprintf(map, sizeof(map), "0 %u 1\n", (unsigned) gid);
  write_proc("/proc/self/gid_map", map);
}

int
main(void)
{
  Suite *s = suite_create("environment");
  TCase *tc = tcase_create("environment");
  SRunner *sr;
  int failed;
  root_of_own_userns();
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_cold_then_warm);
  tcase_add_test(tc, test_unusable_rebuilds);
  tcase_add_test(tc, test_warm_waits_for_gc);
  tcase_add_test(tc, test_record_without_closure);
  tcase_add_test(tc, test_mode_in_key);
  tcase_add_test(tc, test_find_by_summary);
  tcase_add_test(tc, test_key_memo);
  tcase_add_test(tc, test_present_stamp);
  tcase_add_test(tc, test_find_no_mode_not_dev);
  tcase_add_test(tc, test_record_of_another_boot);
  tcase_add_test(tc, test_pool_after_handover);
  tcase_add_test(tc, test_confirmation_forked_ahead);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
