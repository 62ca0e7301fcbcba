/* How lib/store.c calls nix-store, without Nix: a stand-in `nix-store`
 * first in PATH records its argv and environment and answers what the test
 * tells it (stdout, stderr, exit status).  Checked: which nix-store is
 * found, the exact argv of realise/closure/add for the node's store and for
 * a chroot store (substituters, keys, require-sigs; max-jobs 0 but in a
 * realisation, where several substitutions run at once), no derivation
 * realised, Nix's
 * cache under state_dir, invalid store paths refused before anything runs,
 * the closure and the added path read back (and garbage refused), and
 * failures reported with Nix's own error line.  No root needed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-store-XXXXXX";
static char *old_path;
static struct frc_config cfg;
static const struct frc_logger quiet = { .path = NULL, .stderr_fd = -1 };
static struct frc_store store = { .config = &cfg, .log = &quiet };

static const char P1[] = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12";
static const char P2[] = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.38";

static void
put(const char *name, const char *text)
{
  frc_error_t err = NULL;
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  ck_assert_int_eq(write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

static void
unlink_file(const char *name)
{
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  unlink(p);
}

static char *
get(const char *name)
{
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  char *text = NULL;
  size_t len;
  frc_error_t err = NULL;
  if (read_file_bounded(p, 1 << 20, &text, &len, &err) < 0)
    {
      frc_error_release(&err);
      return NULL;
    }
  return text;
}

static void
setup(void)
{
  frc_error_t err = NULL;
  strcpy(dir, "/tmp/frc-test-store-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  cleanup_free char *script = xasprintf(
      "#!/bin/sh\n"
      "d='%s'\n"
      "for a in \"$@\"; do printf '%%s\\n' \"$a\"; done >\"$d/argv\"\n"
      "printf '%%s\\n' \"$XDG_CACHE_HOME\" >\"$d/cache\"\n"
      "echo $$ >\"$d/pid\"\n"
      "case \" $* \" in *' --serve '*) cat >\"$d/stdin\" ;; esac\n"
      "[ ! -f \"$d/sleep\" ] || sleep 30\n"
      "[ ! -f \"$d/stdout\" ] || cat \"$d/stdout\"\n"
      "[ ! -f \"$d/stderr\" ] || cat \"$d/stderr\" >&2\n"
      "[ ! -f \"$d/linger\" ] || sleep 2\n"
      "exit $(cat \"$d/rc\" 2>/dev/null || echo 0)\n",
      dir);
  old_path = frc_test_fake_program(dir, "nix-store", script);

  memset(&cfg, 0, sizeof(cfg));
  const char *json = "{\"substituters\": [\"http://127.0.0.1:5000\", \"https://cache.example\"],"
                     " \"trusted_public_keys\": [\"a:AAAA\", \"b:BBBB\"]}";
  ck_assert_int_eq(frc_config_parse(&cfg, json, strlen(json), "test", &err), 0);
  free(cfg.state_dir);
  cfg.state_dir = xasprintf("%s/state", dir);
  store.deadline_ns = 0;
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  frc_test_path_restore(old_path);
  frc_config_release(&cfg);
  ck_assert_int_eq(system(cmd), 0);
}

/* The argv nix-store got, one argument a line, after the program: jobs
 * is max-jobs. */
static char *
expected_argv_jobs(const char *store_opt, unsigned jobs, const char *tail)
{
  return xasprintf("%s--option\nsubstituters\nhttp://127.0.0.1:5000 https://cache.example\n"
                   "--option\ntrusted-public-keys\na:AAAA b:BBBB\n--option\nrequire-sigs\ntrue\n"
                   "--option\nmax-jobs\n%u\n%s",
                   store_opt, jobs, tail);
}

/* Queries and --add: max-jobs 0. */
static char *
expected_argv(const char *store_opt, const char *tail)
{
  return expected_argv_jobs(store_opt, 0, tail);
}

/* A realisation: several substitutions at once (Nix 2.8 runs max(1,
 * max-jobs) of them: with 0 the NARs came one after another). */
static char *
expected_realise_argv(const char *store_opt, const char *tail)
{
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned jobs = frc_store_substitution_jobs();
  ck_assert_uint_ge(jobs, 4);
  ck_assert_uint_le(jobs, 16);
  if (ncpu >= 2 && ncpu <= 8)
    ck_assert_uint_eq(jobs, ncpu * 2 < 4 ? 4 : (unsigned) ncpu * 2);
  return expected_argv_jobs(store_opt, jobs, tail);
}

START_TEST(test_find)
{
  cleanup_free char *found = frc_nix_store_find();
  cleanup_free char *want = xasprintf("%s/bin/nix-store", dir);
  ck_assert_str_eq(found, want);
}
END_TEST

START_TEST(test_realise_node_store)
{
  char *const paths[] = { (char *) P1, (char *) P2, NULL };
  frc_error_t err = NULL;
  ck_assert_msg(frc_store_realise(&store, paths, &err) == 0, "%s", err ? err->msg : "");
  cleanup_free char *argv = get("argv");
  cleanup_free char *tail = xasprintf("--realise\n%s\n%s\n", P1, P2);
  cleanup_free char *want = expected_realise_argv("", tail);
  ck_assert_str_eq(argv, want);
  /* Nix's narinfo cache under state_dir, not $HOME */
  cleanup_free char *cache = get("cache");
  cleanup_free char *want_cache = xasprintf("%s/state/cache\n", dir);
  ck_assert_str_eq(cache, want_cache);
}
END_TEST

