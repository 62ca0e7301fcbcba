/* Table-driven tests of runc's command-line grammar (lib/argv.c). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <check.h>
#include <string.h>

#include "argv.h"

struct argv_case
{
  const char *args[16]; /* argv[1..], NULL-terminated */
  enum frc_verb verb;
  const char *verb_name;
  const char *id;
  const char *bundle;
  const char *root;
  const char *log;
  const char *log_format;
  const char *process;
  bool force, detach, systemd, debug;
  bool fails;
  bool unknown_global;
  int cmd_offset; /* exec: argv index of the command, 0 = none */
};

static const struct argv_case cases[] = {
  /* containerd's runc v2 shim */
  { { "--root", "/run/containerd/runc/k8s.io", "--log", "/b/log.json", "--log-format", "json",
      "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "abc", NULL },
    FRC_VERB_CREATE, "create", "abc", "/b", "/run/containerd/runc/k8s.io", "/b/log.json", "json" },
  { { "--root", "/r", "--log", "/b/log.json", "--log-format", "json", "--systemd-cgroup", "create",
      "--bundle", "/b", "abc", NULL },
    FRC_VERB_CREATE, "create", "abc", "/b", "/r", "/b/log.json", "json", .systemd = true },
  /* conmon: --root=DIR, no --log */
  { { "--systemd-cgroup", "--root=/run/crio", "create", "--bundle", "/b", "--pid-file", "/p", "id1",
      NULL },
    FRC_VERB_CREATE, "create", "id1", "/b", "/run/crio", NULL, NULL, .systemd = true },
  /* a container id that is itself "create", and a root that reads "run" */
  { { "--root", "run", "delete", "create", NULL }, FRC_VERB_DELETE, "delete", "create", NULL, "run" },
  { { "--log", "create", "--log-format", "exec", "start", "create", NULL }, FRC_VERB_PASSTHROUGH,
    "start", NULL, NULL, NULL, "create", "exec" },
  { { "create", "create", NULL }, FRC_VERB_CREATE, "create", "create" },
  { { "create", "--bundle", "create", "exec", NULL }, FRC_VERB_CREATE, "create", "exec", "create" },
  /* single-dash long forms (go-runc), -f=v, short letters */
  { { "-root", "/r", "-log=/l", "-log-format=text", "create", "-bundle", "/b", "x", NULL },
    FRC_VERB_CREATE, "create", "x", "/b", "/r", "/l", "text" },
  { { "--root=/r", "create", "-b", "/b", "x", NULL }, FRC_VERB_CREATE, "create", "x", "/b", "/r" },
  { { "create", "-b=/b", "x", NULL }, FRC_VERB_CREATE, "create", "x", "/b" },
  { { "create", "-b/b", "x", NULL }, FRC_VERB_CREATE, "create", "x", "/b" },
  { { "create", "--bundle=/b", "x", NULL }, FRC_VERB_CREATE, "create", "x", "/b" },
  /* flags after the id (urfave/cli and argp reorder) */
  { { "create", "x", "--bundle", "/b", NULL }, FRC_VERB_CREATE, "create", "x", "/b" },
  { { "delete", "x", "--force", NULL }, FRC_VERB_DELETE, "delete", "x", .force = true },
  { { "delete", "-f", "x", NULL }, FRC_VERB_DELETE, "delete", "x", .force = true },
  { { "delete", "--force=false", "x", NULL }, FRC_VERB_DELETE, "delete", "x", .force = false },
  /* CRI-O's and podman's checkpoint and restore */
  { { "--root", "/r", "checkpoint", "--image-path", "/i", "--work-path", "/w", "--leave-running",
      "x", NULL },
    FRC_VERB_CHECKPOINT, "checkpoint", "x", NULL, "/r" },
  { { "--root", "/r", "restore", "--image-path", "/i", "--work-path", "/w", "--bundle", "/b",
      "--detach", "--pid-file", "/p", "--tcp-established", "--file-locks", "x", NULL },
    FRC_VERB_RESTORE, "restore", "x", "/b", "/r", .detach = true },
  { { "restore", "-b", "/b", "--lsm-profile", "p", "--manage-cgroups-mode=soft", "x", NULL },
    FRC_VERB_RESTORE, "restore", "x", "/b" },
  /* VERB --help is the runtime's (podman asks `checkpoint --help`): test_verb_help */
  { { "restore", "--help", NULL }, FRC_VERB_RESTORE, "restore" },
  { { "checkpoint", "-h", NULL }, FRC_VERB_CHECKPOINT, "checkpoint" },
  { { "create", "x", "--help", NULL }, FRC_VERB_CREATE, "create", "x" },
  { { "exec", "x", "sh", "--help", NULL }, FRC_VERB_EXEC, "exec", "x", .cmd_offset = 3 },
  /* bundle defaults to the cwd: NULL */
  { { "create", "x", NULL }, FRC_VERB_CREATE, "create", "x", NULL },
  { { "run", "-d", "--keep", "--no-subreaper", "x", NULL }, FRC_VERB_RUN, "run", "x", .detach = true },
  { { "-debug", "run", "--detach", "x", NULL }, FRC_VERB_RUN, "run", "x", .detach = true,
    .debug = true },
  { { "--debug=false", "run", "x", NULL }, FRC_VERB_RUN, "run", "x" },
  /* exec: the shim's form, and an inline command whose words look like flags */
  { { "--root", "/r", "exec", "--process", "/tmp/runc-process1", "--detach", "--pid-file", "/b/e.pid",
      "abc", NULL },
    FRC_VERB_EXEC, "exec", "abc", .root = "/r", .process = "/tmp/runc-process1", .detach = true },
  { { "exec", "-t", "abc", "sh", "-c", "--bundle", NULL }, FRC_VERB_EXEC, "exec", "abc",
    .cmd_offset = 4 },
  { { "exec", "-p", "/p.json", "abc", NULL }, FRC_VERB_EXEC, "exec", "abc", .process = "/p.json" },
  { { "exec", "--env", "A=create", "-u", "0:0", "--cap", "CAP_KILL", "abc", "ls", NULL },
    FRC_VERB_EXEC, "exec", "abc", .cmd_offset = 9 },
  /* passthrough verbs are not parsed beyond the verb */
  { { "--root", "/r", "state", "x", NULL }, FRC_VERB_PASSTHROUGH, "state", .root = "/r" },
  { { "update", "--resources", "-", "x", NULL }, FRC_VERB_PASSTHROUGH, "update" },
  { { "features", NULL }, FRC_VERB_PASSTHROUGH, "features" },
  { { "kill", "--all", "x", "9", NULL }, FRC_VERB_PASSTHROUGH, "kill" },
  /* crun's globals */
  { { "--cgroup-manager", "systemd", "--log-level", "debug", "create", "x", NULL }, FRC_VERB_CREATE,
    "create", "x" },
  { { "--rootless", "auto", "--criu", "/usr/sbin/criu", "run", "x", NULL }, FRC_VERB_RUN, "run", "x" },
  /* flox-runc's own verbs */
  { { "resolve", "acme/hello", NULL }, FRC_VERB_RESOLVE, "resolve" },
  { { "config", NULL }, FRC_VERB_CONFIG, "config" },
  /* no verb */
  { { "--version", NULL }, FRC_VERB_NONE, NULL },
  { { NULL }, FRC_VERB_NONE, NULL },
  { { "--help", NULL }, FRC_VERB_NONE, NULL },
  /* an unknown global flag: hand the call over untouched */
  { { "--frobnicate", "create", "x", NULL }, FRC_VERB_PASSTHROUGH, NULL, .unknown_global = true },
  { { "--root", NULL }, FRC_VERB_PASSTHROUGH, NULL, .unknown_global = true },
  /* malformed handled verbs */
  { { "create", NULL }, FRC_VERB_CREATE, "create", .fails = true },
  { { "create", "--bundle", NULL }, FRC_VERB_CREATE, "create", .fails = true },
  { { "create", "--frobnicate", "x", NULL }, FRC_VERB_CREATE, "create", .fails = true },
  { { "create", "x", "y", NULL }, FRC_VERB_CREATE, "create", .fails = true },
  { { "delete", NULL }, FRC_VERB_DELETE, "delete", .fails = true },
  /* "--" ends flags: an id starting with a dash */
  { { "create", "--bundle", "/b", "--", "-x", NULL }, FRC_VERB_CREATE, "create", "-x", "/b" },
};

static void
check_str(const char *what, int i, const char *want, const char *got)
{
  if (want == NULL)
    ck_assert_msg(got == NULL, "case %d: %s: want NULL, got \"%s\"", i, what, got);
  else
    ck_assert_msg(got && strcmp(want, got) == 0, "case %d: %s: want \"%s\", got \"%s\"", i, what,
                  want, got ? got : "(null)");
}

START_TEST(test_table)
{
  const struct argv_case *c = &cases[_i];
  char *argv[18] = { (char *) "flox-runc" };
  int argc = 1;
  struct frc_cmdline cl;
  frc_error_t err = NULL;
  int r;

  for (; c->args[argc - 1]; argc++)
    argv[argc] = (char *) c->args[argc - 1];
  r = frc_cmdline_parse(argc, argv, &cl, &err);
  if (c->fails)
    {
      ck_assert_msg(r < 0, "case %d: expected a parse failure", _i);
      ck_assert_ptr_nonnull(err);
      ck_assert_ptr_nonnull(err->msg);
      frc_error_release(&err);
      return;
    }
  ck_assert_msg(r == 0, "case %d: unexpected failure: %s", _i, err ? err->msg : "");
  ck_assert_msg(cl.verb == c->verb, "case %d: verb %d, want %d", _i, cl.verb, c->verb);
  check_str("verb name", _i, c->verb_name, cl.verb_name);
  check_str("id", _i, c->id, cl.id);
  check_str("bundle", _i, c->bundle, cl.bundle);
  check_str("root", _i, c->root, cl.g.root);
  check_str("log", _i, c->log, cl.g.log);
  check_str("log-format", _i, c->log_format, cl.g.log_format);
  check_str("process", _i, c->process, cl.process);
  ck_assert_msg(cl.force == c->force, "case %d: force", _i);
  ck_assert_msg(cl.detach == c->detach, "case %d: detach", _i);
  ck_assert_msg(cl.g.systemd_cgroup == c->systemd, "case %d: systemd-cgroup", _i);
  ck_assert_msg(cl.g.debug == c->debug, "case %d: debug", _i);
  ck_assert_msg((cl.g.unknown_flag != NULL) == c->unknown_global, "case %d: unknown flag", _i);
  if (c->verb == FRC_VERB_EXEC)
    ck_assert_msg(cl.cmd_index == (c->cmd_offset ? c->cmd_offset : -1), "case %d: cmd_index %d", _i,
                  cl.cmd_index);
  /* argv itself is never changed */
  for (int k = 1; k < argc; k++)
    ck_assert_ptr_eq(argv[k], c->args[k - 1]);
}
END_TEST

START_TEST(test_version_flag)
{
  char *argv[] = { (char *) "x", (char *) "-v", NULL };
  struct frc_cmdline cl;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_cmdline_parse(2, argv, &cl, &err), 0);
  ck_assert(cl.g.version);
  ck_assert_int_eq(cl.verb, FRC_VERB_NONE);
}
END_TEST

