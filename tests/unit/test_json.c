/* JSON parsing (lib/json.c): the bounds the header promises. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonsame.h"
#include "util.h"

/* Found by tests/fuzz/fuzz_json.c: yajl read up to a NUL, not len bytes, so
 * a buffer without a NUL after it was read past its end, and bytes after len
 * were parsed. */
START_TEST(test_parse_exactly_len)
{
  cleanup_json yajl_val v = NULL;
  frc_error_t err = NULL;
  char *exact = malloc(2); /* no NUL after it: ASan sees a read past it */
  memcpy(exact, "{}", 2);
  ck_assert_int_eq(frc_json_parse(exact, 2, &v, &err), 0);
  ck_assert_int_eq(v->type, yajl_t_object);
  free(exact);
  frc_json_freep(&v);
  ck_assert_int_eq(frc_json_parse("{} trailing garbage", 2, &v, &err), 0);
  frc_json_freep(&v);
  ck_assert_int_eq(frc_json_parse("[1,2] x", 3, &v, &err), -1); /* "[1," */
  frc_error_release(&err);
}
END_TEST

/* yajl quotes the input in its message: control bytes come out escaped. */
START_TEST(test_error_escaped)
{
  cleanup_json yajl_val v = NULL;
  frc_error_t err = NULL;
  const char *text = "{\"a\":\x01\x02}";
  ck_assert_int_eq(frc_json_parse(text, strlen(text), &v, &err), -1);
  for (const char *c = err->msg; *c; c++)
    ck_assert_msg((unsigned char) *c >= 0x20, "control byte in: %s", err->msg);
  frc_error_release(&err);
}
END_TEST

static bool
no_z(const char *s)
{
  return strchr(s, 'z') == NULL;
}

static char *
text_of(yajl_val v)
{
  return frc_json_serialize(v, NULL);
}

/* frc_json_parse_strv: the fields' arrays of strings as vectors, out of
 * the tree; the rest of the tree as frc_json_parse builds it. */
START_TEST(test_parse_strv)
{
  cleanup_json yajl_val v = NULL;
  cleanup_free char *t = NULL;
  frc_error_t err = NULL;
  struct frc_json_strv f[2] = { { .key = "pins" }, { .key = "closure", .valid = no_z } };
  const char *doc = "{\"a\":1,\"pins\":[\"x\",\"y\"],\"b\":{\"pins\":[\"kept\"],\"c\":[true,null,\"s\",-2]},"
                    "\"closure\":[],\"d\":\"e\"}";

  ck_assert_int_eq(frc_json_parse_strv(doc, strlen(doc), f, 2, &v, &err), 0);
  ck_assert(f[0].found && f[0].strv && f[1].found && f[1].strv);
  ck_assert_str_eq(f[0].strv[0], "x");
  ck_assert_str_eq(f[0].strv[1], "y");
  ck_assert_ptr_null(f[0].strv[2]);
  ck_assert_ptr_null(f[1].strv[0]);
  t = text_of(v);
  ck_assert_str_eq(t, "{\"a\":1,\"b\":{\"pins\":[\"kept\"],\"c\":[true,null,\"s\",-2]},\"d\":\"e\"}");
  yajl_val a = frc_json_get(v, "a");
  ck_assert(a->type == yajl_t_number && a->u.number.i == 1 && (a->u.number.flags & YAJL_NUMBER_INT_VALID));
  frc_json_strv_release(f, 2);
  ck_assert_ptr_null(f[0].strv);
}
END_TEST

/* A field's value that is not an array of strings passing its check: found,
 * no vector, nothing of it in the tree, the rest parsed on; the last of
 * duplicate keys decides. */
