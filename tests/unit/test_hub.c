/* The node cache decisions of lib/hub.c, without a hub: a cache laid out as
 * hub.h describes it (live.json, gen/<N>/manifest.lock, auth/<sha256 of the
 * credential>), and a FloxHub URL nobody listens on.  What is served without
 * any request (FRC_FROM_CACHE) is exactly: a cached generation, for a
 * credential FloxHub accepted within auth_window_seconds, and for a live
 * reference a live generation checked within fresh_seconds.  Everything else
 * asks the hub; the hub being down then gives the node's copy only to a
 * credential accepted before, and nothing to any other.  No root needed. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "annotations.h"
#include "dl.h"
#include "http.h"
#include "hub.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-hub-XXXXXX";
static struct frc_config cfg;
static const struct frc_logger quiet = { .path = NULL, .stderr_fd = -1 };
static const char LOCK3[] = "{\"lockfile-version\": 1, \"generation\": 3}\n";
static const char LOCK2[] = "{\"lockfile-version\": 1, \"generation\": 2}\n";
static const char COMMIT[] = "0123456789abcdef0123456789abcdef01234567";

static void
configure(long fresh, long window)
{
  /* port 1 on loopback: connection refused at once */
  cleanup_free char *json = xasprintf("{\"floxhub_url\": \"http://127.0.0.1:1\", \"state_dir\": \"%s\","
                                      " \"fresh_seconds\": %ld, \"auth_window_seconds\": %ld,"
                                      " \"deadline_seconds\": 3}",
                                      dir, fresh, window);
  frc_error_t err = NULL;
  frc_config_release(&cfg);
  memset(&cfg, 0, sizeof(cfg));
  ck_assert_msg(frc_config_parse(&cfg, json, strlen(json), "test", &err) == 0, "%s",
                err ? err->msg : "");
}

static void
setup(void)
{
  strcpy(dir, "/tmp/frc-test-hub-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  memset(&cfg, 0, sizeof(cfg));
  configure(10, 300);
}

static void
teardown(void)
{
  cleanup_free char *cmd = xasprintf("/bin/rm -rf '%s'", dir);
  frc_config_release(&cfg);
  ck_assert_int_eq(system(cmd), 0);
}

static void
hex(const char *s, char out[65])
{
  unsigned char d[32];
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_sha256(s, strlen(s), d, &err), 0);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

/* <state_dir>/hub/<sha256(git url)[0:16]>/acme/tools */
static char *
env_dir(void)
{
  char h[65];
  hex(cfg.floxhub_git_url, h);
  h[16] = '\0';
  return xasprintf("%s/hub/%s/acme/tools", dir, h);
}

static void
put(const char *path, const char *text, long long age)
{
  frc_error_t err = NULL;
  cleanup_free char *d = xstrdup(path);
  *strrchr(d, '/') = '\0';
  ck_assert_int_eq(frc_mkdir_p(d, 0700, &err), 0);
  ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0600, &err), 0);
  struct utimbuf t = { .actime = time(NULL) - age, .modtime = time(NULL) - age };
  ck_assert_int_eq(utime(path, &t), 0);
}

/* The live generation 3 checked `checked_ago` seconds ago, generations 2
 * and 3 cached. */
static void
seed_live(long long checked_ago)
{
  cleanup_free char *d = env_dir();
  cleanup_free char *live = xasprintf("%s/live.json", d);
  cleanup_free char *text = xasprintf("{\"commit\":\"%s\",\"live\":3,\"checked\":%lld}\n", COMMIT,
                                      (long long) time(NULL) - checked_ago);
  cleanup_free char *g2 = xasprintf("%s/gen/2/manifest.lock", d);
  cleanup_free char *g3 = xasprintf("%s/gen/3/manifest.lock", d);
  put(live, text, 0);
  put(g2, LOCK2, 0);
  put(g3, LOCK3, 0);
}

