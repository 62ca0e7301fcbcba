/* The installer's edits of containerd's config.toml (lib/install.c):
 * `imports` merged into an existing list (one line, several lines, trailing
 * comma, empty) or added as a top-level key before the first table (after
 * `version`), never inside a table; nothing when the entry is there. */
#include <check.h>
#include <string.h>

#include "engineconf.h"
#include "install.h"
#include "util.h"

#define E "/etc/containerd/conf.d/*.toml"

static char *
add(const char *text)
{
  struct frc_toml t;
  frc_error_t err = NULL;
  char *out;
  if (frc_toml_parse(text, "config.toml", &t, &err) < 0)
    ck_abort_msg("parse: %s", err->msg);
  out = frc_install_add_import(text, &t, E);
  frc_toml_release(&t);
  return out;
}

/* The result must parse, hold exactly one imports key listing E. */
static void
check_one_imports(const char *text)
{
  struct frc_toml t;
  frc_error_t err = NULL;
  const struct frc_toml_kv *kv;
  char **list;
  bool found = false;
  int n = 0;
  ck_assert_msg(frc_toml_parse(text, "out", &t, &err) == 0, "%s:\n%s", err ? err->msg : "", text);
  for (size_t i = 0; i < t.n; i++)
    n += strcmp(t.kv[i].key, "imports") == 0;
  ck_assert_int_eq(n, 1);
  kv = frc_toml_find(&t, "", "imports");
  ck_assert_ptr_nonnull(kv);
  list = frc_toml_string_array(kv->value);
  for (char **e = list; e && *e; e++)
    found = found || strcmp(*e, E) == 0;
  ck_assert(found);
  frc_strv_freep(&list);
  frc_toml_release(&t);
}

static const struct
{
  const char *in, *out;
} cases[] = {
  /* no imports: after version, before the first table */
  { "version = 3\n[plugins.x]\n  a = 1\n", "version = 3\nimports = [\"" E "\"]\n[plugins.x]\n  a = 1\n" },
  /* a comment after version, blank lines */
  { "# node\nversion = 3 # v3\n\n[grpc]\n", "# node\nversion = 3 # v3\nimports = [\"" E "\"]\n\n[grpc]\n" },
  /* no version, a table on the first line: before it */
  { "[plugins.x]\n  a = 1\n", "imports = [\"" E "\"]\n[plugins.x]\n  a = 1\n" },
  /* only top-level keys, no final newline */
  { "root = \"/r\"", "root = \"/r\"\nimports = [\"" E "\"]\n" },
  /* an existing list on one line */
  { "version = 3\nimports = [\"/a.toml\"]\n[x]\n", "version = 3\nimports = [\"/a.toml\", \"" E "\"]\n[x]\n" },
  /* empty list */
  { "version = 3\nimports = []\n", "version = 3\nimports = [\"" E "\"]\n" },
  /* several lines with a trailing comma and comments */
  { "version = 3\nimports = [\n  \"/a.toml\", # a\n  \"/b/*.toml\",\n] # end\n[x]\n",
    "version = 3\nimports = [\n  \"/a.toml\", # a\n  \"/b/*.toml\",\n  \"" E "\",\n] # end\n[x]\n" },
  /* several lines without a trailing comma */
  { "version = 3\nimports = [\n  '/a.toml'\n]\n", "version = 3\nimports = [\n  '/a.toml', \"" E "\"\n]\n" },
  /* a ']' inside a string */
  { "version = 3\nimports = [\"/odd]name.toml\"]\n", "version = 3\nimports = [\"/odd]name.toml\", \"" E "\"]\n" },
};

START_TEST(test_add_import)
{
  cleanup_free char *out = add(cases[_i].in);
  ck_assert_ptr_nonnull(out);
  ck_assert_str_eq(out, cases[_i].out);
  check_one_imports(out);
  /* a second time: already there */
  {
    cleanup_free char *again = add(out);
    ck_assert_ptr_null(again);
  }
}
END_TEST

START_TEST(test_import_inside_table_never)
{
  /* imports as a key of a table is not the top-level key: a new top-level
   * key goes before the first table */
  cleanup_free char *out = add("version = 3\n[x]\nimports = [\"/in/table\"]\n");
  ck_assert_str_eq(out, "version = 3\nimports = [\"" E "\"]\n[x]\nimports = [\"/in/table\"]\n");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("install");
  TCase *tc = tcase_create("install");
  SRunner *sr;
  int failed;

  tcase_add_loop_test(tc, test_add_import, 0, sizeof(cases) / sizeof(cases[0]));
  tcase_add_test(tc, test_import_inside_table_never);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