/* `VERB --help` of a handled verb parses (no error) and is marked for the
 * runtime; an exec command's own --help is not. */
START_TEST(test_verb_help)
{
  char *a[] = { "flox-runc", "restore", "--help", NULL };
  char *b[] = { "flox-runc", "create", "-h", NULL };
  char *c[] = { "flox-runc", "exec", "x", "sh", "--help", NULL };
  char *d[] = { "flox-runc", "restore", "--image-path", "/i", "x", NULL };
  struct frc_cmdline cl;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_cmdline_parse(3, a, &cl, &err), 0);
  ck_assert(cl.verb_help);
  ck_assert_int_eq(frc_cmdline_parse(3, b, &cl, &err), 0);
  ck_assert(cl.verb_help);
  ck_assert_int_eq(frc_cmdline_parse(5, c, &cl, &err), 0);
  ck_assert(!cl.verb_help);
  ck_assert_int_eq(frc_cmdline_parse(5, d, &cl, &err), 0);
  ck_assert(!cl.verb_help);
  ck_assert_str_eq(cl.image_path, "/i");
}
END_TEST

START_TEST(test_verb_names)
{
  ck_assert_int_eq(frc_verb_from_name("create"), FRC_VERB_CREATE);
  ck_assert_int_eq(frc_verb_from_name("exec"), FRC_VERB_EXEC);
  ck_assert_int_eq(frc_verb_from_name("checkpoint"), FRC_VERB_CHECKPOINT);
  ck_assert_int_eq(frc_verb_from_name("restore"), FRC_VERB_RESTORE);
  ck_assert_int_eq(frc_verb_from_name("pause"), FRC_VERB_PASSTHROUGH);
  ck_assert_int_eq(frc_verb_from_name("Create"), FRC_VERB_PASSTHROUGH);
}
END_TEST

