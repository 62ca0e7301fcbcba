/* Per-container records (lib/record.c): what create leaves for exec and
 * delete survives a save and a load field by field; found by (--root, id),
 * and without --root only when exactly one root has the id; a record of
 * another root never answers; a damaged record reads as absent; ids runc
 * would refuse are never recorded or looked up; remove releases it.  No
 * root needed. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-record-XXXXXX";
static struct frc_config cfg;

static void
setup(void)
{
  frc_test_dir_make(dir, "record");
  memset(&cfg, 0, sizeof(cfg));
  cfg.state_dir = dir;
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
}

static char *names[] = { "GREETING", "PATHY", NULL };
static char *values[] = { "hello $USER", "/a:/b", NULL };

static struct frc_record
full(const char *root, const char *id)
{
  struct frc_record r = {
    .id = (char *) id,
    .runtime_root = (char *) root,
    .bundle = "/run/containerd/b/x",
    .reference = "acme/tools:3",
    .env_key = "0123abcd",
    .env_path = "/nix/var/flox-runc/envs/0123abcd",
    .mode = FRC_MODE_DEV,
    .skip_exec = true,
    .disable_metrics = true,
    .has_hook = true,
    .bash = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-flox-runc-bash/bin/bash",
    .owner = "acme",
    .name = "tools",
    .generation = 3,
    .env_cache = "/run/flox/env-cache",
    .env_cache_dir = "/var/lib/flox-runc/env-cache/sandbox/sb/acme/tools",
    .env_cache_per_container = true,
    .ca_bundle = "/run/flox/ca-bundle.crt",
    .var_names = names,
    .var_values = values,
    .nvars = 2,
    .overlay = "/var/lib/flox-runc/overlays/k",
    .gcroot = "k-id",
  };
  r.features.java = true;
  r.features.pip = true;
  strcpy(r.features.python, "3.12");
  return r;
}

static char *
record_path(const char *root, const char *id)
{
  cleanup_free char *key = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_record_key(root, id, &key, &err), 0);
  /* <fnv64(root)>-<id>: the directory is the part before the id */
  key[16] = '\0';
  return xasprintf("%s/containers/%s/%s.json", dir, key, id);
}

