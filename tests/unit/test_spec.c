/* Loading, editing and atomically saving OCI specs and exec process files
 * (lib/json.c, lib/spec.c), including every captured fixture. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "spec.h"
#include "testdir.h"
#include "util.h"

static char tmpdir[] = "/tmp/frc-test-spec-XXXXXX";

static void
setup(void)
{
  frc_test_dir_make(tmpdir, "spec");
}

static void
teardown(void)
{
  frc_test_dir_remove(tmpdir);
}

static void
write_text(const char *path, const char *text)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0644, &err), 0);
}

static int
count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

/* Every fixture: load, save into a bundle, reload: semantically identical to
 * the original, serialised identically, every unknown field kept. */
START_TEST(test_fixtures_roundtrip)
{
  const char *dir = getenv("FRC_FIXTURES_DIR");
  DIR *d;
  struct dirent *e;
  int specs = 0, processes = 0;

  ck_assert_ptr_nonnull(dir);
  d = opendir(dir);
  ck_assert_msg(d != NULL, "no fixtures directory %s", dir);
  while ((e = readdir(d)))
    {
      cleanup_free char *src = NULL, *text = NULL, *bundle = NULL, *dst = NULL, *s1 = NULL,
                        *s2 = NULL;
      cleanup_json yajl_val orig = NULL;
      frc_error_t err = NULL;
      size_t len;
      bool is_spec;

      if (strlen(e->d_name) < 6 || strcmp(e->d_name + strlen(e->d_name) - 5, ".json") != 0)
        continue;
      src = xasprintf("%s/%s", dir, e->d_name);
      ck_assert_int_eq(read_file_bounded(src, FRC_SPEC_MAX_BYTES, &text, &len, &err), 0);
      ck_assert_msg(frc_json_parse(text, len, &orig, &err) == 0, "%s: %s", e->d_name,
                    err ? err->msg : "");
      is_spec = frc_json_get(orig, "ociVersion") != NULL;
      if (!is_spec && frc_json_get(orig, "args") == NULL)
        continue; /* neither a spec nor a process file */

      bundle = xasprintf("%s/%s.d", tmpdir, e->d_name);
      ck_assert_int_eq(mkdir(bundle, 0700), 0);
      dst = xasprintf("%s/%s", bundle, is_spec ? "config.json" : "process.json");
      write_text(dst, text);
      if (is_spec)
        {
          struct frc_spec s;
          ck_assert_msg(frc_spec_load(&s, bundle, &err) == 0, "%s: %s", e->d_name, err ? err->msg : "");
          s1 = frc_json_serialize(s.doc.root, NULL);
          ck_assert_int_eq(frc_spec_save(&s, &err), 0);
          frc_spec_release(&s);
          {
            /* what the runtime reads (linux.seccomp is kept as its text:
             * compared as read) */
            cleanup_free char *saved = NULL;
            cleanup_json yajl_val back = NULL;
            size_t slen = 0;
            ck_assert_int_eq(read_file_bounded(dst, FRC_SPEC_MAX_BYTES, &saved, &slen, &err), 0);
            ck_assert_int_eq(frc_json_parse(saved, slen, &back, &err), 0);
            ck_assert_msg(frc_json_equal(orig, back), "%s changed on a load/save", e->d_name);
          }
          ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
          s2 = frc_json_serialize(s.doc.root, NULL);
          frc_spec_release(&s);
          specs++;
        }
      else
        {
          struct frc_json_doc p;
          ck_assert_int_eq(frc_process_file_load(&p, dst, &err), 0);
          s1 = frc_json_serialize(p.root, NULL);
          ck_assert_int_eq(frc_json_doc_save(&p, &err), 0);
          frc_json_doc_release(&p);
          ck_assert_int_eq(frc_process_file_load(&p, dst, &err), 0);
          ck_assert_msg(frc_json_equal(orig, p.root), "%s changed on a load/save", e->d_name);
          s2 = frc_json_serialize(p.root, NULL);
          frc_json_doc_release(&p);
          processes++;
        }
      ck_assert_str_eq(s1, s2);
      ck_assert_int_eq(count_entries(bundle), 1); /* no temporary file left */
    }
  closedir(d);
  ck_assert_msg(specs >= 1 && processes >= 1, "fixtures: %d specs, %d process files", specs,
                processes);
}
END_TEST

