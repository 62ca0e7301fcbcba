/* Engine configurations as the engines read them (lib/engineconf.c): the
 * TOML reader, containerd's file set (imports) and merge semantics, CRI-O's
 * drop-ins, and the judging of each layout a node may have: a single
 * config.toml, an imports drop-in, config version 3, version 1, a drop-in
 * that containerd 1.x lets replace the CRI section, CRI-O drop-ins. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engineconf.h"
#include "util.h"

#define SELF "/usr/local/bin/flox-runc"

static char *root;
static char findings[16384];

static void
setup(void)
{
  frc_error_t err = NULL;
  root = xstrdup("/tmp/frc-test-engineconf-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(root));
  findings[0] = '\0';
  (void) err;
}

static void
teardown(void)
{
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_rm_rf(root, &err), 0);
  free(root);
}

static void
put(const char *path, const char *text)
{
  cleanup_free char *full = xasprintf("%s%s", root, path);
  cleanup_free char *dir = xstrdup(full);
  frc_error_t err = NULL;
  *strrchr(dir, '/') = '\0';
  ck_assert_int_eq(frc_mkdir_p(dir, 0755, &err), 0);
  ck_assert_int_eq(write_file_atomic(full, text, strlen(text), 0644, &err), 0);
}

static bool
is_self(const char *path, void *data)
{
  (void) data;
  return strcmp(path, SELF) == 0;
}

static void
collect(enum frc_finding kind, const char *text, void *data)
{
  (void) data;
  snprintf(findings + strlen(findings), sizeof(findings) - strlen(findings), "%s %s\n",
           kind == FRC_FINDING_OK ? "ok" : kind == FRC_FINDING_PROBLEM ? "PROBLEM" : "note", text);
}

/* Loads /etc/containerd/config.toml under root and judges it. */
static int
judge(int major)
{
  struct frc_containerd_conf c;
  struct frc_engine_check chk = { .is_self = is_self, .report = collect, .containerd_major = major };
  frc_error_t err = NULL;
  int problems;
  if (frc_containerd_load(root, "/etc/containerd/config.toml", &c, &err) < 0)
    ck_abort_msg("load: %s", err->msg);
  problems = frc_check_containerd(&c, &chk);
  frc_containerd_release(&c);
  return problems;
}

#define V2 "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.flox]\n"
#define V2OPT "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.flox.options]\n"
#define V3 "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.flox]\n"
#define V3OPT "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.flox.options]\n"
#define BODY                                                                                       \
  "  runtime_type = \"io.containerd.runc.v2\"\n"                                                   \
  "  pod_annotations = [\"flox.dev/*\"]\n"
#define BIN "  BinaryName = \"" SELF "\"\n"

#define assert_finding(s) ck_assert_msg(strstr(findings, s) != NULL, "no [%s] in:\n%s", s, findings)

START_TEST(test_toml_reader)
{
  struct frc_toml t;
  frc_error_t err = NULL;
  const struct frc_toml_kv *kv;
  char **a;
  const char *text = "[plugins.\"io.containerd.grpc.v1.cri\"] # a table first\n"
                     "  sandbox_image = \"p:1\" # comment\n"
                     "  list = [\n"
                     "    \"a\",  # one\n"
                     "    'b#c',\n"
                     "    \"c]#d\", # a bracket and a hash in a string\n"
                     "  ]\n"
                     "  esc = \"a\\\"#b\" # an escaped quote\n"
                     "[ a . 'b.c' ]\n"
                     "k.l = true\n";
  ck_assert_int_eq(frc_toml_parse(text, "f", &t, &err), 0);
  ck_assert_int_eq(t.first_table_line, 1);
  kv = frc_toml_find(&t, "plugins.io.containerd.grpc.v1.cri", "sandbox_image");
  ck_assert_ptr_nonnull(kv);
  ck_assert_str_eq(kv->value, "\"p:1\"");
  ck_assert_int_eq(kv->line, 2);
  kv = frc_toml_find(&t, "plugins.io.containerd.grpc.v1.cri", "list");
  ck_assert_int_eq(kv->line, 3);
  ck_assert_int_eq(kv->end_line, 7);
  a = frc_toml_string_array(kv->value);
  ck_assert_ptr_nonnull(a);
  ck_assert_str_eq(a[0], "a");
  ck_assert_str_eq(a[1], "b#c");
  ck_assert_str_eq(a[2], "c]#d");
  ck_assert_ptr_null(a[3]);
  frc_strv_freep(&a);
  kv = frc_toml_find(&t, "plugins.io.containerd.grpc.v1.cri", "esc");
  ck_assert_ptr_nonnull(kv);
  ck_assert_str_eq(kv->value, "\"a\\\"#b\"");
  ck_assert_ptr_nonnull(frc_toml_find(&t, "a.b.c", "k.l"));
  frc_toml_release(&t);
  ck_assert_int_eq(frc_toml_parse("[a\n", "f", &t, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "f:1: a table header without ']'"));
  frc_error_release(&err);
  ck_assert_int_eq(frc_toml_parse("x = [\n\"a\",\n", "f", &t, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "f:1: an array without its closing ']'"));
  frc_error_release(&err);
  frc_toml_release(&t);
}
END_TEST