START_TEST(test_roundtrip)
{
  struct frc_record w = full("/run/containerd/runc/k8s.io", "c1");
  cleanup_record struct frc_record r = { 0 };
  frc_error_t err = NULL;
  bool found = false;
  struct stat st;

  ck_assert_msg(frc_record_save(&cfg, &w, &err) == 0, "%s", err ? err->msg : "");
  cleanup_free char *p = record_path(w.runtime_root, "c1");
  ck_assert_int_eq(stat(p, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(frc_record_load(&cfg, w.runtime_root, "c1", &r, &found, &err), 0);
  ck_assert(found);
  ck_assert_str_eq(r.id, "c1");
  ck_assert_str_eq(r.runtime_root, w.runtime_root);
  ck_assert_str_eq(r.bundle, w.bundle);
  ck_assert_str_eq(r.reference, w.reference);
  ck_assert_str_eq(r.env_key, w.env_key);
  ck_assert_str_eq(r.env_path, w.env_path);
  ck_assert_int_eq(r.mode, FRC_MODE_DEV);
  ck_assert(r.skip_exec && r.disable_metrics && r.has_hook && r.env_cache_per_container);
  ck_assert_str_eq(r.bash, w.bash);
  ck_assert_str_eq(r.owner, "acme");
  ck_assert_str_eq(r.name, "tools");
  ck_assert_uint_eq(r.generation, 3);
  ck_assert(r.features.java && r.features.pip && !r.features.cmake && !r.features.ca_bundle);
  ck_assert_str_eq(r.features.python, "3.12");
  ck_assert_str_eq(r.env_cache, w.env_cache);
  ck_assert_str_eq(r.env_cache_dir, w.env_cache_dir);
  ck_assert_str_eq(r.ca_bundle, w.ca_bundle);
  ck_assert_uint_eq(r.nvars, 2);
  ck_assert_str_eq(r.var_names[0], "GREETING");
  ck_assert_str_eq(r.var_values[0], "hello $USER");
  ck_assert_str_eq(r.var_names[1], "PATHY");
  ck_assert_str_eq(r.var_values[1], "/a:/b");
  ck_assert_str_eq(r.overlay, w.overlay);
  ck_assert_str_eq(r.gcroot, "k-id");
}
END_TEST

/* What a minimal record (run mode, nothing optional) reads back as. */
START_TEST(test_minimal)
{
  struct frc_record w = { .id = "m", .runtime_root = "", .env_path = "/nix/var/flox-runc/envs/k",
                          .gcroot = "g" };
  cleanup_record struct frc_record r = { 0 };
  frc_error_t err = NULL;
  bool found = false;
  ck_assert_int_eq(frc_record_save(&cfg, &w, &err), 0);
  ck_assert_int_eq(frc_record_load(&cfg, "", "m", &r, &found, &err), 0);
  ck_assert(found);
  ck_assert_int_eq(r.mode, FRC_MODE_RUN);
  ck_assert_ptr_null(r.bash);
  ck_assert_ptr_null(r.overlay);
  ck_assert_ptr_null(r.env_cache);
  ck_assert_uint_eq(r.nvars, 0);
  ck_assert_uint_eq(r.generation, 0);
  ck_assert(!r.skip_exec && !r.has_hook);
}
END_TEST

/* A container created by the previous release (its record names the
 * hook's shell "shell") keeps working with exec after an upgrade. */
START_TEST(test_previous_release)
{
  static const char old[] = "{\"id\": \"c\", \"runtime_root\": \"/run/a\", \"env_path\": \"/x\", "
                            "\"gcroot\": \"g\", \"mode\": \"dev\", \"has_hook\": true, "
                            "\"shell\": \"/nix/store/0000000000000000000000000000000a-bash/bin/bash\"}";
  cleanup_record struct frc_record r = { 0 };
  cleanup_free char *p = record_path("/run/a", "c");
  cleanup_free char *d = xstrdup(p);
  frc_error_t err = NULL;
  bool found = false;
  *strrchr(d, '/') = '\0';
  ck_assert_int_eq(frc_mkdir_p(d, 0700, &err), 0);
  ck_assert_int_eq(write_file_atomic(p, old, strlen(old), 0600, &err), 0);
  ck_assert_int_eq(frc_record_load(&cfg, "/run/a", "c", &r, &found, &err), 0);
  ck_assert(found);
  ck_assert(r.has_hook);
  ck_assert_ptr_nonnull(r.bash);
  ck_assert_str_eq(r.bash, "/nix/store/0000000000000000000000000000000a-bash/bin/bash");
}
END_TEST

START_TEST(test_lookup_by_root)
{
  struct frc_record a = full("/run/a", "same");
  struct frc_record b = full("/run/b", "same");
  struct frc_record u = full("/run/a", "unique");
  frc_error_t err = NULL;
  bool found = true;
  b.bundle = "/bundle-b";
  ck_assert_int_eq(frc_record_save(&cfg, &a, &err), 0);
  ck_assert_int_eq(frc_record_save(&cfg, &b, &err), 0);
  ck_assert_int_eq(frc_record_save(&cfg, &u, &err), 0);
  {
    cleanup_record struct frc_record r = { 0 };
    ck_assert_int_eq(frc_record_load(&cfg, "/run/b", "same", &r, &found, &err), 0);
    ck_assert(found);
    ck_assert_str_eq(r.bundle, "/bundle-b");
  }
  {
    /* another root has no such container */
    cleanup_record struct frc_record r = { 0 };
    ck_assert_int_eq(frc_record_load(&cfg, "/run/c", "same", &r, &found, &err), 0);
    ck_assert(!found);
    ck_assert_int_eq(frc_record_load(&cfg, "/run/b", "unique", &r, &found, &err), 0);
    ck_assert(!found);
  }
  {
    /* without --root (podman's cleanup): the one record with the id */
    cleanup_record struct frc_record r = { 0 };
    ck_assert_int_eq(frc_record_load(&cfg, NULL, "unique", &r, &found, &err), 0);
    ck_assert(found);
    ck_assert_str_eq(r.runtime_root, "/run/a");
  }
  {
    /* ... and an error naming the fix when several roots have it */
    cleanup_record struct frc_record r = { 0 };
    ck_assert_int_lt(frc_record_load(&cfg, NULL, "same", &r, &found, &err), 0);
    ck_assert(!found);
    ck_assert_msg(strstr(err->msg, "pass --root") != NULL, "%s", err->msg);
    frc_error_release(&err);
  }
}
END_TEST

/* A record whose file names another root (an fnv64 collision, or a copied
 * file) does not answer for this root. */
START_TEST(test_other_root_in_file)
{
  struct frc_record a = full("/run/a", "c");
  cleanup_record struct frc_record r = { 0 };
  frc_error_t err = NULL;
  bool found = true;
  ck_assert_int_eq(frc_record_save(&cfg, &a, &err), 0);
  cleanup_free char *from = record_path("/run/a", "c");
  cleanup_free char *to = record_path("/run/z", "c");
  cleanup_free char *todir = xstrdup(to);
  *strrchr(todir, '/') = '\0';
  ck_assert_int_eq(frc_mkdir_p(todir, 0700, &err), 0);
  ck_assert_int_eq(rename(from, to), 0);
  ck_assert_int_eq(frc_record_load(&cfg, "/run/z", "c", &r, &found, &err), 0);
  ck_assert(!found);
}
END_TEST

START_TEST(test_damaged)
{
  static const char *const bad[] = {
    "", "{", "[]", "{\"id\": \"c\"}", /* no env_path, no gcroot */
    "{\"id\": \"c\", \"env_path\": \"/x\", \"gcroot\": \"g\", \"var_names\": [\"A\"], \"var_values\": []}",
    "{\"id\": \"c\", \"env_path\": \"/x\", \"gcroot\": \"g\", \"env_cache_dir\": \"relative\"}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      cleanup_record struct frc_record r = { 0 };
      cleanup_free char *p = record_path("/run/a", "c");
      cleanup_free char *d = xstrdup(p);
      frc_error_t err = NULL;
      bool found = true;
      *strrchr(d, '/') = '\0';
      ck_assert_int_eq(frc_mkdir_p(d, 0700, &err), 0);
      ck_assert_int_eq(write_file_atomic(p, bad[i], strlen(bad[i]), 0600, &err), 0);
      ck_assert_int_eq(frc_record_load(&cfg, "/run/a", "c", &r, &found, &err), 0);
      ck_assert_msg(!found, "damaged record %zu was found", i);
      ck_assert_ptr_null(err);
      ck_assert_int_lt(frc_record_read(p, &r, &err), 0);
      ck_assert_msg(strstr(err->msg, "damaged") || strstr(err->msg, p), "%s", err->msg);
      frc_error_release(&err);
      frc_record_release(&r);
    }
}
END_TEST

START_TEST(test_ids)
{
  static const char *const ok[] = { "a", "A-b_c+d.e", "0123456789abcdef" };
  static const char *const bad[] = { "", ".", "..", "a/b", "../x", "a b", "a\nb", "é" };
  char longid[FRC_CONTAINER_ID_MAX + 2];
  cleanup_free char *key = NULL;
  frc_error_t err = NULL;
  bool found = true;

  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    ck_assert_msg(frc_container_id_valid(ok[i]), "%s", ok[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    {
      struct frc_record w = full("/run/a", bad[i]);
      cleanup_record struct frc_record r = { 0 };
      ck_assert_msg(!frc_container_id_valid(bad[i]), "%s", bad[i]);
      ck_assert_int_lt(frc_record_save(&cfg, &w, &err), 0);
      frc_error_release(&err);
      ck_assert_int_lt(frc_record_key("/run/a", bad[i], &key, &err), 0);
      frc_error_release(&err);
      ck_assert_int_eq(frc_record_load(&cfg, "/run/a", bad[i], &r, &found, &err), 0);
      ck_assert(!found);
    }
  memset(longid, 'a', sizeof(longid) - 1);
  longid[sizeof(longid) - 1] = '\0';
  ck_assert(!frc_container_id_valid(longid));
  longid[FRC_CONTAINER_ID_MAX] = '\0';
  ck_assert(frc_container_id_valid(longid));
  /* the key is <16 hex>-<id>, the same for the same root and id only */
  ck_assert_int_eq(frc_record_key("/run/a", "c", &key, &err), 0);
  ck_assert_uint_eq(strlen(key), 18);
  ck_assert_str_eq(key + 16, "-c");
  {
    cleanup_free char *k2 = NULL, *k3 = NULL;
    ck_assert_int_eq(frc_record_key("/run/a", "c", &k2, &err), 0);
    ck_assert_int_eq(frc_record_key("/run/b", "c", &k3, &err), 0);
    ck_assert_str_eq(key, k2);
    ck_assert_str_ne(key, k3);
  }
}
END_TEST

START_TEST(test_remove)
{
  struct frc_record a = full("/run/a", "c");
  struct frc_record b = full("/run/a", "d");
  cleanup_record struct frc_record r = { 0 };
  frc_error_t err = NULL;
  bool found = true;
  ck_assert_int_eq(frc_record_save(&cfg, &a, &err), 0);
  ck_assert_int_eq(frc_record_save(&cfg, &b, &err), 0);
  ck_assert_int_eq(frc_record_remove(&cfg, &a, &err), 0);
  ck_assert_int_eq(frc_record_load(&cfg, "/run/a", "c", &r, &found, &err), 0);
  ck_assert(!found);
  ck_assert_int_eq(frc_record_load(&cfg, "/run/a", "d", &r, &found, &err), 0);
  ck_assert(found);
  frc_record_release(&r);
  /* twice is fine; the last one takes its root's directory with it */
  ck_assert_int_eq(frc_record_remove(&cfg, &a, &err), 0);
  ck_assert_int_eq(frc_record_remove(&cfg, &b, &err), 0);
  cleanup_free char *p = record_path("/run/a", "d");
  *strrchr(p, '/') = '\0';
  ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("record");
  TCase *tc = tcase_create("record");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_roundtrip);
  tcase_add_test(tc, test_minimal);
  tcase_add_test(tc, test_previous_release);
  tcase_add_test(tc, test_lookup_by_root);
  tcase_add_test(tc, test_other_root_in_file);
  tcase_add_test(tc, test_damaged);
  tcase_add_test(tc, test_ids);
  tcase_add_test(tc, test_remove);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