/* FloxHub accepted token (NULL: anonymous) for acme/tools `age` seconds ago. */
static void
seed_auth(const char *token, long long age)
{
  char k[65];
  cleanup_free char *d = env_dir();
  cleanup_free char *cred
      = xasprintf("flox-runc credential\nacme/tools\n%s", token ? token : "(anonymous)");
  hex(cred, k);
  cleanup_free char *path = xasprintf("%s/auth/%s", d, k);
  put(path, "acme/tools", age);
}

static int
resolve(const char *ref, const char *token, struct frc_resolved *out, frc_error_t *err)
{
  struct frc_envref r;
  /* writable, as a token read from a file is: the fetch child wipes its copy */
  cleanup_free char *tok = token ? xstrdup(token) : NULL;
  ck_assert_int_eq(frc_envref_parse(ref, &r, err), 0);
  struct frc_resolve_request req = {
    .config = &cfg, .ref = &r, .token = tok, .log = &quiet,
    .deadline_ns = frc_now_ns() + 300000000LL, /* no time for retries */
  };
  return frc_hub_resolve(&req, out, err);
}

static void
assert_served(const char *ref, const char *token, enum frc_resolve_source want, unsigned gen,
              const char *text)
{
  cleanup_resolved struct frc_resolved out = { 0 };
  frc_error_t err = NULL;
  ck_assert_msg(resolve(ref, token, &out, &err) == 0, "%s: %s", ref, err ? err->msg : "");
  ck_assert_msg(out.source == want, "%s: served %s, expected %s", ref,
                frc_resolve_source_name(out.source), frc_resolve_source_name(want));
  ck_assert_uint_eq(out.generation, gen);
  ck_assert_str_eq(out.lockfile, text);
  if (want == FRC_FROM_CACHE)
    ck_assert_uint_eq(out.requests, 0);
}

static void
assert_refused(const char *ref, const char *token)
{
  cleanup_resolved struct frc_resolved out = { 0 };
  frc_error_t err = NULL;
  ck_assert_int_lt(resolve(ref, token, &out, &err), 0);
  ck_assert_ptr_nonnull(err);
  ck_assert_msg(strstr(err->msg, "no usable copy") != NULL, "%s", err->msg);
  ck_assert_ptr_null(out.lockfile);
  frc_error_release(&err);
}

/* Live reference, checked 2 s ago (fresh_seconds 10), credential accepted
 * 5 s ago (window 300): served with no request. */
START_TEST(test_live_fresh)
{
  seed_live(2);
  seed_auth("tok", 5);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE, 3, LOCK3);
}
END_TEST

/* Older than fresh_seconds: the hub is asked; it is down, so the copy for
 * the accepted credential is served as an offline fallback. */
START_TEST(test_live_stale)
{
  seed_live(60);
  seed_auth("tok", 5);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE_OFFLINE, 3, LOCK3);
}
END_TEST

/* fresh_seconds 0: every resolution of a live reference asks. */
START_TEST(test_fresh_zero)
{
  configure(0, 300);
  seed_live(0);
  seed_auth("tok", 5);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE_OFFLINE, 3, LOCK3);
}
END_TEST

/* A live.json "checked" in the future (clock moved back) is not fresh. */
START_TEST(test_checked_in_future)
{
  seed_live(-3600);
  seed_auth("tok", 5);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE_OFFLINE, 3, LOCK3);
}
END_TEST

/* The credential was accepted longer ago than auth_window_seconds: asked. */
START_TEST(test_auth_window_expired)
{
  seed_live(2);
  seed_auth("tok", 400);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE_OFFLINE, 3, LOCK3);
  configure(10, 0); /* window 0: always asked */
  seed_auth("tok", 0);
  assert_served("acme/tools", "tok", FRC_FROM_CACHE_OFFLINE, 3, LOCK3);
}
END_TEST

/* Another credential, or none, never gets a copy cached for one FloxHub
 * accepted: not from the cache, and not offline either. */
