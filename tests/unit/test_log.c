/* Messages where engines show them (lib/log.c). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util.h"

START_TEST(test_json_line)
{
  /* 2026-11-22T18:34:05.000000042Z */
  cleanup_free char *line = frc_log_format_line(true, FRC_LOG_ERROR, "flox-runc: bad \"x\"\n\t\x01",
                                                1795372445000000042LL);
  cleanup_json yajl_val v = NULL;
  frc_error_t err = NULL;
  size_t n = strlen(line);

  ck_assert_int_eq(line[n - 1], '\n');
  ck_assert_ptr_null(memchr(line, '\n', n - 1));
  ck_assert_int_eq(frc_json_parse(line, n, &v, &err), 0);
  ck_assert_str_eq(frc_json_get_string(v, "level"), "error");
  ck_assert_str_eq(frc_json_get_string(v, "msg"), "flox-runc: bad \"x\"\n\t\x01");
  ck_assert_str_eq(frc_json_get_string(v, "time"), "2026-11-22T18:34:05.000000042Z");
  ck_assert_uint_eq(v->u.object.len, 3);
}
END_TEST

START_TEST(test_text_line)
{
  cleanup_free char *line = frc_log_format_line(false, FRC_LOG_WARNING, "a \"b\"", 0);
  ck_assert_str_eq(line, "time=\"1970-01-01T00:00:00.000000000Z\" level=warning msg=\"a \\\"b\\\"\"\n");
}
END_TEST

static char *
slurp(const char *path)
{
  char *s = NULL;
  frc_error_t err = NULL;
  if (read_file_bounded(path, 1 << 20, &s, NULL, &err) < 0)
    {
      frc_error_release(&err);
      return xstrdup("");
    }
  return s;
}

START_TEST(test_destinations)
{
  char dir[] = "/tmp/frc-test-log-XXXXXX";
  cleanup_free char *logp = NULL, *errp = NULL, *log = NULL, *errs = NULL;
  struct frc_globals g = { 0 };
  struct frc_logger l;
  int efd;

  ck_assert_ptr_nonnull(mkdtemp(dir));
  logp = xasprintf("%s/log.json", dir);
  errp = xasprintf("%s/stderr", dir);
  efd = open(errp, O_WRONLY | O_CREAT, 0600);
  g.log = logp;
  g.log_format = "json";
  frc_logger_init(&l, &g);
  l.stderr_fd = efd;

  frc_log(&l, FRC_LOG_INFO, "progress %d", 1);
  frc_log(&l, FRC_LOG_DEBUG, "hidden without --debug");
  frc_log(&l, FRC_LOG_ERROR, "flox-runc: it failed\nsecond line");
  close(efd);
  log = slurp(logp);
  errs = slurp(errp);
  ck_assert_ptr_nonnull(strstr(log, "\"level\":\"info\",\"msg\":\"progress 1\""));
  ck_assert_ptr_null(strstr(log, "hidden"));
  ck_assert_ptr_nonnull(strstr(log, "\"level\":\"error\",\"msg\":\"flox-runc: it failed second line\""));
  /* errors only on stderr, one line */
  ck_assert_str_eq(errs, "flox-runc: it failed second line\n");

  /* an unwritable log never changes anything */
  g.log = "/nonexistent-dir/log.json";
  frc_logger_init(&l, &g);
  l.stderr_fd = -1;
  frc_log(&l, FRC_LOG_ERROR, "still fine");
  {
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "/bin/rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
  }
}
END_TEST

START_TEST(test_no_log_file)
{
  char path[] = "/tmp/frc-test-log-stderr-XXXXXX";
  int fd = mkstemp(path);
  struct frc_globals g = { 0 };
  struct frc_logger l;
  cleanup_free char *out = NULL;

  frc_logger_init(&l, &g);
  l.stderr_fd = fd;
  frc_log(&l, FRC_LOG_INFO, "quiet");
  frc_log(&l, FRC_LOG_WARNING, "a warning");
  frc_log(&l, FRC_LOG_ERROR, "an error");
  close(fd);
  out = slurp(path);
  unlink(path);
  ck_assert_str_eq(out, "a warning\nan error\n");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_json_line);
  tcase_add_test(tc, test_text_line);
  tcase_add_test(tc, test_destinations);
  tcase_add_test(tc, test_no_log_file);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