START_TEST(test_parse_strv_bad)
{
  static const struct
  {
    const char *doc;
    bool strv; /* pins collected */
    const char *first; /* its first string */
  } cases[] = {
    { "{\"pins\":\"x\",\"k\":1}", false, NULL },
    { "{\"pins\":[1],\"k\":1}", false, NULL },
    { "{\"pins\":[\"a\",[\"b\"],\"c\"],\"k\":1}", false, NULL },
    { "{\"pins\":{\"q\":[\"a\"],\"r\":{}},\"k\":1}", false, NULL },
    { "{\"pins\":[\"a\",\"z\"],\"k\":1}", false, NULL },
    { "{\"pins\":null,\"k\":1}", false, NULL },
    { "{\"pins\":[\"a\"],\"pins\":[\"b\"],\"k\":1}", true, "b" },
    { "{\"pins\":7,\"pins\":[\"b\"],\"k\":1}", true, "b" },
    { "{\"pins\":[\"a\"],\"pins\":false,\"k\":1}", false, NULL },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_json yajl_val v = NULL;
      cleanup_free char *t = NULL;
      frc_error_t err = NULL;
      struct frc_json_strv f[1] = { { .key = "pins", .valid = no_z } };
      ck_assert_msg(frc_json_parse_strv(cases[i].doc, strlen(cases[i].doc), f, 1, &v, &err) == 0,
                    "case %zu: %s", i, err ? err->msg : "");
      ck_assert_msg(f[0].found, "case %zu", i);
      ck_assert_msg((f[0].strv != NULL) == cases[i].strv, "case %zu", i);
      if (cases[i].first)
        ck_assert_str_eq(f[0].strv[0], cases[i].first);
      t = text_of(v);
      ck_assert_msg(strcmp(t, "{\"k\":1}") == 0, "case %zu: %s", i, t);
      frc_json_strv_release(f, 1);
    }
}
END_TEST

/* Without fields, the same tree as frc_json_parse for the engines' specs;
 * white space after the value and nothing else; errors leave no vector. */
START_TEST(test_parse_strv_same_tree)
{
  static const char *const files[] = { "containerd-cri-container-config.json", "crun-spec.json",
                                       "containerd-ctr-config.json" };
  const char *dir = getenv("FRC_FIXTURES_DIR");
  frc_error_t err = NULL;
  ck_assert_ptr_nonnull(dir);
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, files[i]);
      cleanup_free char *text = NULL, *ta = NULL, *tb = NULL;
      cleanup_json yajl_val a = NULL, b = NULL;
      size_t len = 0;
      ck_assert_int_eq(read_file_bounded(path, 1 << 20, &text, &len, &err), 0);
      ck_assert_int_eq(frc_json_parse(text, len, &a, &err), 0);
      ck_assert_int_eq(frc_json_parse_strv(text, len, NULL, 0, &b, &err), 0);
      ck_assert(frc_json_equal(a, b));
      ta = text_of(a);
      tb = text_of(b);
      ck_assert_str_eq(ta, tb);
    }
  {
    /* (frc_json_parse takes the fourth: yajl's end of input lets an
     * unterminated string after the value through) */
    static const char *const bad[] = { "{\"pins\":[\"a\"", "[1,2", "{\"a\":1}x", "{} \"x", "", "{\"pins\":[\"a\\u0000\"]}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
      {
        yajl_val v = NULL;
        struct frc_json_strv f[1] = { { .key = "pins" } };
        ck_assert_msg(frc_json_parse_strv(bad[i], strlen(bad[i]), f, 1, &v, &err) == -1, "%s", bad[i]);
        ck_assert_ptr_null(v);
        ck_assert_ptr_null(f[0].strv);
        ck_assert_msg(strstr(err->msg, "JSON") != NULL, "%s", err->msg);
        frc_error_release(&err);
      }
  }
}
END_TEST

/* The bounds of frc_json_parse, checked while parsing: 128 levels of
 * nesting (a field's array and what is skipped in it counted), no U+0000
 * in a string or key, kept or collected; a raw NUL is not JSON. */