START_TEST(test_unknown_fields_and_numbers_kept)
{
  const char *text = "{\"ociVersion\":\"1.9.9\",\"root\":{\"path\":\"rootfs\"},"
                     "\"x-future\":{\"n\":[1,2.50e10,-0.0,12345678901234567890123],\"b\":[true,false,null],"
                     "\"s\":\"\\u00e9\\t\\\"\"},\"process\":{\"args\":[\"sh\"],\"env\":[\"PATH=/bin\",\"A=1\"]}}";
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  cleanup_free char *saved = NULL;
  struct frc_spec s;
  frc_error_t err = NULL;

  write_text(path, text);
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  frc_process_setenv(frc_spec_process(&s), "FLOX_ENV", "/nix/store/x");
  ck_assert_int_eq(frc_spec_save(&s, &err), 0);
  frc_spec_release(&s);
  ck_assert_int_eq(read_file_bounded(path, 1 << 20, &saved, NULL, &err), 0);
  ck_assert_ptr_nonnull(strstr(saved, "2.50e10"));
  ck_assert_ptr_nonnull(strstr(saved, "12345678901234567890123"));
  ck_assert_ptr_nonnull(strstr(saved, "-0.0"));
  ck_assert_ptr_nonnull(strstr(saved, "\"b\":[true,false,null]"));
  ck_assert_ptr_nonnull(strstr(saved, "\"ociVersion\":\"1.9.9\""));
  ck_assert_ptr_nonnull(strstr(saved, "\"env\":[\"PATH=/bin\",\"A=1\",\"FLOX_ENV=/nix/store/x\"]"));
  ck_assert_ptr_nonnull(strstr(saved, "\xc3\xa9"));
}
END_TEST

/* linux.seccomp (a runtime's default profile: hundreds of syscall names,
 * which flox-runc never reads) is saved exactly as the engine wrote it,
 * bytes and all, beside flox-runc's edits. */
START_TEST(test_seccomp_kept_verbatim)
{
  const char *seccomp = "{ \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [ {\"names\": [\"read\", "
                        "\"write\"], \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1.0e0} ] }";
  cleanup_free char *text = xasprintf("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
                                      "\"process\":{\"args\":[\"sh\"],\"env\":[]},"
                                      "\"linux\":{\"namespaces\":[],\"seccomp\":%s,\"maskedPaths\":[]}}",
                                      seccomp);
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  cleanup_free char *saved = NULL;
  cleanup_json yajl_val orig = NULL, back = NULL;
  struct frc_spec s;
  frc_error_t err = NULL;
  size_t len = 0;

  write_text(path, text);
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  frc_process_setenv(frc_spec_process(&s), "FLOX_ENV", "/nix/store/x");
  ck_assert_int_eq(frc_spec_save(&s, &err), 0);
  frc_spec_release(&s);
  ck_assert_int_eq(read_file_bounded(path, 1 << 20, &saved, &len, &err), 0);
  ck_assert_msg(strstr(saved, seccomp) != NULL, "%s", saved);
  ck_assert_ptr_nonnull(strstr(saved, "\"env\":[\"FLOX_ENV=/nix/store/x\"]"));
  ck_assert_int_eq(frc_json_parse(text, strlen(text), &orig, &err), 0);
  ck_assert_int_eq(frc_json_parse(saved, len, &back, &err), 0);
  ck_assert(frc_json_equal(frc_json_get(orig, "linux"), frc_json_get(back, "linux")));
}
END_TEST

START_TEST(test_mode_kept_and_atomic)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  struct frc_spec s;
  struct stat st;
  frc_error_t err = NULL;

  write_text(path, "{\"ociVersion\":\"1.0.2\"}");
  ck_assert_int_eq(chmod(path, 0600), 0);
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  frc_spec_set_annotation(&s, "k", "v");
  ck_assert_int_eq(frc_spec_save(&s, &err), 0);
  frc_spec_release(&s);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  ck_assert_int_eq(count_entries(tmpdir), 1);

  /* A save that cannot complete leaves the file and no temporary behind. */
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  free(s.doc.path);
  s.doc.path = xasprintf("%s/missing-dir/config.json", tmpdir);
  ck_assert_int_lt(frc_spec_save(&s, &err), 0);
  frc_error_release(&err);
  frc_spec_release(&s);
  ck_assert_int_eq(count_entries(tmpdir), 1);
}
END_TEST

START_TEST(test_bounds)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  struct frc_spec s;
  frc_error_t err = NULL;
  FILE *f;

  /* larger than the bound */
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("{\"a\":\"", f);
  for (size_t i = 0; i < FRC_SPEC_MAX_BYTES / 1024 + 1; i++)
    {
      char buf[1024];
      memset(buf, 'x', sizeof(buf));
      fwrite(buf, 1, sizeof(buf), f);
    }
  fputs("\"}", f);
  fclose(f);
  ck_assert_int_lt(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "limit"));
  frc_error_release(&err);

  /* nesting */
  {
    char deep[2 * (FRC_JSON_MAX_DEPTH + 2) + 1] = "";
    for (int i = 0; i < FRC_JSON_MAX_DEPTH + 1; i++)
      strcat(deep, "[");
    for (int i = 0; i < FRC_JSON_MAX_DEPTH + 1; i++)
      strcat(deep, "]");
    yajl_val v = NULL;
    ck_assert_int_lt(frc_json_parse(deep, strlen(deep), &v, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, "nested"));
    frc_error_release(&err);
  }
  /* U+0000, invalid JSON, not an object */
  write_text(path, "{\"a\":\"x\\u0000y\"}");
  ck_assert_int_lt(frc_spec_load(&s, tmpdir, &err), 0);
  frc_error_release(&err);
  write_text(path, "{\"a\":");
  ck_assert_int_lt(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "invalid JSON"));
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  frc_error_release(&err);
  write_text(path, "[1]");
  ck_assert_int_lt(frc_spec_load(&s, tmpdir, &err), 0);
  frc_error_release(&err);
  /* missing */
  unlink(path);
  ck_assert_int_lt(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "config.json"));
  frc_error_release(&err);
}
END_TEST