START_TEST(test_realise_chroot_store)
{
  char *const paths[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  free(cfg.store_root);
  cfg.store_root = xstrdup("/var/lib/test-store");
  ck_assert_int_eq(frc_store_realise(&store, paths, &err), 0);
  cleanup_free char *argv = get("argv");
  cleanup_free char *tail = xasprintf("--realise\n%s\n", P1);
  cleanup_free char *want = expected_realise_argv("--store\n/var/lib/test-store\n", tail);
  ck_assert_str_eq(argv, want);
}
END_TEST

/* A path that is not /nix/store/<32 chars>-<name> never reaches nix-store
 * (it would be an option or a file of the node). */
START_TEST(test_invalid_path_refused)
{
  static const char *const bad[] = { "--delete", "/etc/passwd", "/nix/store/short-x",
                                     "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x/../../etc" };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      char *const paths[] = { (char *) P1, (char *) bad[i], NULL };
      char **closure = NULL;
      frc_error_t err = NULL;
      ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
      ck_assert_msg(strstr(err->msg, "invalid store path") != NULL, "%s", err->msg);
      frc_error_release(&err);
      ck_assert_int_lt(frc_store_closure(&store, paths, &closure, &err), 0);
      frc_error_release(&err);
      cleanup_free char *argv = get("argv");
      ck_assert_msg(argv == NULL, "nix-store ran for %s", bad[i]);
    }
}
END_TEST

/* With max-jobs above 0 a .drv would be built: never realised. */
START_TEST(test_derivation_refused)
{
  char *const paths[] = { (char *) P1,
                          (char *) "/nix/store/cccccccccccccccccccccccccccccccc-evil.drv", NULL };
  frc_error_t err = NULL;
  ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
  ck_assert_msg(strstr(err->msg, "refusing to realise the derivation") != NULL, "%s", err->msg);
  ck_assert_msg(strstr(err->msg, "-evil.drv") != NULL, "%s", err->msg);
  frc_error_release(&err);
  cleanup_free char *argv = get("argv");
  ck_assert_msg(argv == NULL, "nix-store ran for a derivation");
}
END_TEST