START_TEST(test_other_credential)
{
  seed_live(2);
  seed_auth("tok", 5);
  assert_refused("acme/tools", "other");
  assert_refused("acme/tools", NULL);
  assert_refused("acme/tools:2", "other");
  /* and the accepted one still is served */
  assert_served("acme/tools", "tok", FRC_FROM_CACHE, 3, LOCK3);
}
END_TEST

/* A pinned generation is immutable: served from the cache within the
 * auth window whatever fresh_seconds and the live state say. */
START_TEST(test_pinned)
{
  configure(0, 300);
  seed_live(99999);
  seed_auth(NULL, 5);
  assert_served("acme/tools:2", NULL, FRC_FROM_CACHE, 2, LOCK2);
  {
    cleanup_resolved struct frc_resolved out = { 0 };
    frc_error_t err = NULL;
    ck_assert_int_eq(resolve("acme/tools:2", NULL, &out, &err), 0);
    ck_assert(out.pinned);
    ck_assert_uint_eq(out.live, 3);
  }
  /* outside the window it is verified with the hub, offline: the copy */
  seed_auth(NULL, 400);
  assert_served("acme/tools:2", NULL, FRC_FROM_CACHE_OFFLINE, 2, LOCK2);
  /* a generation the node never fetched cannot be served */
  assert_refused("acme/tools:7", NULL);
}
END_TEST

/* lockfile_later (a create's resolution): the cached manifest.lock is
 * opened, not read, and its identity given; its text comes when asked,
 * from the file opened (one that replaced it since is not read). */
START_TEST(test_lockfile_later)
{
  cleanup_resolved struct frc_resolved out = { 0 };
  cleanup_free char *d = env_dir();
  cleanup_free char *g3 = NULL;
  frc_error_t err = NULL;
  struct frc_envref r;
  struct stat st;
  char id[128];

  seed_live(2);
  seed_auth("tok", 5);
  g3 = xasprintf("%s/gen/3/manifest.lock", d);
  ck_assert_int_eq(frc_envref_parse("acme/tools", &r, &err), 0);
  cleanup_free char *tok = xstrdup("tok");
  struct frc_resolve_request req = { .config = &cfg, .ref = &r, .token = tok, .log = &quiet,
                                     .deadline_ns = frc_now_ns() + 300000000LL,
                                     .lockfile_later = true };
  ck_assert_msg(frc_hub_resolve(&req, &out, &err) == 0, "%s", err ? err->msg : "");
  ck_assert(out.source == FRC_FROM_CACHE);
  ck_assert_ptr_null(out.lockfile);
  ck_assert_int_eq(stat(g3, &st), 0);
  snprintf(id, sizeof(id), "%llu:%llu:", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
  ck_assert_msg(str_has_prefix(out.lockfile_id, id), "%s", out.lockfile_id);
  put(g3, LOCK2, 0); /* replaced (no cache does that; the opened one is read) */
  ck_assert_msg(frc_resolved_lockfile(&out, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(out.lockfile, LOCK3);
  ck_assert_uint_eq(out.lockfile_len, strlen(LOCK3));
  ck_assert_int_eq(frc_resolved_lockfile(&out, &err), 0);
  ck_assert_str_eq(out.lockfile, LOCK3);
}
END_TEST

/* Nothing cached at all: the hub is asked, and its absence is an error
 * naming it. */
START_TEST(test_empty_cache)
{
  assert_refused("acme/tools", NULL);
  assert_refused("acme/tools:1", NULL);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("hub");
  TCase *tc = tcase_create("cache");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_live_fresh);
  tcase_add_test(tc, test_live_stale);
  tcase_add_test(tc, test_fresh_zero);
  tcase_add_test(tc, test_checked_in_future);
  tcase_add_test(tc, test_auth_window_expired);
  tcase_add_test(tc, test_other_credential);
  tcase_add_test(tc, test_pinned);
  tcase_add_test(tc, test_empty_cache);
  tcase_add_test(tc, test_lockfile_later);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