/* A second `run` of a bundle flox-runc edited: its own mounts at and below
 * /nix go (sources under the store's nix/ or state_dir), a user's stay. */
START_TEST(test_remove_mounts_below)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  const char *const ours[] = { "/s/nix", "/state/", NULL };
  struct frc_spec s;
  frc_error_t err = NULL;

  write_text(path, "{\"mounts\":["
                   "{\"destination\":\"/proc\",\"source\":\"proc\"},"
                   "{\"destination\":\"/nix\",\"source\":\"/state/views/k\"},"
                   "{\"destination\":\"/nix/store/a-b\",\"source\":\"/s/nix/store/a-b\"},"
                   "{\"destination\":\"/nixos\",\"source\":\"/s/nix/x\"},"
                   "{\"destination\":\"/nix/cache\",\"source\":\"/home/u/cache\"},"
                   "{\"destination\":\"/nix/var/x\",\"source\":\"/s/nixpkgs\"},"
                   "{\"destination\":\"/data\",\"source\":\"/state/x\"}]}");
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_uint_eq(frc_spec_remove_mounts_below(&s, "/nix", ours), 2);
  ck_assert(!frc_spec_has_mount(&s, "/nix"));
  ck_assert(!frc_spec_has_mount(&s, "/nix/store/a-b"));
  ck_assert(frc_spec_has_mount(&s, "/nixos"));
  ck_assert(frc_spec_has_mount(&s, "/nix/cache"));
  ck_assert(frc_spec_has_mount(&s, "/nix/var/x"));
  ck_assert(frc_spec_has_mount(&s, "/data"));
  ck_assert(frc_spec_has_mount(&s, "/proc"));
  frc_spec_release(&s);
}
END_TEST

/* Only the mount with exactly that destination AND source goes, every
 * copy of it; a mount without a source or with another one stays. */
START_TEST(test_remove_mount)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  struct frc_spec s;
  frc_error_t err = NULL;

  write_text(path, "{\"mounts\":["
                   "{\"destination\":\"/c\",\"source\":\"/state/c\"},"
                   "{\"destination\":\"/c\",\"source\":\"/user/c\"},"
                   "{\"destination\":\"/c\"},"
                   "{\"destination\":\"/c/sub\",\"source\":\"/state/c\"},"
                   "{\"destination\":\"/c\",\"source\":\"/state/c\"}]}");
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_uint_eq(frc_spec_remove_mount(&s, "/c", "/state/c"), 2);
  ck_assert_uint_eq(frc_spec_remove_mount(&s, "/c", "/state/c"), 0);
  ck_assert_uint_eq(frc_json_get(s.doc.root, "mounts")->u.array.len, 3);
  ck_assert(frc_spec_has_mount(&s, "/c/sub"));
  ck_assert_uint_eq(frc_spec_remove_mount(&s, "/c", "/user/c"), 1);
  ck_assert(frc_spec_has_mount(&s, "/c")); /* the one without a source */
  frc_spec_release(&s);
}
END_TEST