/* Found by tests/fuzz/fuzz_argv.c: an argument with a control character
 * reached the error message raw (a log line split by a newline). */
START_TEST(test_error_escapes_arguments)
{
  char *argv[] = { (char *) "flox-runc", (char *) "run", (char *) "a",
                   (char *) "b\n\x01" "c", NULL };
  struct frc_cmdline c;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_cmdline_parse(4, argv, &c, &err), -1);
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  ck_assert_ptr_null(strchr(err->msg, '\x01'));
  ck_assert_ptr_nonnull(strstr(err->msg, "b\\n\\x01c"));
  frc_error_release(&err);
  argv[3] = (char *) "--bad\tflag";
  ck_assert_int_eq(frc_cmdline_parse(4, argv, &c, &err), -1);
  ck_assert_ptr_null(strchr(err->msg, '\t'));
  frc_error_release(&err);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("argv");
  TCase *tc = tcase_create("grammar");
  SRunner *sr;
  int failed;

  tcase_add_loop_test(tc, test_table, 0, (int) (sizeof(cases) / sizeof(cases[0])));
  tcase_add_test(tc, test_version_flag);
  tcase_add_test(tc, test_verb_names);
  tcase_add_test(tc, test_verb_help);
  tcase_add_test(tc, test_error_escapes_arguments);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
