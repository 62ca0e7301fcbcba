/* Checkpoint and restore support (lib/criu.c): the image's record of the
 * environment survives a write and a read, pins the generation of a
 * floating annotation, and is refused (one message naming both) when it
 * names another environment or generation; hostile records (a symlink, a
 * FIFO, oversized, not JSON, no generation, control characters) fail
 * without blocking or following; the org.criu.config annotation is
 * flox-runc's only when it names a file of its views directory, and a
 * pod's is removed from a Flox container's spec unless the node config
 * allows it; the CRIU
 * configuration lists every bound closure path of a view, not its
 * symlinks, and the hook's other binds; which runtimes read the annotation.  No root needed. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "criu.h"
#include "testdir.h"
#include "util.h"

static char dir[] = "/tmp/frc-test-criu-XXXXXX";
static struct frc_config cfg;

static void
setup(void)
{
  frc_test_dir_make(dir, "criu");
  memset(&cfg, 0, sizeof(cfg));
  cfg.state_dir = dir;
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
}

static void
write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

static struct frc_envref
ref(const char *text)
{
  struct frc_envref r = { 0 };
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_envref_parse(text, &r, &err), 0);
  return r;
}

START_TEST(test_image_roundtrip)
{
  cleanup_free char *img = xasprintf("%s/img", dir);
  struct frc_envref floating = ref("acme/tools"), pinned = ref("acme/tools:3");
  frc_error_t err = NULL;
  unsigned gen = 0;
  bool found = true;
  struct stat st;

  /* none: a checkpoint by another runtime */
  ck_assert_int_eq(frc_criu_image_read(dir, &floating, &gen, &found, &err), 0);
  ck_assert(!found);
  /* the directory is made 0700, as runc makes it */
  ck_assert_int_eq(frc_criu_image_write(img, "acme/tools:3", &err), 0);
  ck_assert_int_eq(stat(img, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0700);
  /* with missing parents, as runc makes --image-path (MkdirAll) */
  {
    cleanup_free char *deep = xasprintf("%s/new/parents/img", dir);
    ck_assert_msg(frc_criu_image_write(deep, "acme/tools:3", &err) == 0, "%s", err ? err->msg : "");
    ck_assert_int_eq(stat(deep, &st), 0);
  }
  ck_assert_int_eq(frc_criu_image_read(img, &floating, &gen, &found, &err), 0);
  ck_assert(found);
  ck_assert_uint_eq(gen, 3);
  ck_assert_int_eq(frc_criu_image_read(img, &pinned, &gen, &found, &err), 0);
  ck_assert_uint_eq(gen, 3);
  /* written again over the last (a second checkpoint into one directory) */
  ck_assert_int_eq(frc_criu_image_write(img, "acme/tools:4", &err), 0);
  ck_assert_int_eq(frc_criu_image_read(img, &floating, &gen, &found, &err), 0);
  ck_assert_uint_eq(gen, 4);
}
END_TEST

START_TEST(test_image_mismatch)
{
  struct frc_envref other = ref("acme/other"), two = ref("acme/tools:2"), owner = ref("evil/tools");
  frc_error_t err = NULL;
  unsigned gen = 7;
  bool found = true;

  ck_assert_int_eq(frc_criu_image_write(dir, "acme/tools:3", &err), 0);
  ck_assert_int_eq(frc_criu_image_read(dir, &other, &gen, &found, &err), -1);
  ck_assert_str_eq(err->msg, "the checkpoint was taken of a container of acme/tools:3, but the "
                             "flox.dev/environment annotation names acme/other: restore it with "
                             "flox.dev/environment: acme/tools:3");
  ck_assert(!found);
  ck_assert_uint_eq(gen, 0);
  frc_error_release(&err);
  ck_assert_int_eq(frc_criu_image_read(dir, &two, &gen, &found, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "annotation names acme/tools:2"));
  frc_error_release(&err);
  ck_assert_int_eq(frc_criu_image_read(dir, &owner, &gen, &found, &err), -1);
  frc_error_release(&err);
}
END_TEST