START_TEST(test_single_file)
{
  put("/etc/containerd/config.toml", "version = 2\n" V2 BODY V2OPT BIN);
  ck_assert_int_eq(judge(0), 0);
  assert_finding("ok containerd (/etc/containerd/config.toml): runtime \"flox\" runs flox-runc");
  assert_finding("passes flox.dev/* pod annotations");
}
END_TEST

START_TEST(test_imports_dropin)
{
  struct frc_containerd_conf c;
  frc_error_t err = NULL;
  put("/etc/containerd/config.toml",
      "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\", \"conf.d/50-flox.toml\"]\n");
  put("/etc/containerd/conf.d/10-mirrors.toml", "version = 2\n");
  put("/etc/containerd/conf.d/50-flox.toml", "version = 2\n" V2 BODY V2OPT BIN);
  put("/etc/containerd/conf.d/README", "not a toml file\n");
  ck_assert_int_eq(frc_containerd_load(root, "/etc/containerd/config.toml", &c, &err), 0);
  ck_assert_int_eq(c.n, 3); /* each file once, in containerd's order */
  ck_assert_str_eq(c.files[1].path, "/etc/containerd/conf.d/10-mirrors.toml");
  ck_assert_str_eq(c.files[2].path, "/etc/containerd/conf.d/50-flox.toml");
  frc_containerd_release(&c);
  ck_assert_int_eq(judge(1), 0);
  assert_finding("ok containerd (/etc/containerd/conf.d/50-flox.toml): runtime \"flox\" runs flox-runc");

  /* the same drop-in, not imported: not registered */
  put("/etc/containerd/config.toml", "version = 2\n");
  findings[0] = '\0';
  ck_assert_int_eq(judge(1), 1);
  assert_finding("PROBLEM containerd (/etc/containerd/config.toml): no runtime has BinaryName");

  /* an explicit import that does not exist stops containerd */
  put("/etc/containerd/config.toml", "version = 2\nimports = [\"/etc/containerd/nope.toml\"]\n");
  ck_assert_int_eq(frc_containerd_load(root, "/etc/containerd/config.toml", &c, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "imports /etc/containerd/nope.toml, which does not exist"));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_version3)
{
  put("/etc/containerd/config.toml",
      "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n"
      "[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = \"runc\"\n");
  put("/etc/containerd/conf.d/flox.toml", "version = 3\n" V3 BODY V3OPT BIN);
  /* containerd 2 merges keys: the root's section stays, the runtime is added */
  ck_assert_int_eq(judge(2), 0);
  assert_finding("ok containerd (/etc/containerd/conf.d/flox.toml): runtime \"flox\" runs flox-runc");
  /* version 2 tables in a version 3 setup are migrated by containerd 2 */
  put("/etc/containerd/conf.d/flox.toml", "version = 2\n" V2 BODY V2OPT BIN);
  findings[0] = '\0';
  ck_assert_int_eq(judge(2), 0);
  /* containerd 1.x does not read version 3 */
  findings[0] = '\0';
  ck_assert_int_ge(judge(1), 1);
  assert_finding("config version 3, which containerd 1.x does not read");
  /* a version 3 table in a version 2 config is ignored */
  put("/etc/containerd/config.toml", "version = 2\n" V3 BODY V3OPT BIN);
  findings[0] = '\0';
  ck_assert_int_eq(judge(0), 2);
  assert_finding("is registered under plugins.\"io.containerd.cri.v1.runtime\", which a config of "
                 "version 2 does not read");
}
END_TEST

START_TEST(test_version1)
{
  /* no `version`: version 1, whose CRI plugin is "cri" */
  put("/etc/containerd/config.toml",
      "[plugins.cri.containerd.runtimes.flox]\n" BODY "[plugins.cri.containerd.runtimes.flox.options]\n" BIN);
  ck_assert_int_eq(judge(1), 0);
  assert_finding("runtime \"flox\" runs flox-runc");
  put("/etc/containerd/config.toml", V2 BODY V2OPT BIN);
  findings[0] = '\0';
  ck_assert_int_eq(judge(1), 2);
  assert_finding("which a config of version 1 does not read");
}
END_TEST