START_TEST(test_closure)
{
  char *const paths[] = { (char *) P1, NULL };
  char **closure = NULL;
  frc_error_t err = NULL;
  cleanup_free char *out = xasprintf("%s\n%s\n", P2, P1);
  put("stdout", out);
  ck_assert_msg(frc_store_closure(&store, paths, &closure, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(closure[0], P2);
  ck_assert_str_eq(closure[1], P1);
  ck_assert_ptr_null(closure[2]);
  frc_strv_freep(&closure);
  cleanup_free char *argv = get("argv");
  cleanup_free char *tail = xasprintf("--query\n--requisites\n%s\n", P1);
  cleanup_free char *want = expected_argv("", tail);
  ck_assert_str_eq(argv, want);

  /* anything but store paths in its output is refused */
  put("stdout", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-ok\n/etc/shadow\n");
  ck_assert_int_lt(frc_store_closure(&store, paths, &closure, &err), 0);
  ck_assert_msg(strstr(err->msg, "unexpected closure entry") != NULL, "%s", err->msg);
  frc_error_release(&err);
}
END_TEST

/* The closure from Nix's database: the tables Nix keeps (ValidPaths, Refs)
 * in <store_root>/nix/var/nix/db/db.sqlite, written here with libsqlite3:
 * P1 -> P2 -> P3 (and P3 -> P3, a self-reference), P4 apart.  Its answer is
 * what nix-store -qR would print (as a set); a path the database lacks, or
 * no database, is an error (the caller then asks nix-store). */
START_TEST(test_closure_db)
{
  static const char P3[] = "/nix/store/cccccccccccccccccccccccccccccccc-libc";
  static const char P4[] = "/nix/store/dddddddddddddddddddddddddddddddd-other";
  cleanup_free char *root = xasprintf("%s/root", dir);
  cleanup_free char *dbdir = xasprintf("%s/nix/var/nix/db", root);
  cleanup_free char *db = xasprintf("%s/db.sqlite", dbdir);
  cleanup_free char *sql = xasprintf(
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null,"
      " hash text not null, registrationTime integer not null, deriver text, narSize integer,"
      " ultimate integer, sigs text, ca text);"
      "CREATE TABLE Refs (referrer integer not null, reference integer not null, primary key (referrer, reference));"
      "INSERT INTO ValidPaths (id, path, hash, registrationTime) VALUES (1, '%s', 'h', 0), (2, '%s', 'h', 0),"
      " (3, '%s', 'h', 0), (4, '%s', 'h', 0);"
      "INSERT INTO Refs VALUES (1, 2), (2, 3), (3, 3);",
      P1, P2, P3, P4);
  struct frc_config c = { 0 };
  frc_error_t err = NULL;
  char **closure = NULL;
  sqlite3 *h = NULL;

  c.store_root = root;
  ck_assert_int_lt(frc_store_closure_db(&c, (char *const[]) { (char *) P1, NULL }, &closure, &err), 0);
  frc_error_release(&err); /* no database yet */
  ck_assert_int_eq(frc_mkdir_p(dbdir, 0755, &err), 0);
  ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);

  ck_assert_msg(frc_store_closure_db(&c, (char *const[]) { (char *) P1, NULL }, &closure, &err) == 0, "%s",
                err ? err->msg : "");
  {
    size_t n = 0;
    bool seen[3] = { false, false, false };
    for (char **p = closure; *p; p++, n++)
      {
        seen[0] |= strcmp(*p, P1) == 0;
        seen[1] |= strcmp(*p, P2) == 0;
        seen[2] |= strcmp(*p, P3) == 0;
      }
    ck_assert_uint_eq(n, 3);
    ck_assert(seen[0] && seen[1] && seen[2]);
  }
  frc_strv_freep(&closure);
  /* a path the database does not have: an error, not a short closure */
  ck_assert_int_lt(frc_store_closure_db(&c, (char *const[]) { (char *) P4, "/nix/store/gggggggggggggggggggggggggggggggg-gone", NULL },
                                        &closure, &err),
                   0);
  ck_assert_msg(strstr(err->msg, "lacks 1 of the paths") != NULL, "%s", err->msg);
  frc_error_release(&err);
  /* which paths are valid (a draft of the tree asks while Nix runs) */
  {
    bool valid[3] = { false, true, true };
    ck_assert_msg(frc_store_valid_db(&c, (char *const[]) { (char *) P2, "/nix/store/gggggggggggggggggggggggggggggggg-gone", (char *) P4, NULL },
                                     valid, &err) == 0,
                  "%s", err ? err->msg : "");
    ck_assert(valid[0] && !valid[1] && valid[2]);
    ck_assert_int_lt(frc_store_valid_db(&c, (char *const[]) { "/nix/store/x' OR 1=1 --", NULL }, valid, &err), 0);
    frc_error_release(&err);
  }
  /* never a quote into the query */
  ck_assert_int_lt(frc_store_closure_db(&c, (char *const[]) { "/nix/store/x'", NULL }, &closure, &err), 0);
  frc_error_release(&err);

  /* prepared while nix-store realises (environment.c): what it reads is
   * what Nix registered by the time it reads, paths added after the
   * prepare included */
  {
    static const char P5[] = "/nix/store/ffffffffffffffffffffffffffffffff-late";
    struct frc_store_closure_dbq *q = NULL;
    cleanup_free char *add = xasprintf(
        "INSERT INTO ValidPaths (id, path, hash, registrationTime) VALUES (5, '%s', 'h', 0);"
        "INSERT INTO Refs VALUES (5, 4);",
        P5);
    ck_assert_msg(frc_store_closure_db_prepare(&c, (char *const[]) { (char *) P5, NULL }, &q, &err) == 0,
                  "%s", err ? err->msg : "");
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(h, add, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
    ck_assert_msg(frc_store_closure_db_read(q, &closure, &err) == 0, "%s", err ? err->msg : "");
    ck_assert_ptr_nonnull(closure[0]);
    ck_assert_ptr_nonnull(closure[1]);
    ck_assert_ptr_null(closure[2]);
    ck_assert(strcmp(closure[0], P5) == 0 || strcmp(closure[1], P5) == 0);
    ck_assert(strcmp(closure[0], P4) == 0 || strcmp(closure[1], P4) == 0);
    frc_strv_freep(&closure);
    /* prepared, never read: freed */
    ck_assert_int_eq(frc_store_closure_db_prepare(&c, (char *const[]) { (char *) P5, NULL }, &q, &err), 0);
    frc_store_closure_db_free(q);
  }
  c.store_root = NULL;
}
END_TEST

/* A realisation in two steps (work done while nix-store runs): finish
 * gives nix-store's answer, abort kills and reaps it. */
/* The serve protocol's little-endian numbers and padded strings. */
static void
add_u64(struct frc_buf *b, unsigned long long v)
{
  char c[8];
  for (int i = 0; i < 8; i++)
    c[i] = (char) ((v >> (8 * i)) & 0xff);
  frc_buf_add(b, c, 8);
}

static void
add_str(struct frc_buf *b, const char *s)
{
  static const char zero[8] = { 0 };
  size_t l = strlen(s);
  add_u64(b, l);
  frc_buf_add(b, s, l);
  frc_buf_add(b, zero, (8 - l % 8) % 8);
}

static void
put_bytes(const char *name, const struct frc_buf *b)
{
  frc_error_t err = NULL;
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  ck_assert_int_eq(write_file_atomic(p, b->data, b->len, 0644, &err), 0);
}

/* nix-store --serve's answers: the greeting, the warm-up's (nothing valid),
 * then the paths valid of those asked. */
static void
serve_answer(char *const *valid)
{
  cleanup_buf struct frc_buf b = { NULL, 0, 0 };
  size_t n = 0;
  while (valid[n])
    n++;
  add_u64(&b, 0x5452eecbULL);
  add_u64(&b, (2 << 8) | 7);
  add_u64(&b, 0);
  add_u64(&b, n);
  for (size_t i = 0; i < n; i++)
    add_str(&b, valid[i]);
  put_bytes("stdout", &b);
}

/* A nix-store started before the paths are known (lib/store.h
 * frc_store_early_start): the greeting and a warm-up query at its start,
 * the paths when the realisation takes it; every path valid in its answer:
 * done; one missing: nix-store --realise on them all (Nix's own error); not
 * taken: killed. */
START_TEST(test_early_serve)
{
  char *paths[] = { (char *) P1, (char *) P2, NULL };
  struct frc_store_early *e = NULL;
  struct frc_store_realising *r = NULL;
  frc_error_t err = NULL;
  cleanup_buf struct frc_buf want = { NULL, 0, 0 };
  long long t0;

  serve_answer((char *[]) { (char *) P2, (char *) P1, NULL });
  ck_assert_msg(frc_store_early_start(&store, &e, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_ptr_nonnull(e);
  ck_assert_msg(frc_store_realise_start_early(&store, &e, paths, &r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_ptr_null(e); /* taken */
  ck_assert_msg(frc_store_realise_finish(r, &err) == 0, "%s", err ? err->msg : "");
  {
    cleanup_free char *argv = get("argv");
    ck_assert_ptr_nonnull(strstr(argv, "--option\nmax-jobs\n"));
    ck_assert_ptr_nonnull(strstr(argv, "--serve\n--write\n"));
    ck_assert_ptr_null(strstr(argv, "--realise"));
  }
  /* what it read: greeting, warm-up (no temporary root, substitute), the paths */
  add_u64(&want, 0x390c9debULL);
  add_u64(&want, (2 << 8) | 7);
  add_u64(&want, 1);
  add_u64(&want, 0);
  add_u64(&want, 1);
  add_u64(&want, 1);
  add_str(&want, "/nix/store/00000000000000000000000000000000-flox-runc-warm-up");
  add_u64(&want, 1);
  add_u64(&want, 0);
  add_u64(&want, 1);
  add_u64(&want, 2);
  add_str(&want, P1);
  add_str(&want, P2);
  {
    cleanup_free char *p = xasprintf("%s/stdin", dir);
    char *got = NULL;
    size_t len = 0;
    ck_assert_int_eq(read_file_bounded(p, 1 << 20, &got, &len, &err), 0);
    ck_assert_uint_eq(len, want.len);
    ck_assert_int_eq(memcmp(got, want.data, len), 0);
    free(got);
  }

  /* P2 left invalid (Nix only warned): nix-store --realise of both says why */
  serve_answer((char *[]) { (char *) P1, NULL });
  ck_assert_int_eq(frc_store_early_start(&store, &e, &err), 0);
  ck_assert_int_eq(frc_store_realise_start_early(&store, &e, paths, &r, &err), 0);
  put("rc", "1\n");
  put("stderr", "error: path '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.38' does not exist and cannot be created\n");
  ck_assert_int_lt(frc_store_realise_finish(r, &err), 0);
  ck_assert_msg(strstr(err->msg, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.38 is not available from any substituter") != NULL, "%s", err->msg);
  frc_error_release(&err);
  {
    cleanup_free char *argv = get("argv");
    ck_assert_ptr_nonnull(strstr(argv, "--realise\n/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12\n/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.38\n"));
  }
  /* an answer that is not one (a path not asked for, garbage): the same */
  put("rc", "0\n");
  put("stderr", "");
  serve_answer((char *[]) { (char *) P1, "/nix/store/cccccccccccccccccccccccccccccccc-x", NULL });
  ck_assert_int_eq(frc_store_early_start(&store, &e, &err), 0);
  ck_assert_int_eq(frc_store_realise_start_early(&store, &e, paths, &r, &err), 0);
  ck_assert_msg(frc_store_realise_finish(r, &err) == 0, "%s", err ? err->msg : "");
  {
    cleanup_free char *argv = get("argv");
    ck_assert_ptr_nonnull(strstr(argv, "--realise\n"));
  }
  /* a derivation is refused before anything is handed over; the early
   * nix-store stays the caller's */
  ck_assert_int_eq(frc_store_early_start(&store, &e, &err), 0);
  ck_assert_int_lt(frc_store_realise_start_early(&store, &e, (char *[]) { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv", NULL }, &r, &err), 0);
  frc_error_release(&err);
  ck_assert_ptr_nonnull(e);
  /* not taken: killed at once, though it waits on its stdin */
  t0 = frc_now_ns();
  frc_store_early_abort(e);
  ck_assert_int_lt(frc_now_ns() - t0, 5000000000LL);
  frc_store_early_abort(NULL);
}
END_TEST

START_TEST(test_realise_start_finish_abort)
{
  char *paths[] = { (char *) P1, NULL };
  struct frc_store_realising *r = NULL;
  frc_error_t err = NULL;
  long long t0;

  ck_assert_msg(frc_store_realise_start(&store, paths, &r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg(frc_store_realise_finish(r, &err) == 0, "%s", err ? err->msg : "");
  {
    cleanup_free char *argv = get("argv");
    ck_assert_ptr_nonnull(strstr(argv, "--realise\n" "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12\n"));
  }
  put("rc", "1\n");
  put("stderr", "error: path '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' does not exist and cannot be created\n");
  ck_assert_int_eq(frc_store_realise_start(&store, paths, &r, &err), 0);
  ck_assert_int_lt(frc_store_realise_finish(r, &err), 0);
  ck_assert_msg(strstr(err->msg, "is not available from any substituter") != NULL, "%s", err->msg);
  frc_error_release(&err);
  /* a derivation is refused before nix-store runs */
  ck_assert_int_lt(frc_store_realise_start(&store, (char *[]) { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv", NULL }, &r, &err), 0);
  ck_assert_ptr_null(r);
  frc_error_release(&err);
  /* abort: a nix-store still running is killed at once */
  put("rc", "0\n");
  put("stderr", "");
  put("stdout", "");
  put("sleep", "");
  ck_assert_int_eq(frc_store_realise_start(&store, paths, &r, &err), 0);
  t0 = frc_now_ns();
  frc_store_realise_abort(r);
  ck_assert_int_lt(frc_now_ns() - t0, 5000000000LL);
  frc_store_realise_abort(NULL);
}
END_TEST

/* frc_store_realise_answered: back at the early nix-store's answer when it
 * says every path is valid, its exit (here 2 s after the answer, its
 * output still open) left to frc_store_realise_reap; an answer leaving a
 * path invalid: as finish (nix-store --realise, Nix's error). */
START_TEST(test_realise_answered)
{
  char *paths[] = { (char *) P1, (char *) P2, NULL };
  struct frc_store_early *e = NULL;
  struct frc_store_realising *r = NULL;
  frc_error_t err = NULL;
  long long t0;

  serve_answer((char *[]) { (char *) P2, (char *) P1, NULL });
  put("linger", "");
  ck_assert_msg(frc_store_early_start(&store, &e, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg(frc_store_realise_start_early(&store, &e, paths, &r, &err) == 0, "%s", err ? err->msg : "");
  t0 = frc_now_ns();
  ck_assert_msg(frc_store_realise_answered(&r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_lt(frc_now_ns() - t0, 1500000000LL);
  ck_assert_ptr_nonnull(r); /* still exiting */
  frc_store_realise_reap(r);
  ck_assert_int_ge(frc_now_ns() - t0, 1900000000LL); /* reaped: waited for its exit */
  frc_store_realise_reap(NULL);

  /* P2 left invalid: nix-store --realise says why, and nothing is left */
  unlink_file("linger");
  serve_answer((char *[]) { (char *) P1, NULL });
  ck_assert_int_eq(frc_store_early_start(&store, &e, &err), 0);
  ck_assert_int_eq(frc_store_realise_start_early(&store, &e, paths, &r, &err), 0);
  put("rc", "1\n");
  put("stderr", "error: path '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.38' does not exist and cannot be created\n");
  ck_assert_int_lt(frc_store_realise_answered(&r, &err), 0);
  ck_assert_ptr_null(r);
  ck_assert_msg(strstr(err->msg, "is not available from any substituter") != NULL, "%s", err->msg);
  frc_error_release(&err);

  /* no nix-store started beside a fetch (*early NULL): a nix-store --serve
   * with the paths at once (no warm-up query), answered before its exit */
  unlink_file("rc");
  unlink_file("stderr");
  {
    cleanup_buf struct frc_buf b = { NULL, 0, 0 };
    cleanup_buf struct frc_buf want = { NULL, 0, 0 };
    add_u64(&b, 0x5452eecbULL);
    add_u64(&b, (2 << 8) | 7);
    add_u64(&b, 2);
    add_str(&b, P1);
    add_str(&b, P2);
    put_bytes("stdout", &b);
    put("linger", "");
    e = NULL;
    ck_assert_msg(frc_store_realise_start_early(&store, &e, paths, &r, &err) == 0, "%s", err ? err->msg : "");
    t0 = frc_now_ns();
    ck_assert_msg(frc_store_realise_answered(&r, &err) == 0, "%s", err ? err->msg : "");
    ck_assert_int_lt(frc_now_ns() - t0, 1500000000LL);
    ck_assert_ptr_nonnull(r);
    frc_store_realise_reap(r);
    unlink_file("linger");
    cleanup_free char *argv = get("argv");
    ck_assert_ptr_nonnull(strstr(argv, "--serve\n--write\n"));
    ck_assert_ptr_null(strstr(argv, "--realise"));
    add_u64(&want, 0x390c9debULL);
    add_u64(&want, (2 << 8) | 7);
    add_u64(&want, 1);
    add_u64(&want, 0);
    add_u64(&want, 1);
    add_u64(&want, 2);
    add_str(&want, P1);
    add_str(&want, P2);
    cleanup_free char *got = NULL;
    size_t len = 0;
    cleanup_free char *sp = xasprintf("%s/stdin", dir);
    ck_assert_int_eq(read_file_bounded(sp, 1 << 20, &got, &len, &err), 0);
    ck_assert_uint_eq(len, want.len);
    ck_assert_int_eq(memcmp(got, want.data, len), 0);
  }

  /* a --realise (no early nix-store): as finish, nothing left */
  put("rc", "0\n");
  put("stderr", "");
  ck_assert_int_eq(frc_store_realise_start(&store, paths, &r, &err), 0);
  ck_assert_msg(frc_store_realise_answered(&r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_ptr_null(r);
}
END_TEST

/* The nice value of process pid (/proc/<pid>/stat's 19th field), -100
 * when it cannot be read. */
static int
nice_of(long pid)
{
  cleanup_free char *p = xasprintf("/proc/%ld/stat", pid);
  cleanup_free char *text = NULL;
  size_t len;
  frc_error_t err = NULL;
  int nice = -100;
  if (read_file_bounded(p, 4096, &text, &len, &err) < 0)
    {
      frc_error_release(&err);
      return nice;
    }
  const char *rest = strrchr(text, ')');
  /* after the comm: state ppid pgrp session tty tpgid flags minflt
   * cminflt majflt cmajflt utime stime cutime cstime priority nice */
  if (rest == NULL
      || sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %d", &nice) != 1)
    return -100;
  return nice;
}

/* The nix-store started beside the fetch runs niced (10) until it is handed
 * the paths, then at 0 (docs/performance.md, "Lever: cold fixed costs
 * (cold6)"). */
START_TEST(test_early_niced)
{
  char *paths[] = { (char *) P1, NULL };
  struct frc_store_early *e = NULL;
  struct frc_store_realising *r = NULL;
  frc_error_t err = NULL;
  long pid = 0;

  serve_answer((char *[]) { (char *) P1, NULL });
  put("linger", "");
  ck_assert_msg(frc_store_early_start(&store, &e, &err) == 0, "%s", err ? err->msg : "");
  for (int i = 0; i < 500 && pid == 0; i++)
    {
      cleanup_free char *t = get("pid");
      if (t && *t)
        pid = strtol(t, NULL, 10);
      else
        usleep(10000);
    }
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(nice_of(pid), 10);
  ck_assert_msg(frc_store_realise_start_early(&store, &e, paths, &r, &err) == 0, "%s", err ? err->msg : "");
  if (geteuid() == 0) /* back to 0 needs CAP_SYS_NICE, as flox-runc has */
    ck_assert_int_eq(nice_of(pid), 0); /* lingers 2 s after its answer */
  ck_assert_msg(frc_store_realise_finish(r, &err) == 0, "%s", err ? err->msg : "");
  unlink_file("linger");
}
END_TEST

static void
count_copy(void *data)
{
  (*(int *) data)++;
}

/* frc_store_realise_on_copy: the callback runs on each substitution
 * nix-store starts, while it runs. */
START_TEST(test_realise_on_copy)
{
  char *paths[] = { (char *) P1, NULL };
  struct frc_store_realising *r = NULL;
  frc_error_t err = NULL;
  int copies = 0;

  put("stderr", "these 2 paths will be fetched (0.84 MiB download, 1.94 MiB unpacked):\n"
                "copying path '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' from 'http://x'...\n"
                "warning: something else\n"
                "copying path '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-libc' from 'http://x'...\n");
  ck_assert_msg(frc_store_realise_start(&store, paths, &r, &err) == 0, "%s", err ? err->msg : "");
  frc_store_realise_on_copy(r, count_copy, &copies);
  ck_assert_msg(frc_store_realise_finish(r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_int_eq(copies, 2);
}
END_TEST

START_TEST(test_add)
{
  cleanup_free char *path = NULL;
  frc_error_t err = NULL;
  cleanup_free char *out = xasprintf("%s\n", P1);
  put("stdout", out);
  ck_assert_msg(frc_store_add(&store, "/var/lib/flox-runc/bash", &path, &err) == 0, "%s",
                err ? err->msg : "");
  ck_assert_str_eq(path, P1);
  cleanup_free char *argv = get("argv");
  cleanup_free char *want = expected_argv("", "--add\n/var/lib/flox-runc/bash\n");
  ck_assert_str_eq(argv, want);
  put("stdout", "");
  free(path);
  path = NULL;
  ck_assert_int_lt(frc_store_add(&store, "/x", &path, &err), 0);
  frc_error_release(&err);
}
END_TEST

/* Failures carry Nix's own line, not only "build of ... failed". */
START_TEST(test_failure_names_nix_error)
{
  char *const paths[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  put("rc", "1\n");
  put("stderr", "error: opening lock file '/nix/var/nix/db/big-lock': Permission denied\n"
                "error: build of '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' failed\n");
  ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
  ck_assert_msg(strstr(err->msg, "Permission denied") != NULL, "%s", err->msg);
  ck_assert_msg(strstr(err->msg, "nix-store exit 1") != NULL, "%s", err->msg);
  frc_error_release(&err);

  /* a download error Nix only warned about names the substituter */
  put("stderr", "warning: error: unable to download 'http://127.0.0.1:5000/nix-cache-info': "
                "HTTP error 500\n"
                "error: build of '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' failed\n");
  ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
  ck_assert_msg(strstr(err->msg, "a substituter failed") != NULL, "%s", err->msg);
  ck_assert_msg(strstr(err->msg, "HTTP error 500") != NULL, "%s", err->msg);
  frc_error_release(&err);

  /* a path no substituter has: named, with the fix */
  put("stderr", "error: path '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' does not "
                "exist and cannot be created\n");
  ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
  ck_assert_msg(strstr(err->msg, P1) != NULL && strstr(err->msg, "not available from any substituter"),
                "%s", err->msg);
  frc_error_release(&err);
}
END_TEST

/* Nix's netrc text for the credentials in substituter URLs: decoded,
 * quoted when needed, one line per host; conflicts and control characters
 * refused without the password in the message. */
START_TEST(test_netrc)
{
  frc_error_t err = NULL;
  char *text = NULL;
  char *none[] = { "http://127.0.0.1:5000", "https://cache.example", NULL };
  char *two[] = { "http://u%3Ax:p%40ss@127.0.0.1:5000", "https://cache.example/a",
                  "https://tok@cache.other/x", "http://u%3Ax:p%40ss@127.0.0.1:5001/b",
                  "https://me:two%20words%22q%5C@[::1]:8443", NULL };
  char *clash[] = { "http://a:pw1@host:1", "http://a:pw2@HOST:2", NULL };
  char *ctl[] = { "http://a:pw%0A1@host", NULL };

  ck_assert_int_eq(frc_store_netrc(none, &text, &err), 0);
  ck_assert_ptr_null(text);
  ck_assert_int_eq(frc_store_netrc(two, &text, &err), 0);
  ck_assert_str_eq(text, "machine 127.0.0.1 login u:x password p@ss\n"
                         "machine cache.other login tok password \"\"\n"
                         "machine ::1 login me password \"two words\\\"q\\\\\"\n");
  free(text);
  ck_assert_int_lt(frc_store_netrc(clash, &text, &err), 0);
  ck_assert_msg(strstr(err->msg, "different credentials") && !strstr(err->msg, "pw1")
                    && !strstr(err->msg, "pw2") && strstr(err->msg, "http://***@"),
                "%s", err->msg);
  frc_error_release(&err);
  ck_assert_int_lt(frc_store_netrc(ctl, &text, &err), 0);
  ck_assert_msg(strstr(err->msg, "control character") && !strstr(err->msg, "pw"), "%s", err->msg);
  frc_error_release(&err);
}
END_TEST

/* A substituter's credentials never reach nix-store's argv: the bare URL
 * there, the credentials in <state_dir>/secrets/netrc (0600 in 0700),
 * which goes when no URL has any; Nix's lines quoting a URL with
 * credentials are masked in the error. */
START_TEST(test_credentials_not_on_argv)
{
  char *const paths[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  cleanup_free char *argv = NULL, *netrc = NULL, *want = NULL;
  cleanup_free char *file = xasprintf("%s/secrets/netrc", cfg.state_dir);
  cleanup_free char *sdir = xasprintf("%s/secrets", cfg.state_dir);
  struct stat st;

  free(cfg.substituters[0]);
  cfg.substituters[0] = xstrdup("http://cu:s3cr%40t@127.0.0.1:5000");
  ck_assert_int_eq(frc_store_realise(&store, paths, &err), 0);
  argv = get("argv");
  ck_assert_ptr_null(strstr(argv, "s3cr"));
  ck_assert_ptr_null(strstr(argv, "cu:"));
  want = xasprintf("substituters\nhttp://127.0.0.1:5000 https://cache.example\n");
  ck_assert_msg(strstr(argv, want) != NULL, "%s", argv);
  free(want);
  want = xasprintf("--option\nnetrc-file\n%s\n", file);
  ck_assert_msg(strstr(argv, want) != NULL, "%s", argv);
  ck_assert_int_eq(read_file_bounded(file, 4096, &netrc, NULL, &err), 0);
  ck_assert_str_eq(netrc, "machine 127.0.0.1 login cu password s3cr@t\n");
  ck_assert_int_eq(stat(file, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  ck_assert_int_eq(stat(sdir, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0700);

  /* Nix quoting a URL with credentials (another tool's, or an older
   * flox-runc's narinfo cache): masked in the error */
  put("rc", "1\n");
  put("stderr", "warning: error: unable to download 'http://cu:s3cr%40t@127.0.0.1:5000/nix-cache-info': "
                "HTTP error 500\n"
                "error: build of '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12' failed\n");
  ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
  ck_assert_msg(strstr(err->msg, "s3cr") == NULL && strstr(err->msg, "http://***@127.0.0.1:5000")
                    && strstr(err->msg, "HTTP error 500"),
                "%s", err->msg);
  frc_error_release(&err);

  /* no credentials any more: the file goes, no netrc-file option */
  put("rc", "0\n");
  put("stderr", "");
  free(cfg.substituters[0]);
  cfg.substituters[0] = xstrdup("http://127.0.0.1:5000");
  ck_assert_int_eq(frc_store_realise(&store, paths, &err), 0);
  ck_assert_int_lt(access(file, F_OK), 0);
  free(argv);
  argv = get("argv");
  ck_assert_ptr_null(strstr(argv, "netrc-file"));
}
END_TEST

/* Releases before 91b1c3b gave Nix substituter URLs with their credentials,
 * which its narinfo cache under state_dir kept: the first nix-store run
 * removes that cache once; the one Nix makes afterwards stays. */
START_TEST(test_narinfo_cache_purged)
{
  char *const paths[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  cleanup_free char *ndir = xasprintf("%s/cache/nix", cfg.state_dir);
  cleanup_free char *db = xasprintf("%s/binary-cache-v6.sqlite", ndir);
  cleanup_free char *journal = xasprintf("%s-journal", db);
  cleanup_free char *mark = xasprintf("%s/cache/.narinfo-cache-purged-v1", cfg.state_dir);
  static const char old[] = "SQLite format 3...https://cu:s3cret@cache.example...";

  ck_assert_int_eq(frc_mkdir_p(ndir, 0700, &err), 0);
  ck_assert_int_eq(write_file_replace(db, old, sizeof(old) - 1, 0600, &err), 0);
  ck_assert_int_eq(write_file_replace(journal, old, sizeof(old) - 1, 0600, &err), 0);
  ck_assert_int_eq(frc_store_realise(&store, paths, &err), 0);
  ck_assert_int_lt(access(db, F_OK), 0);
  ck_assert_int_lt(access(journal, F_OK), 0);
  ck_assert_int_eq(access(mark, F_OK), 0);
  /* Nix's own cache from then on is kept */
  ck_assert_int_eq(write_file_replace(db, "new", 3, 0600, &err), 0);
  ck_assert_int_eq(frc_store_realise(&store, paths, &err), 0);
  ck_assert_int_eq(access(db, F_OK), 0);
}
END_TEST

/* presence by name in the store directory: a directory, a file, a
 * symlink (dangling or not: its own entry counts), a missing name; a path
 * below a store path or a store without its directory by the full name */
START_TEST(test_all_present)
{
  static const char D[] = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-dir";
  static const char F[] = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-file";
  static const char L[] = "/nix/store/cccccccccccccccccccccccccccccccc-dangling";
  static const char M[] = "/nix/store/dddddddddddddddddddddddddddddddd-missing";
  cleanup_free char *root = xasprintf("%s/present", dir);
  cleanup_free char *d = xasprintf("%s%s/bin", root, D);
  cleanup_free char *f = xasprintf("%s%s", root, F);
  cleanup_free char *l = xasprintf("%s%s", root, L);
  cleanup_free char *empty = xasprintf("%s/empty", dir);
  struct frc_config c = { 0 };
  frc_error_t err = NULL;

  ck_assert_int_eq(frc_mkdir_p(d, 0755, &err), 0);
  ck_assert_int_eq(write_file_replace(f, "x", 1, 0644, &err), 0);
  ck_assert_int_eq(symlink("/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-gone", l), 0);
  c.store_root = root;
  ck_assert(frc_store_all_present(&c, (char *const[]) { (char *) D, (char *) F, (char *) L, NULL }));
  ck_assert(!frc_store_all_present(&c, (char *const[]) { (char *) D, (char *) M, NULL }));
  ck_assert(frc_store_all_present(&c, (char *const[]) { (char *) "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-dir/bin", NULL }));
  ck_assert(!frc_store_all_present(&c, (char *const[]) { (char *) "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-dir/lib", NULL }));
  ck_assert(frc_store_all_present(&c, (char *const[]) { NULL }));
  /* a store root without a store directory: nothing is present */
  ck_assert_int_eq(frc_mkdir_p(empty, 0755, &err), 0);
  c.store_root = empty;
  ck_assert(!frc_store_all_present(&c, (char *const[]) { (char *) D, NULL }));
}
END_TEST

START_TEST(test_no_nix_store)
{
  char *const paths[] = { (char *) P1, NULL };
  frc_error_t err = NULL;
  cleanup_free char *fake = xasprintf("%s/bin/nix-store", dir);
  cleanup_free char *found = NULL;
  ck_assert_int_eq(unlink(fake), 0);
  setenv("PATH", "/nonexistent", 1);
  found = frc_nix_store_find();
  if (found == NULL) /* else the machine has Nix in one of the usual places */
    {
      ck_assert_int_lt(frc_store_realise(&store, paths, &err), 0);
      ck_assert_msg(strstr(err->msg, "install Nix on the node") != NULL, "%s", err->msg);
      frc_error_release(&err);
    }
  else
    ck_assert_str_ne(found, fake);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("store");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_find);
  tcase_add_test(tc, test_realise_node_store);
  tcase_add_test(tc, test_realise_chroot_store);
  tcase_add_test(tc, test_invalid_path_refused);
  tcase_add_test(tc, test_derivation_refused);
  tcase_add_test(tc, test_closure);
  tcase_add_test(tc, test_closure_db);
  tcase_add_test(tc, test_realise_start_finish_abort);
  tcase_add_test(tc, test_early_serve);
  tcase_add_test(tc, test_realise_on_copy);
  tcase_add_test(tc, test_realise_answered);
  tcase_add_test(tc, test_early_niced);
  tcase_add_test(tc, test_add);
  tcase_add_test(tc, test_failure_names_nix_error);
  tcase_add_test(tc, test_all_present);
  tcase_add_test(tc, test_no_nix_store);
  tcase_add_test(tc, test_netrc);
  tcase_add_test(tc, test_credentials_not_on_argv);
  tcase_add_test(tc, test_narinfo_cache_purged);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