/* Each hostile record fails with a message quoting want (escaped). */
static void
hostile(const char *text, const char *want)
{
  cleanup_free char *p = xasprintf("%s/" FRC_CRIU_IMAGE_RECORD, dir);
  struct frc_envref floating = ref("acme/tools");
  frc_error_t err = NULL;
  unsigned gen = 9;
  bool found = true;

  unlink(p);
  write_text(p, text);
  ck_assert_int_eq(frc_criu_image_read(dir, &floating, &gen, &found, &err), -1);
  ck_assert_msg(strstr(err->msg, want) != NULL, "%s: %s", text, err->msg);
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  ck_assert(!found);
  ck_assert_uint_eq(gen, 0);
  frc_error_release(&err);
}

START_TEST(test_image_hostile)
{
  cleanup_free char *p = xasprintf("%s/" FRC_CRIU_IMAGE_RECORD, dir);
  cleanup_free char *target = xasprintf("%s/target", dir);
  cleanup_free char *big = xmalloc0(6000);
  struct frc_envref floating = ref("acme/tools");
  frc_error_t err = NULL;
  unsigned gen = 0;
  bool found = false;

  hostile("not json", "is not flox-runc's record");
  hostile("[\"acme/tools:1\"]", "is not flox-runc's record");
  hostile("{\"environment\": 3}", "is not flox-runc's record");
  hostile("{\"environment\": \"acme/tools\"}", "names `acme/tools`, not owner/name:N");
  hostile("{\"environment\": \"acme/tools:0\"}", "not owner/name:N");
  hostile("{\"environment\": \"../../etc:1\"}", "not owner/name:N");
  hostile("{\"environment\": \"acme/tools:1\\nx\"}", "names `acme/tools:1\\nx`");
  memset(big, ' ', 5999);
  big[0] = '{';
  big[5998] = '}';
  hostile(big, "flox-runc.json");
  /* a symlink is not followed */
  unlink(p);
  write_text(target, "{\"environment\": \"acme/tools:1\"}");
  ck_assert_int_eq(symlink(target, p), 0);
  ck_assert_int_eq(frc_criu_image_read(dir, &floating, &gen, &found, &err), -1);
  ck_assert(!found);
  frc_error_release(&err);
  /* a FIFO: refused at once, nothing blocks */
  unlink(p);
  ck_assert_int_eq(mkfifo(p, 0600), 0);
  ck_assert_int_eq(frc_criu_image_read(dir, &floating, &gen, &found, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "not a regular file"));
  frc_error_release(&err);
  /* a device node (root: a node without a driver, whose open fails with
   * ENXIO, or EACCES on a nodev /tmp): refused without being opened */
  unlink(p);
  if (mknod(p, S_IFCHR | 0600, makedev(240, 77)) == 0)
    {
      ck_assert_int_eq(frc_criu_image_read(dir, &floating, &gen, &found, &err), -1);
      ck_assert_msg(strstr(err->msg, "not a regular file") != NULL, "%s", err->msg);
      frc_error_release(&err);
    }
  else
    ck_assert_int_eq(errno, EPERM);
}
END_TEST