START_TEST(test_parse_strv_bounds)
{
  for (int depth = 127; depth <= 130; depth++)
    for (int in_field = 0; in_field < 2; in_field++)
      {
        /* {"pins":[[...]]} or [[...]]: depth levels in all */
        cleanup_free char *t = xmalloc0(2 * (size_t) depth + 16);
        size_t n = 0;
        int open = depth;
        yajl_val v = NULL, w = NULL;
        frc_error_t err = NULL, err2 = NULL;
        struct frc_json_strv f[1] = { { .key = "pins" } };
        if (in_field)
          {
            n += (size_t) sprintf(t, "{\"pins\":");
            open--;
          }
        for (int i = 0; i < open; i++)
          t[n++] = '[';
        for (int i = 0; i < open; i++)
          t[n++] = ']';
        if (in_field)
          t[n++] = '}';
        int a = frc_json_parse(t, n, &v, &err);
        int b = frc_json_parse_strv(t, n, f, 1, &w, &err2);
        ck_assert_msg(a == (depth <= FRC_JSON_MAX_DEPTH ? 0 : -1), "depth %d", depth);
        ck_assert_msg(a == b, "depth %d, in a field %d: %d %d", depth, in_field, a, b);
        if (b < 0)
          ck_assert_msg(strstr(err2->msg, "deeper") != NULL, "%s", err2->msg);
        frc_json_freep(&v);
        frc_json_freep(&w);
        frc_json_strv_release(f, 1);
        frc_error_release(&err);
        frc_error_release(&err2);
      }
  {
    yajl_val v = NULL;
    frc_error_t err = NULL;
    ck_assert_int_eq(frc_json_parse_strv("{} \n\t\r ", 7, NULL, 0, &v, &err), 0);
    frc_json_freep(&v);
  }
  static const struct
  {
    const char *t;
    size_t len;
  } nul[] = { { "{\"a\":\"x\\u0000\"}", 0 }, { "{\"a\\u0000\":1}", 0 },
              { "{\"pins\":[\"x\\u0000\"]}", 0 }, { "{\"a\":\"x\0\"}", 10 }, { "{}\0", 3 } };
  for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++)
    {
      yajl_val v = NULL;
      frc_error_t err = NULL;
      struct frc_json_strv f[1] = { { .key = "pins" } };
      size_t len = nul[i].len ? nul[i].len : strlen(nul[i].t);
      ck_assert_msg(frc_json_parse_strv(nul[i].t, len, f, 1, &v, &err) == -1, "case %zu", i);
      ck_assert_ptr_null(v);
      if (nul[i].len == 0)
        ck_assert_msg(strstr(err->msg, "U+0000") != NULL, "%s", err->msg);
      frc_error_release(&err);
    }
}
END_TEST

/* frc_json_parse_opaque: linux.seccomp kept as its text, serialised
 * verbatim; everything else, numbers included, as frc_json_parse makes it;
 * a value with a '/' (a comment) as a tree; the same texts accepted. */