START_TEST(test_section_replaced)
{
  /* containerd 1.x: the drop-in's CRI section replaces config.toml's whole
   * one, runtime included */
  put("/etc/containerd/config.toml",
      "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n"
      "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"p:1\"\n" V2 BODY V2OPT BIN);
  put("/etc/containerd/conf.d/registry.toml",
      "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/c\"\n");
  ck_assert_int_eq(judge(1), 2);
  assert_finding("PROBLEM containerd (/etc/containerd/config.toml): its [plugins.\"io.containerd.grpc.v1.cri\"] "
                 "settings are ignored: /etc/containerd/conf.d/registry.toml replaces that whole section");
  assert_finding("no runtime has BinaryName");
  /* containerd 2 merges the same files */
  findings[0] = '\0';
  ck_assert_int_eq(judge(2), 0);
  assert_finding("ok containerd (/etc/containerd/config.toml): runtime \"flox\" runs flox-runc");
  /* version unknown: said as a note */
  findings[0] = '\0';
  ck_assert_int_eq(judge(0), 1);
  assert_finding("note containerd (/etc/containerd/config.toml): its [plugins.\"io.containerd.grpc.v1.cri\"] "
                 "settings are ignored by containerd 1.x");
}
END_TEST

START_TEST(test_wrong_settings)
{
  put("/etc/containerd/config.toml", "version = 2\n" V2 "  runtime_type = \"io.containerd.runc.v1\"\n" V2OPT BIN);
  ck_assert_int_eq(judge(1), 2);
  assert_finding("has runtime_type io.containerd.runc.v1");
  assert_finding("does not pass pod annotations");
}
END_TEST

START_TEST(test_dump)
{
  struct frc_engine_check chk = { .is_self = is_self, .report = collect };
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_check_containerd_dump("version = 3\n" V3 BODY V3OPT BIN, "dump", &chk, &err), 0);
  assert_finding("ok containerd (dump): runtime \"flox\" runs flox-runc");
  ck_assert_int_eq(frc_check_containerd_dump("version = 2\n", "dump", &chk, &err), 1);
}
END_TEST

static int
judge_crio(void)
{
  struct frc_engine_check chk = { .is_self = is_self, .report = collect };
  cleanup_strv char **files = frc_crio_files(root);
  frc_error_t err = NULL;
  int r = frc_check_crio(root, (const char *const *) files, &chk, &err);
  ck_assert_msg(r >= 0, "%s", err ? err->msg : "");
  return r;
}

START_TEST(test_crio_dropins)
{
  cleanup_strv char **files = NULL;
  put("/etc/crio/crio.conf", "[crio.runtime]\ndefault_runtime = \"runc\"\n");
  put("/etc/crio/crio.conf.d/50-flox.conf",
      "[crio.runtime.runtimes.flox]\nruntime_path = \"" SELF "\"\nruntime_type = \"oci\"\n");
  put("/etc/crio/crio.conf.d/10-other.conf", "[crio.runtime.runtimes.crun]\nruntime_path = \"/usr/bin/crun\"\n");
  put("/etc/crio/crio.conf.d/notes.txt", "x");
  files = frc_crio_files(root);
  ck_assert_str_eq(files[0], "/etc/crio/crio.conf");
  ck_assert_str_eq(files[1], "/etc/crio/crio.conf.d/10-other.conf");
  ck_assert_str_eq(files[2], "/etc/crio/crio.conf.d/50-flox.conf");
  ck_assert_ptr_null(files[3]);
  ck_assert_int_eq(judge_crio(), 0);
  assert_finding("ok CRI-O (/etc/crio/crio.conf.d/50-flox.conf): runtime \"flox\" runs flox-runc");
  /* a later drop-in that points the runtime elsewhere wins */
  put("/etc/crio/crio.conf.d/99-override.conf",
      "[crio.runtime.runtimes.flox]\nruntime_path = \"/usr/bin/runc\"\n");
  findings[0] = '\0';
  ck_assert_int_eq(judge_crio(), 1);
  assert_finding("PROBLEM CRI-O: no [crio.runtime.runtimes.<name>] has runtime_path pointing at this flox-runc");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("engineconf");
  TCase *tc = tcase_create("engineconf");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_toml_reader);
  tcase_add_test(tc, test_single_file);
  tcase_add_test(tc, test_imports_dropin);
  tcase_add_test(tc, test_version3);
  tcase_add_test(tc, test_version1);
  tcase_add_test(tc, test_section_replaced);
  tcase_add_test(tc, test_wrong_settings);
  tcase_add_test(tc, test_dump);
  tcase_add_test(tc, test_crio_dropins);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