START_TEST(test_annotation)
{
  cleanup_free char *bundle = xasprintf("%s/bundle", dir);
  cleanup_free char *conf = xasprintf("%s/config.json", bundle);
  cleanup_free char *want = xasprintf("%s/views/abc.criu.conf", dir);
  struct frc_spec s cleanup_spec = { 0 };
  frc_error_t err = NULL;
  bool present = true;

  ck_assert_int_eq(mkdir(bundle, 0755), 0);
  write_text(conf, "{\"root\":{\"path\":\"rootfs\"},\"annotations\":{\"a\":\"b\"}}");
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  ck_assert(!frc_criu_annotation_foreign(&s, &cfg));
  frc_criu_annotate(&s, &cfg, "abc");
  ck_assert_str_eq(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, NULL), want);
  ck_assert(!frc_criu_annotation_foreign(&s, &cfg));
  frc_criu_unannotate(&s, &cfg);
  ck_assert_ptr_null(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, &present));
  ck_assert(!present);
  ck_assert_str_eq(frc_spec_annotation(&s, "a", NULL), "b");
  /* someone else's: kept, and foreign (an empty value too: no file at all) */
  {
    const char *theirs[] = { "/etc/criu/mine.conf", "", "/tmp/x/views/abc.criu.conf" };
    for (size_t i = 0; i < 3; i++)
      {
        frc_spec_set_annotation(&s, FRC_CRIU_ANNOTATION, theirs[i]);
        ck_assert(frc_criu_annotation_foreign(&s, &cfg));
        frc_criu_unannotate(&s, &cfg);
        ck_assert_str_eq(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, NULL), theirs[i]);
      }
    /* below a subdirectory of views: not a name flox-runc gives */
    cleanup_free char *deep = xasprintf("%s/views/x/abc.criu.conf", dir);
    frc_spec_set_annotation(&s, FRC_CRIU_ANNOTATION, deep);
    ck_assert(frc_criu_annotation_foreign(&s, &cfg));
  }
}
END_TEST

/* A Flox container's spec: a pod's org.criu.config is removed, with one
 * warning line in the log naming its value (escaped) and the key that keeps
 * it; flox-runc's own value and other annotations stay; with
 * allow_criu_config_annotation the pod's stays, with a debug line. */
START_TEST(test_screen)
{
  cleanup_free char *bundle = xasprintf("%s/bundle", dir);
  cleanup_free char *conf = xasprintf("%s/config.json", bundle);
  cleanup_free char *logfile = xasprintf("%s/log", dir);
  cleanup_free char *own = xasprintf("%s/views/abc.criu.conf", dir);
  struct frc_logger log = { .path = logfile, .json = false, .debug = true, .stderr_fd = -1 };
  struct frc_spec s cleanup_spec = { 0 };
  frc_error_t err = NULL;
  bool present = true;

  ck_assert_int_eq(mkdir(bundle, 0755), 0);
  write_text(conf, "{\"root\":{\"path\":\"rootfs\"},\"annotations\":{\"a\":\"b\","
                   "\"org.criu.config\":\"/etc/criu/pod.conf\\naction-script /x\"}}");
  ck_assert_int_eq(frc_spec_load(&s, bundle, &err), 0);
  ck_assert(frc_criu_screen(&s, &cfg, &log));
  ck_assert_ptr_null(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, &present));
  ck_assert(!present);
  ck_assert_str_eq(frc_spec_annotation(&s, "a", NULL), "b");
  {
    cleanup_free char *text = NULL;
    ck_assert_int_eq(read_file_bounded(logfile, 1 << 16, &text, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(text, "level=warning"));
    ck_assert_ptr_nonnull(strstr(text, "removed the spec's org.criu.config `/etc/criu/pod.conf"));
    ck_assert_ptr_nonnull(strstr(text, "set allow_criu_config_annotation to true in the node config"));
    ck_assert_ptr_null(strstr(text, "\naction-script")); /* one line: the newline escaped */
    ck_assert_int_eq(strchr(text, '\n') - text + 1, (long) strlen(text));
  }
  /* nothing to remove: none, flox-runc's own, an empty one is a pod's */
  ck_assert(!frc_criu_screen(&s, &cfg, &log));
  frc_spec_set_annotation(&s, FRC_CRIU_ANNOTATION, own);
  ck_assert(!frc_criu_screen(&s, &cfg, &log));
  ck_assert_str_eq(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, NULL), own);
  frc_spec_set_annotation(&s, FRC_CRIU_ANNOTATION, "");
  ck_assert(frc_criu_screen(&s, &cfg, NULL));
  ck_assert_ptr_null(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, NULL));
  /* allowed by the node config: kept */
  ck_assert_int_eq(unlink(logfile), 0);
  cfg.allow_criu_config_annotation = true;
  frc_spec_set_annotation(&s, FRC_CRIU_ANNOTATION, "/etc/criu/pod.conf");
  ck_assert(!frc_criu_screen(&s, &cfg, &log));
  ck_assert_str_eq(frc_spec_annotation(&s, FRC_CRIU_ANNOTATION, NULL), "/etc/criu/pod.conf");
  {
    cleanup_free char *text = NULL;
    ck_assert_int_eq(read_file_bounded(logfile, 1 << 16, &text, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(text, "level=debug"));
    ck_assert_ptr_nonnull(strstr(text, "kept the spec's org.criu.config `/etc/criu/pod.conf` "
                                       "(allow_criu_config_annotation)"));
  }
}
END_TEST