START_TEST(test_parse_opaque)
{
  static const char *const docs[] = {
    ("{\"linux\":{\"a\":1,\"seccomp\":{\"defaultAction\":\"X\",\"syscalls\":[{\"names\":[\"a\",\"b\"],\"n\":-1.5e3}]},"
     "\"b\":[1]},\"seccomp\":{\"x\":1}}"),
    "{\"linux\":{\"seccomp\":  [1, {\"k\": [true, null]}]  , \"z\": 9223372036854775808}}",
    "{\"linux\":{\"seccomp\":\"s\"},\"n\":[-0, 1.5, -1.5, 1E+2, 99999999999999999999, -9223372036854775808, 42]}",
    "{\"linux\":{\"seccomp\":{\"p\":\"/a\"}}}",
    "{\"linux\":{\"seccomp\":{\"x\":/* c */1}}}",
    "{\"other\":{\"seccomp\":{\"x\":1}},\"linux\":5}",
    "{\"linux\":{\"seccomp\":{}}} \"unterminated",
    "{\"linux\":{\"seccomp\":[\"a\\u0000\"]}}",
    "{\"linux\":{\"seccomp\":[1,]}}",
    "[1,2",
  };
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
    {
      cleanup_json yajl_val a = NULL, b = NULL, again = NULL;
      cleanup_free char *text = NULL;
      frc_error_t err = NULL, err2 = NULL;
      int ra = frc_json_parse_opaque(docs[i], strlen(docs[i]), "linux", "seccomp", &a, &err);
      int rb = frc_json_parse(docs[i], strlen(docs[i]), &b, &err2);
      ck_assert_msg(ra == rb, "case %zu: %d %d", i, ra, rb);
      frc_error_release(&err);
      frc_error_release(&err2);
      if (ra < 0)
        continue;
      ck_assert_msg(json_same_tree(a, b), "case %zu", i);
      text = frc_json_serialize(a, NULL);
      ck_assert_msg(strstr(text, "/*") == NULL, "case %zu: %s", i, text);
      ck_assert_msg(frc_json_parse(text, strlen(text), &again, &err) == 0, "case %zu: %s", i, text);
      ck_assert_msg(json_same_tree(again, b), "case %zu: %s", i, text);
    }
  {
    cleanup_json yajl_val a = NULL;
    frc_error_t err = NULL;
    ck_assert_int_eq(frc_json_parse_opaque(docs[0], strlen(docs[0]), "linux", "seccomp", &a, &err), 0);
    yajl_val sc = frc_json_get(frc_json_get(a, "linux"), "seccomp");
    ck_assert(sc->type == yajl_t_number && (sc->u.number.flags & FRC_JSON_OPAQUE));
    ck_assert_str_eq(sc->u.number.r, "{\"defaultAction\":\"X\",\"syscalls\":[{\"names\":[\"a\",\"b\"],\"n\":-1.5e3}]}");
    ck_assert_int_eq(frc_json_get(a, "seccomp")->type, yajl_t_object); /* only linux's */
  }
  {
    cleanup_json yajl_val a = NULL;
    frc_error_t err = NULL;
    ck_assert_int_eq(frc_json_parse_opaque(docs[3], strlen(docs[3]), "linux", "seccomp", &a, &err), 0);
    ck_assert_int_eq(frc_json_get(frc_json_get(a, "linux"), "seccomp")->type, yajl_t_object);
  }
}
END_TEST

/* The engines' specs: the same tree as frc_json_parse's, podman's seccomp
 * kept as its text. */
START_TEST(test_parse_opaque_fixtures)
{
  static const char *const files[] = { "containerd-cri-container-config.json", "crun-spec.json",
                                       "containerd-ctr-config.json", "podman-conmon-config.json",
                                       "runc-spec.json" };
  const char *dir = getenv("FRC_FIXTURES_DIR");
  frc_error_t err = NULL;
  ck_assert_ptr_nonnull(dir);
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, files[i]);
      cleanup_free char *text = NULL, *out = NULL;
      cleanup_json yajl_val a = NULL, b = NULL, again = NULL;
      size_t len = 0;
      ck_assert_int_eq(read_file_bounded(path, 1 << 20, &text, &len, &err), 0);
      ck_assert_int_eq(frc_json_parse_opaque(text, len, "linux", "seccomp", &a, &err), 0);
      ck_assert_int_eq(frc_json_parse(text, len, &b, &err), 0);
      ck_assert_msg(json_same_tree(a, b), "%s", files[i]);
      out = frc_json_serialize(a, NULL);
      ck_assert_int_eq(frc_json_parse(out, strlen(out), &again, &err), 0);
      ck_assert_msg(frc_json_equal(again, b), "%s", files[i]);
    }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("json");
  TCase *tc = tcase_create("parse");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_parse_exactly_len);
  tcase_add_test(tc, test_error_escaped);
  tcase_add_test(tc, test_parse_strv);
  tcase_add_test(tc, test_parse_strv_bad);
  tcase_add_test(tc, test_parse_strv_same_tree);
  tcase_add_test(tc, test_parse_strv_bounds);
  tcase_add_test(tc, test_parse_opaque);
  tcase_add_test(tc, test_parse_opaque_fixtures);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