START_TEST(test_edit_helpers)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  cleanup_free char *rootfs = NULL;
  const char *opts[] = { "rbind", "ro", NULL };
  struct frc_spec s;
  yajl_val p;
  frc_error_t err = NULL;
  bool present;

  write_text(path, "{\"root\":{\"path\":\"rootfs\"},\"annotations\":{\"n\":5},"
                   "\"process\":{\"env\":[\"A=1\",\"B=2\",\"A=3\"],\"args\":[\"x\"]}}");
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  ck_assert_int_eq(frc_spec_rootfs(&s, &rootfs, &err), 0);
  {
    cleanup_free char *want = xasprintf("%s/rootfs", tmpdir); /* freed: LeakSanitizer */
    ck_assert_str_eq(rootfs, want);
  }
  p = frc_spec_process(&s);
  ck_assert_str_eq(frc_process_getenv(p, "A"), "3");
  ck_assert_ptr_null(frc_process_getenv(p, "AB"));
  frc_process_setenv(p, "A", "4");
  ck_assert_str_eq(frc_process_getenv(p, "A"), "4");
  ck_assert_str_eq(frc_process_getenv(p, "B"), "2");
  ck_assert_uint_eq(frc_json_get(p, "env")->u.array.len, 2);
  {
    const char *args[] = { "hello", "--world", NULL };
    frc_process_set_args(p, args);
  }
  ck_assert_uint_eq(frc_process_nargs(p), 2);
  ck_assert_str_eq(frc_process_arg(p, 1), "--world");
  ck_assert_ptr_null(frc_process_arg(p, 2));
  ck_assert_ptr_null(frc_spec_annotation(&s, "n", &present));
  ck_assert(present);
  frc_spec_set_annotation(&s, "k", "v");
  ck_assert_str_eq(frc_spec_annotation(&s, "k", NULL), "v");
  ck_assert(!frc_spec_has_mount(&s, "/nix"));
  frc_spec_add_mount(&s, "/nix", "bind", "/nix", opts);
  ck_assert(frc_spec_has_mount(&s, "/nix"));
  ck_assert_int_eq(frc_spec_save(&s, &err), 0);
  frc_spec_release(&s);

  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  {
    cleanup_free char *ser = frc_json_serialize(s.doc.root, NULL);
    ck_assert_ptr_nonnull(strstr(ser, "\"mounts\":[{\"destination\":\"/nix\",\"type\":\"bind\","
                                      "\"source\":\"/nix\",\"options\":[\"rbind\",\"ro\"]}]"));
  }
  frc_spec_release(&s);

  /* absolute root.path and a missing one */
  write_text(path, "{\"root\":{\"path\":\"/abs/rootfs\"}}");
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  free(rootfs);
  ck_assert_int_eq(frc_spec_rootfs(&s, &rootfs, &err), 0);
  ck_assert_str_eq(rootfs, "/abs/rootfs");
  frc_spec_release(&s);
  write_text(path, "{}");
  ck_assert_int_eq(frc_spec_load(&s, tmpdir, &err), 0);
  free(rootfs);
  rootfs = NULL;
  ck_assert_int_lt(frc_spec_rootfs(&s, &rootfs, &err), 0);
  frc_error_release(&err);
  frc_spec_release(&s);
}
END_TEST

START_TEST(test_relative_and_default_bundle)
{
  cleanup_free char *path = xasprintf("%s/config.json", tmpdir);
  cleanup_free char *cwd = getcwd(NULL, 0);
  struct frc_spec s;
  frc_error_t err = NULL;

  write_text(path, "{\"ociVersion\":\"1.0.2\"}");
  ck_assert_int_eq(chdir(tmpdir), 0);
  ck_assert_int_eq(frc_spec_load(&s, NULL, &err), 0);
  ck_assert_str_eq(s.bundle, tmpdir);
  frc_spec_release(&s);
  ck_assert_int_eq(chdir("/tmp"), 0);
  ck_assert_int_eq(frc_spec_load(&s, tmpdir + 5, &err), 0);
  ck_assert_str_eq(s.bundle, tmpdir);
  frc_spec_release(&s);
  ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

START_TEST(test_json_set_remove_equal)
{
  yajl_val o = NULL;
  yajl_val o2 = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_json_parse("{\"a\":1,\"b\":2,\"a\":3}", 19, &o, &err), 0);
  ck_assert_str_eq(frc_json_get(o, "a")->u.number.r, "3");
  frc_json_set(o, "a", frc_json_new_int(7));
  ck_assert_uint_eq(o->u.object.len, 2);
  ck_assert_str_eq(o->u.object.keys[0], "a");
  ck_assert(frc_json_remove(o, "b"));
  ck_assert(!frc_json_remove(o, "b"));
  ck_assert_int_eq(frc_json_parse("{\"a\":7}", 7, &o2, &err), 0);
  ck_assert(frc_json_equal(o, o2));
  frc_json_set(o2, "c", frc_json_new_bool(true));
  ck_assert(!frc_json_equal(o, o2));
  ck_assert(!frc_json_equal(o2, o));
  frc_json_freep(&o);
  frc_json_freep(&o2);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("spec");
  TCase *tc = tcase_create("spec");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_fixtures_roundtrip);
  tcase_add_test(tc, test_unknown_fields_and_numbers_kept);
  tcase_add_test(tc, test_seccomp_kept_verbatim);
  tcase_add_test(tc, test_mode_kept_and_atomic);
  tcase_add_test(tc, test_bounds);
  tcase_add_test(tc, test_edit_helpers);
  tcase_add_test(tc, test_remove_mounts_below);
  tcase_add_test(tc, test_remove_mount);
  tcase_add_test(tc, test_relative_and_default_bundle);
  tcase_add_test(tc, test_json_set_remove_equal);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