START_TEST(test_write_config)
{
  static const char *const binds[] = { "0123456789abcdfghijklmnpqrsvwxyz-busybox-1.35.0",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12.1", NULL };
  static const char link_name[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-linked";
  cleanup_free char *store = xasprintf("%s/views/k1/store", dir);
  cleanup_free char *conf = xasprintf("%s/views/k1.criu.conf", dir);
  cleanup_free char *text = NULL;
  frc_error_t err = NULL;
  struct stat st;

  ck_assert_int_eq(frc_mkdir_p(store, 0755, &err), 0);
  for (const char *const *b = binds; *b; b++)
    {
      cleanup_free char *p = xasprintf("%s/%s", store, *b);
      ck_assert_int_eq(mkdir(p, 0555), 0);
    }
  {
    cleanup_free char *p = xasprintf("%s/%s", store, link_name);
    ck_assert_int_eq(symlink("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12.1", p), 0);
  }
  /* the node's runc.conf first (it lacks its last newline), the first of
   * the candidates that exists (crun.conf missing here) */
  {
    cleanup_free char *node = xasprintf("%s/runc.conf", dir);
    cleanup_free char *crun = xasprintf("%s/crun.conf", dir);
    const char *const confs[] = { crun, node, NULL };
    write_text(node, "tcp-established\nlog-level 4");
    ck_assert_int_eq(frc_criu_write_config(&cfg, "k1", confs, &err), 0);
  }
  ck_assert_int_eq(stat(conf, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0600);
  ck_assert_int_eq(read_file_bounded(conf, 1 << 20, &text, NULL, &err), 0);
  for (const char *const *b = binds; *b; b++)
    {
      cleanup_free char *line = xasprintf("\next-mount-map /nix/store/%s:/nix/store/%s\n", *b, *b);
      ck_assert_msg(strstr(text, line) != NULL, "%s lacks %s", text, line);
    }
  ck_assert_ptr_null(strstr(text, link_name));
  ck_assert_ptr_nonnull(strstr(text, "\ntcp-established\nlog-level 4\next-mount-map /nix/store/"));
  /* the hook's other binds: the tree, FLOX_ENV_CACHE, the CA bundle */
  ck_assert_ptr_nonnull(strstr(text, "\next-mount-map /nix/var/flox-runc/envs/k1:/nix/var/flox-runc/envs/k1\n"));
  ck_assert_ptr_nonnull(strstr(text, "\next-mount-map /run/flox/env-cache:/run/flox/env-cache\n"));
  ck_assert_ptr_nonnull(strstr(text, "\next-mount-map /run/flox/ca-bundle.crt:/run/flox/ca-bundle.crt\n"));
  /* a node without one */
  {
    cleanup_free char *none = xasprintf("%s/none.conf", dir);
    const char *const confs[] = { none, NULL };
    cleanup_free char *plain = NULL;
    ck_assert_int_eq(frc_criu_write_config(&cfg, "k1", confs, &err), 0);
    ck_assert_int_eq(read_file_bounded(conf, 1 << 20, &plain, NULL, &err), 0);
    ck_assert_ptr_null(strstr(plain, "tcp-established"));
  }
  /* the first that exists wins: crun.conf before runc.conf */
  {
    cleanup_free char *node = xasprintf("%s/runc.conf", dir);
    cleanup_free char *crun = xasprintf("%s/crun.conf", dir);
    const char *const confs[] = { crun, node, NULL };
    cleanup_free char *both = NULL;
    write_text(crun, "log-level 2\n");
    ck_assert_int_eq(frc_criu_write_config(&cfg, "k1", confs, &err), 0);
    ck_assert_int_eq(read_file_bounded(conf, 1 << 20, &both, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(both, "\nlog-level 2\next-mount-map "));
    ck_assert_ptr_null(strstr(both, "tcp-established"));
  }
  /* not a regular file (a FIFO is never waited on, a directory), or larger
   * than 64 KiB: an error naming it, and the file written before stays */
  {
    cleanup_free char *fifo = xasprintf("%s/fifo.conf", dir);
    cleanup_free char *sub = xasprintf("%s/dir.conf", dir);
    cleanup_free char *big = xasprintf("%s/big.conf", dir);
    const char *const *cases[3];
    const char *const c1[] = { fifo, NULL }, *const c2[] = { sub, NULL }, *const c3[] = { big, NULL };
    const char *want[] = { "is not a regular file", "is not a regular file", "larger than the limit" };
    FILE *f;
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 70 * 1024; i++)
      fputc('#', f);
    ck_assert_int_eq(fclose(f), 0);
    cases[0] = c1;
    cases[1] = c2;
    cases[2] = c3;
    for (int i = 0; i < 3; i++)
      {
        ck_assert_int_eq(frc_criu_write_config(&cfg, "k1", cases[i], &err), -1);
        ck_assert_msg(strstr(err->msg, want[i]) != NULL && strstr(err->msg, cases[i][0]) != NULL,
                      "%s", err->msg);
        frc_error_release(&err);
      }
    ck_assert_int_eq(stat(conf, &st), 0);
  }
  /* a name that is no store path fails, naming it */
  {
    cleanup_free char *p = xasprintf("%s/not a store path", store);
    ck_assert_int_eq(mkdir(p, 0555), 0);
    ck_assert_int_eq(frc_criu_write_config(&cfg, "k1", NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err->msg, "`not a store path`"));
    frc_error_release(&err);
  }
  /* no view: names the cause */
  ck_assert_int_eq(frc_criu_write_config(&cfg, "k2", NULL, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "recreate the container"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_runtimes)
{
  char name[64];
  ck_assert(frc_criu_runtime_reads_config("runc version 1.1.5+ds1", name, sizeof(name)));
  ck_assert_str_eq(name, "runc version 1.1.5+ds1");
  ck_assert(!frc_criu_runtime_reads_config("crun version 1.8.1\ncommit: f8a0", name, sizeof(name)));
  ck_assert_str_eq(name, "crun version 1.8.1");
  ck_assert(!frc_criu_runtime_reads_config("crun version 1.25.1", name, sizeof(name)));
  ck_assert(frc_criu_runtime_reads_config("crun version 1.26", name, sizeof(name)));
  ck_assert(frc_criu_runtime_reads_config("crun version 2.0", name, sizeof(name)));
  ck_assert(frc_criu_runtime_reads_config(NULL, name, sizeof(name)));
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("criu");
  TCase *tc = tcase_create("criu");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_image_roundtrip);
  tcase_add_test(tc, test_image_mismatch);
  tcase_add_test(tc, test_image_hostile);
  tcase_add_test(tc, test_annotation);
  tcase_add_test(tc, test_screen);
  tcase_add_test(tc, test_write_config);
  tcase_add_test(tc, test_runtimes);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
