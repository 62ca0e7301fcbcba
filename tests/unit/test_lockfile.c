/* manifest.lock parsing and store-path validation (lib/lockfile.c). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lockfile.h"
#include "util.h"

#define H1 "/nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qwr"
#define H2 "/nix/store/7qdc0s9wq2mv3zzp9ls6yvwxcb6xbqj8"
#define H3 "/nix/store/f3q8a9j7zlh2hwnxyv4shh7gr7v9r1aa"

static const char lock[] =
    "{\"lockfile-version\":1,"
    "\"manifest\":{\"version\":1,\"install\":{\"just\":{\"pkg-path\":\"just\"}},"
    "\"vars\":{\"GREETING\":\"hi there\",\"_X1\":\"\"},"
    "\"hook\":{\"on-activate\":\"echo activated\"},\"options\":{\"systems\":[\"x86_64-linux\",\"aarch64-linux\"]}},"
    "\"packages\":["
    "{\"attr_path\":\"just\",\"install_id\":\"just\",\"pname\":\"just\",\"version\":\"1.42.4\","
    "\"outputs_to_install\":[\"man\",\"out\"],"
    "\"outputs\":{\"man\":\"" H2 "-just-1.42.4-man\",\"out\":\"" H1 "-just-1.42.4\","
    "\"stubs\":\"" H3 "-just-stubs\"},\"system\":\"x86_64-linux\",\"group\":\"toplevel\",\"priority\":5},"
    "{\"attr_path\":\"just\",\"install_id\":\"just\",\"outputs\":{\"out\":\"" H1 "-just-arm\"},"
    "\"system\":\"aarch64-linux\"},"
    "{\"install_id\":\"tool\",\"store_path\":\"" H3 "-tool-1.0\",\"system\":\"x86_64-linux\","
    "\"priority\":3},"
    "{\"install_id\":\"fl\",\"locked_installable\":{\"locked_url\":\"github:x/y\",\"system\":"
    "\"x86_64-linux\",\"outputs\":{\"out\":\"" H2 "-flake-out\"}},\"priority\":7}]}";

START_TEST(test_shapes)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_msg(frc_lockfile_parse(lock, strlen(lock), "x86_64-linux", &l, &err) == 0, "%s",
                err ? err->msg : "");
  ck_assert_int_eq(l.manifest_version, 1);
  ck_assert_uint_eq(l.npkgs, 3);
  ck_assert_str_eq(l.pkgs[0].install_id, "just");
  ck_assert_str_eq(l.pkgs[0].label, "just-1.42.4");
  ck_assert_str_eq(l.pkgs[0].store_paths[0], H2 "-just-1.42.4-man");
  ck_assert_str_eq(l.pkgs[0].store_paths[1], H1 "-just-1.42.4");
  ck_assert_ptr_null(l.pkgs[0].store_paths[2]); /* stubs left out */
  ck_assert_int_eq(l.pkgs[0].priority, 5);
  ck_assert_str_eq(l.pkgs[1].store_paths[0], H3 "-tool-1.0");
  ck_assert_int_eq(l.pkgs[1].priority, 3);
  ck_assert_str_eq(l.pkgs[2].store_paths[0], H2 "-flake-out");
  ck_assert_int_eq(l.pkgs[2].priority, 7);
  ck_assert_uint_eq(l.nvars, 2);
  ck_assert_str_eq(l.var_names[0], "GREETING");
  ck_assert_str_eq(l.var_values[0], "hi there");
  ck_assert_str_eq(l.hook_on_activate, "echo activated");
  ck_assert_str_eq(l.systems[0], "x86_64-linux"); /* options.systems */
  ck_assert_str_eq(l.systems[1], "aarch64-linux");
  ck_assert_ptr_null(l.systems[2]);
  frc_lockfile_release(&l);

  ck_assert_int_eq(frc_lockfile_parse(lock, strlen(lock), "aarch64-linux", &l, &err), 0);
  ck_assert_uint_eq(l.npkgs, 1);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_wrong_system)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_int_lt(frc_lockfile_parse(lock, strlen(lock), "riscv64-linux", &l, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "riscv64-linux"));
  ck_assert_ptr_nonnull(strstr(err->msg, "x86_64-linux, aarch64-linux"));
  ck_assert_int_eq(err->code, FRC_ECODE_NOT_FOUND);
  frc_error_release(&err);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_empty_environment)
{
  const char *t = "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[]}";
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_lockfile_parse(t, strlen(t), "x86_64-linux", &l, &err), 0);
  ck_assert_uint_eq(l.npkgs, 0);
  ck_assert_ptr_null(l.hook_on_activate);
  frc_lockfile_release(&l);
}
END_TEST

static const char *const bad_locks[] = {
  "{\"lockfile-version\":2,\"manifest\":{\"version\":1},\"packages\":[]}",
  "{\"manifest\":{\"version\":1},\"packages\":[]}",
  "{\"lockfile-version\":1,\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1}}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"store_path\":\"/nix/store/../../etc/passwd\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"outputs\":{\"out\":\"/tmp/x\"}}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"outputs\":{}}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"system\":\"x86_64-linux\",\"store_path\":\"" H1
  "-a\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"install_id\":\"x\",\"store_path\":\"" H1 "-a\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[{\"install_id\":\"x\",\"system\":\"x86_64-linux\","
  "\"store_path\":\"" H1 "-a\",\"priority\":\"high\"}]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"vars\":{\"A-B\":\"x\"}},\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"vars\":{\"1A\":\"x\"}},\"packages\":[]}",
  "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"vars\":{\"A\":1}},\"packages\":[]}",
  "{\"lockfile-version\":1,",
};

START_TEST(test_bad)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_msg(frc_lockfile_parse(bad_locks[_i], strlen(bad_locks[_i]), "x86_64-linux", &l, &err) < 0,
                "accepted %s", bad_locks[_i]);
  ck_assert_ptr_nonnull(strstr(err->msg, "manifest.lock"));
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  frc_error_release(&err);
  frc_lockfile_release(&l);
}
END_TEST

static const struct
{
  const char *path;
  bool ok;
} paths[] = {
  { H1 "-hello-2.12", true },
  { H1 "-a+b_c.d-e?f=g", true },
  { H1 "-", false },
  { H1 "-.hidden", false },
  { H1 "-x/y", false },
  { H1 "-x/../../etc", false },
  { H1 "-x y", false },
  { H1, false },
  { "/nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qw-short", false },
  { "/nix/store/e5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false }, /* 'e' is not nix32 */
  { "/nix/store/I5L66QBWRY5SKVWAC6ZXI81XQ6QA3QWR-x", false },
  { "/nix/storeX/i5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false },
  { "nix/store/i5l66qbwry5skvwac6zxi81xq6qa3qwr-x", false },
  { "", false },
};

START_TEST(test_store_paths)
{
  ck_assert_msg(frc_store_path_valid(paths[_i].path) == paths[_i].ok, "%s", paths[_i].path);
}
END_TEST

/* Every byte at a hash position and at a name position: accepted exactly
 * when it is of FRC_NIX32_CHARS, or a letter, a digit or one of "+-._?=". */
START_TEST(test_store_path_bytes)
{
  for (int b = 1; b < 256; b++)
    {
      char p[64] = H1 "-ab";
      bool nix32 = strchr(FRC_NIX32_CHARS, b) != NULL;
      bool name = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
                  || strchr("+-._?=", b) != NULL;
      p[strlen("/nix/store/") + 5] = (char) b;
      ck_assert_msg(frc_store_path_valid(p) == nix32, "hash byte %d", b);
      memcpy(p, H1 "-ab", sizeof(H1 "-ab"));
      p[strlen(H1) + 2] = (char) b;
      ck_assert_msg(frc_store_path_valid(p) == (name && b != '/'), "name byte %d", b);
    }
}
END_TEST

START_TEST(test_system)
{
  const char *s = frc_nix_system();
  ck_assert(strcmp(s, "x86_64-linux") == 0 || strcmp(s, "aarch64-linux") == 0);
}
END_TEST

/* ---- Flox's selection rules (docs/flox-compatibility.md) ---- */

#define OUT(name, h, suffix) "\"" name "\":\"" h suffix "\""

static struct frc_lockfile
parse_ok(const char *t, const char *system)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  ck_assert_msg(frc_lockfile_parse(t, strlen(t), system, &l, &err) == 0, "%s",
                err ? err->msg : "");
  return l;
}

static char *
parse_fails(const char *t, const char *system, int code)
{
  struct frc_lockfile l;
  frc_error_t err = NULL;
  char *msg;
  ck_assert_int_lt(frc_lockfile_parse(t, strlen(t), system, &l, &err), 0);
  ck_assert_int_eq(err->code, code);
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  msg = xstrdup(err->msg);
  frc_error_release(&err);
  frc_lockfile_release(&l);
  return msg;
}

/* version = 1: every output but stubs; outputs_to_install at p, each other
 * output at 1000*p + n, n counting over the whole lockfile (builder.pl:589-627). */
START_TEST(test_v1_priorities)
{
  static const char t[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":{}},\"packages\":["
        "{\"install_id\":\"a\",\"system\":\"x86_64-linux\",\"priority\":5,"
        "\"outputs_to_install\":[\"out\"],\"outputs\":{" OUT("doc", H1, "-a-doc") "," OUT(
            "out", H1, "-a") "," OUT("stubs", H1, "-a-stubs") "}},"
        "{\"install_id\":\"a\",\"system\":\"aarch64-linux\",\"priority\":5,"
        "\"outputs_to_install\":[\"out\"],\"outputs\":{" OUT("doc", H2, "-a-doc") "," OUT(
            "out", H2, "-a") "}},"
        "{\"install_id\":\"b\",\"system\":\"x86_64-linux\",\"priority\":3,"
        "\"outputs_to_install\":[\"bin\"],\"outputs\":{" OUT("bin", H3, "-b-bin") "," OUT(
            "dev", H3, "-b-dev") "," OUT("lib", H3, "-b-lib") "}}]}";
  struct frc_lockfile l = parse_ok(t, "x86_64-linux");

  ck_assert_uint_eq(l.npkgs, 2);
  ck_assert_uint_eq(l.pkgs[0].noutputs, 2); /* doc, out; not stubs */
  ck_assert_str_eq(l.pkgs[0].outputs[0].name, "doc");
  ck_assert_int_eq(l.pkgs[0].outputs[0].priority, 5000);
  ck_assert(l.pkgs[0].outputs[0].other);
  ck_assert_int_eq(l.pkgs[0].outputs[1].priority, 5);
  ck_assert(!l.pkgs[0].outputs[1].other);
  ck_assert_int_eq(l.pkgs[1].outputs[0].priority, 3);
  ck_assert_int_eq(l.pkgs[1].outputs[1].priority, 3001);
  ck_assert_int_eq(l.pkgs[1].outputs[2].priority, 3002);
  ck_assert_uint_eq(l.n_other, 3);
  ck_assert_uint_eq(l.n_build, 0);
  /* dev numbers on from run's counter (builder.pl:773-784) */
  ck_assert_int_eq(frc_lock_priority(&l, &l.pkgs[1].outputs[2], FRC_MODE_DEV), 3005);
  ck_assert_int_eq(frc_lock_priority(&l, &l.pkgs[1].outputs[0], FRC_MODE_DEV), 3);
  ck_assert_uint_eq(l.npaths, 5);
  ck_assert_ptr_null(l.paths[5]);
  frc_lockfile_release(&l);
}
END_TEST

/* A build's packages move the counter too (builder.pl:713-791). */
START_TEST(test_v1_build_counter)
{
  static const char t[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":{\"a\":{\"pkg-path\":"
        "\"a\"}},\"build\":{\"x\":{\"command\":\"true\"},\"y\":{\"command\":\"true\","
        "\"runtime-packages\":[]}}},\"packages\":["
        "{\"install_id\":\"a\",\"attr_path\":\"a\",\"group\":\"toplevel\",\"system\":"
        "\"x86_64-linux\",\"priority\":5,\"outputs_to_install\":[\"out\"],\"outputs\":{" OUT(
            "man", H1, "-a-man") "," OUT("out", H1, "-a") "}}]}";
  struct frc_lockfile l = parse_ok(t, "x86_64-linux");
  ck_assert_uint_eq(l.n_other, 1);
  ck_assert_uint_eq(l.n_build, 1); /* x takes the toplevel group, y nothing */
  frc_lockfile_release(&l);
}
END_TEST

/* schema-version: the descriptor's outputs, else outputs_to_install, all at
 * the package's priority (builder.pl:518-542,628-642). */
START_TEST(test_schema_outputs)
{
  static const char t[]
      = "{\"lockfile-version\":1,\"manifest\":{\"schema-version\":\"1.10.0\",\"install\":{"
        "\"a\":{\"pkg-path\":\"a\"},\"b\":{\"pkg-path\":\"b\",\"outputs\":[\"lib\"]},"
        "\"c\":{\"pkg-path\":\"c\",\"outputs\":\"all\"},\"d\":{\"pkg-path\":\"d\"}}},"
        "\"packages\":["
        "{\"install_id\":\"a\",\"system\":\"x86_64-linux\",\"priority\":4,"
        "\"outputs_to_install\":[\"out\",\"man\"],\"outputs\":{" OUT("debug", H1, "-a-debug") "," OUT(
            "man", H1, "-a-man") "," OUT("out", H1, "-a") "}},"
        "{\"install_id\":\"b\",\"system\":\"x86_64-linux\",\"priority\":5,"
        "\"outputs_to_install\":[\"out\"],\"outputs\":{" OUT("lib", H2, "-b-lib") "," OUT(
            "out", H2, "-b") "}},"
        "{\"install_id\":\"c\",\"system\":\"x86_64-linux\",\"priority\":5,"
        "\"outputs_to_install\":[\"out\"],\"outputs\":{" OUT("out", H3, "-c") "," OUT(
            "stubs", H3, "-c-stubs") "}},"
        "{\"install_id\":\"d\",\"system\":\"x86_64-linux\",\"priority\":5,"
        "\"outputs-to-install\":[\"out\"],\"outputs\":{" OUT("out", H3, "-d") "}}]}";
  struct frc_lockfile l = parse_ok(t, "x86_64-linux");

  ck_assert_int_eq(l.manifest_version, 0);
  ck_assert_uint_eq(l.npkgs, 4);
  ck_assert_uint_eq(l.pkgs[0].noutputs, 2); /* out, man: no debug */
  ck_assert_str_eq(l.pkgs[0].store_paths[0], H1 "-a");
  ck_assert_str_eq(l.pkgs[0].store_paths[1], H1 "-a-man");
  ck_assert_int_eq(l.pkgs[0].outputs[1].priority, 4);
  ck_assert_uint_eq(l.pkgs[1].noutputs, 1); /* only lib */
  ck_assert_str_eq(l.pkgs[1].store_paths[0], H2 "-b-lib");
  ck_assert_uint_eq(l.pkgs[2].noutputs, 2); /* "all", stubs included */
  ck_assert_str_eq(l.pkgs[3].store_paths[0], H3 "-d"); /* kebab-case flake key */
  ck_assert_uint_eq(l.n_other, 0);
  ck_assert_uint_eq(l.npaths, 6);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_schema_refused)
{
  static const char no_output[]
      = "{\"lockfile-version\":1,\"manifest\":{\"schema-version\":\"1.10.0\",\"install\":{"
        "\"b\":{\"pkg-path\":\"b\",\"outputs\":[\"nope\"]}}},\"packages\":["
        "{\"install_id\":\"b\",\"system\":\"x86_64-linux\",\"outputs\":{" OUT("out", H2, "-b") "}}]}";
  static const char no_descriptor[]
      = "{\"lockfile-version\":1,\"manifest\":{\"schema-version\":\"1.10.0\",\"install\":{}},"
        "\"packages\":[{\"install_id\":\"b\",\"system\":\"x86_64-linux\",\"outputs\":{" OUT(
            "out", H2, "-b") "}}]}";
  static const char no_version[] = "{\"lockfile-version\":1,\"manifest\":{},\"packages\":[]}";
  static const char v2[] = "{\"lockfile-version\":1,\"manifest\":{\"version\":2},\"packages\":[]}";
  cleanup_free char *a = parse_fails(no_output, "x86_64-linux", FRC_ECODE_SERVER);
  cleanup_free char *b = parse_fails(no_descriptor, "x86_64-linux", FRC_ECODE_SERVER);
  cleanup_free char *c = parse_fails(no_version, "x86_64-linux", FRC_ECODE_SERVER);
  cleanup_free char *d = parse_fails(v2, "x86_64-linux", FRC_ECODE_SERVER);
  ck_assert_ptr_nonnull(strstr(a, "\"b\""));
  ck_assert_ptr_nonnull(strstr(b, "install ID"));
  ck_assert_ptr_nonnull(strstr(c, "schema-version"));
  ck_assert_ptr_nonnull(strstr(d, "unsupported manifest version"));
}
END_TEST

/* Systems from options.systems, else from the catalog packages' locks
 * (buildenv.rs:1426-1486). */
START_TEST(test_systems)
{
  static const char only_darwin[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":{\"a\":{\"pkg-path\":"
        "\"a\"}},\"options\":{\"systems\":[\"x86_64-linux\",\"aarch64-darwin\"]}},\"packages\":["
        "{\"install_id\":\"a\",\"system\":\"aarch64-darwin\",\"outputs\":{" OUT("out", H1, "-a") "}}]}";
  static const char excluded[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"options\":{\"systems\":["
        "\"aarch64-darwin\",\"x86_64-darwin\"]}},\"packages\":[]}";
  static const char implicit[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":{\"a\":{\"pkg-path\":"
        "\"a\"}}},\"packages\":["
        "{\"install_id\":\"a\",\"system\":\"aarch64-darwin\",\"outputs\":{" OUT("out", H1, "-a") "}}]}";
  static const char pinned[]
      = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":{\"a\":{\"pkg-path\":"
        "\"a\",\"systems\":[\"aarch64-darwin\"]}}},\"packages\":["
        "{\"install_id\":\"a\",\"system\":\"aarch64-darwin\",\"outputs\":{" OUT("out", H1, "-a") "}}]}";
  struct frc_lockfile l = parse_ok(only_darwin, "x86_64-linux");
  cleanup_free char *m1 = NULL, *m2 = NULL;

  ck_assert_uint_eq(l.npkgs, 0); /* supported, nothing for it: empty */
  frc_lockfile_release(&l);
  m1 = parse_fails(excluded, "x86_64-linux", FRC_ECODE_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(m1, "aarch64-darwin, x86_64-darwin"));
  ck_assert_ptr_nonnull(strstr(m1, "options.systems"));
  ck_assert_ptr_nonnull(strstr(m1, "x86_64-linux"));
  m2 = parse_fails(implicit, "x86_64-linux", FRC_ECODE_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(m2, "not locked for this node's system x86_64-linux"));
  ck_assert_ptr_nonnull(strstr(m2, "re-lock"));
  l = parse_ok(pinned, "x86_64-linux"); /* a package's own systems: no signal */
  ck_assert_uint_eq(l.npkgs, 0);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_lockfile_version)
{
  static const char v0[] = "{\"lockfile-version\":0,\"manifest\":{},\"packages\":{}}";
  static const char v2[] = "{\"lockfile-version\":2,\"manifest\":{},\"packages\":[]}";
  cleanup_free char *a = parse_fails(v0, "x86_64-linux", FRC_ECODE_NOT_FOUND);
  cleanup_free char *b = parse_fails(v2, "x86_64-linux", FRC_ECODE_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(a, "lockfile-version 0"));
  ck_assert_ptr_nonnull(strstr(a, "re-lock the environment with a current Flox"));
  ck_assert_ptr_null(strstr(a, "update flox-runc"));
  ck_assert_ptr_nonnull(strstr(b, "lockfile-version 2"));
}
END_TEST

/* The annotation, else options.activate.mode, else run. */
START_TEST(test_mode)
{
  static const char dev[] = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"options\":"
                            "{\"activate\":{\"mode\":\"dev\"}}},\"packages\":[]}";
  static const char none[] = "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[]}";
  static const char bad[] = "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"options\":"
                            "{\"activate\":{\"mode\":\"build\"}}},\"packages\":[]}";
  struct frc_lockfile l = parse_ok(dev, "x86_64-linux");
  cleanup_free char *m = NULL;
  ck_assert(l.has_mode);
  ck_assert_int_eq(frc_lock_pick_mode(&l, false, FRC_MODE_RUN), FRC_MODE_DEV);
  ck_assert_int_eq(frc_lock_pick_mode(&l, true, FRC_MODE_RUN), FRC_MODE_RUN);
  frc_lockfile_release(&l);
  l = parse_ok(none, "x86_64-linux");
  ck_assert(!l.has_mode);
  ck_assert_int_eq(frc_lock_pick_mode(&l, false, FRC_MODE_RUN), FRC_MODE_RUN);
  ck_assert_int_eq(frc_lock_pick_mode(&l, true, FRC_MODE_DEV), FRC_MODE_DEV);
  frc_lockfile_release(&l);
  m = parse_fails(bad, "x86_64-linux", FRC_ECODE_SERVER);
  ck_assert_ptr_nonnull(strstr(m, "options.activate.mode"));
}
END_TEST

/* Time bounds are the plain build's; ASan and UBSan (tests/check.sh's
 * sanitizer build) make the parser several times slower. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_BOUND_S 5.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIME_BOUND_S 5.0
#endif
#endif
#ifndef TIME_BOUND_S
#define TIME_BOUND_S 1.0
#endif

static double
now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static char *
hash_of(unsigned long i)
{
  static const char nix32[] = "0123456789abcdfghijklmnpqrsvwxyz";
  char *h = xmalloc0(33);
  for (int k = 0; k < 32; k++, i /= 32)
    h[k] = nix32[i % 32];
  return h;
}

/* Hostile sizes: a store-path cap while parsing (32,000 paths used to cost
 * seconds of root CPU first), a size cap, bounded error lines. */
START_TEST(test_bounds)
{
  size_t cap = 4u << 20, len = 0;
  cleanup_free char *t = xmalloc0(cap);
  cleanup_free char *m = NULL;
  double t0;

  len += (size_t) sprintf(t + len, "{\"lockfile-version\":1,\"manifest\":{\"version\":1},"
                                   "\"packages\":[");
  for (unsigned long p = 0; p < 500; p++)
    {
      len += (size_t) sprintf(t + len, "%s{\"install_id\":\"p\",\"system\":\"x86_64-linux\","
                                       "\"outputs\":{",
                              p ? "," : "");
      for (unsigned long o = 0; o < 64; o++)
        {
          cleanup_free char *h = hash_of(p * 64 + o);
          len += (size_t) sprintf(t + len, "%s\"%lu\":\"/nix/store/%s-a\"", o ? "," : "", o, h);
        }
      len += (size_t) sprintf(t + len, "}}");
    }
  len += (size_t) sprintf(t + len, "]}");
  ck_assert_uint_lt(len, FRC_LOCKFILE_MAX_BYTES);
  t0 = now_s();
  m = parse_fails(t, "x86_64-linux", FRC_ECODE_TOO_BIG);
  ck_assert_msg(now_s() - t0 < TIME_BOUND_S, "took %.2f s", now_s() - t0);
  ck_assert_ptr_nonnull(strstr(m, "store paths"));
  free(m);

  /* 3 MiB of JSON: refused before parsing */
  memset(t, ' ', 3u << 20);
  memcpy(t, "{\"lockfile-version\":1}", 22);
  t[3u << 20] = '\0';
  m = parse_fails(t, "x86_64-linux", FRC_ECODE_TOO_BIG);
  ck_assert_ptr_nonnull(strstr(m, "larger than"));
  free(m);

  /* 10,000 distinct systems: one short line */
  len = (size_t) sprintf(t, "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":"
                            "{\"p\":{\"pkg-path\":\"p\"}}},\"packages\":[");
  for (int i = 0; i < 10000; i++)
    len += (size_t) sprintf(t + len, "%s{\"install_id\":\"p\",\"system\":\"sys\\n%d\",\"outputs\":"
                                     "{\"out\":\"" H1 "-a\"}}",
                            i ? "," : "", i);
  sprintf(t + len, "]}");
  m = parse_fails(t, "x86_64-linux", FRC_ECODE_SERVER);
  ck_assert_uint_lt(strlen(m), 300);
  free(m);
  /* a few of them: listed escaped, and capped */
  len = (size_t) sprintf(t, "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"install\":"
                            "{\"p\":{\"pkg-path\":\"p\"}}},\"packages\":[");
  for (int i = 0; i < 12; i++)
    len += (size_t) sprintf(t + len, "%s{\"install_id\":\"p\",\"system\":\"sys\\n%d\",\"outputs\":"
                                     "{\"out\":\"" H1 "-a\"}}",
                            i ? "," : "", i);
  sprintf(t + len, "]}");
  m = parse_fails(t, "x86_64-linux", FRC_ECODE_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(m, "sys\\n0, sys\\n1"));
  ck_assert_ptr_nonnull(strstr(m, "and 6 more"));
  ck_assert_ptr_null(strstr(m, "sys\\n11"));
}
END_TEST

/* Many descriptors, packages and builds: bounded, near-linear work. */
START_TEST(test_many_descriptors)
{
  size_t len = 0;
  cleanup_free char *t = xmalloc0(2u << 20);
  cleanup_free char *m = NULL;
  struct frc_lockfile l;
  double t0;

  len += (size_t) sprintf(t, "{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"build\":{");
  for (int b = 0; b < 64; b++)
    len += (size_t) sprintf(t + len, "%s\"b%d\":{\"runtime-packages\":[\"p1\",\"p2\"]}", b ? "," : "", b);
  len += (size_t) sprintf(t + len, "},\"install\":{");
  for (int p = 0; p < 9000; p++)
    len += (size_t) sprintf(t + len, "%s\"p%d\":{\"pkg-path\":\"p%d\"}", p ? "," : "", p, p);
  len += (size_t) sprintf(t + len, "}},\"packages\":[");
  for (int p = 0; p < 9000; p++)
    len += (size_t) sprintf(t + len, "%s{\"install_id\":\"p%d\",\"attr_path\":\"p%d\",\"group\":"
                                     "\"toplevel\",\"system\":\"%s\",\"outputs\":{\"out\":\"" H1 "-a\"}}",
                            p ? "," : "", p, p, p < 3 ? "x86_64-linux" : "aarch64-linux");
  sprintf(t + len, "]}");
  t0 = now_s();
  l = parse_ok(t, "x86_64-linux");
  ck_assert_msg(now_s() - t0 < TIME_BOUND_S, "took %.2f s", now_s() - t0);
  ck_assert_uint_eq(l.npkgs, 3);
  ck_assert_uint_eq(l.n_other, 3);
  ck_assert_uint_eq(l.n_build, 64 * 2); /* p1 and p2 in each build */
  frc_lockfile_release(&l);

  /* 65 builds: refused */
  m = parse_fails("{\"lockfile-version\":1,\"manifest\":{\"version\":1,\"build\":{\"0\":{},\"1\":{},"
                  "\"2\":{},\"3\":{},\"4\":{},\"5\":{},\"6\":{},\"7\":{},\"8\":{},\"9\":{},\"10\":{},"
                  "\"11\":{},\"12\":{},\"13\":{},\"14\":{},\"15\":{},\"16\":{},\"17\":{},\"18\":{},"
                  "\"19\":{},\"20\":{},\"21\":{},\"22\":{},\"23\":{},\"24\":{},\"25\":{},\"26\":{},"
                  "\"27\":{},\"28\":{},\"29\":{},\"30\":{},\"31\":{},\"32\":{},\"33\":{},\"34\":{},"
                  "\"35\":{},\"36\":{},\"37\":{},\"38\":{},\"39\":{},\"40\":{},\"41\":{},\"42\":{},"
                  "\"43\":{},\"44\":{},\"45\":{},\"46\":{},\"47\":{},\"48\":{},\"49\":{},\"50\":{},"
                  "\"51\":{},\"52\":{},\"53\":{},\"54\":{},\"55\":{},\"56\":{},\"57\":{},\"58\":{},"
                  "\"59\":{},\"60\":{},\"61\":{},\"62\":{},\"63\":{},\"64\":{}}},\"packages\":[]}",
                  "x86_64-linux", FRC_ECODE_SERVER);
  ck_assert_ptr_nonnull(strstr(m, "too many builds"));
}
END_TEST

/* De-duplication in linear time: one path in every package is one path to
 * realise. */
START_TEST(test_dedup)
{
  size_t len = 0;
  cleanup_free char *t = xmalloc0(1u << 20);
  struct frc_lockfile l;

  len += (size_t) sprintf(t, "{\"lockfile-version\":1,\"manifest\":{\"version\":1},\"packages\":[");
  for (int p = 0; p < 3000; p++)
    len += (size_t) sprintf(t + len, "%s{\"install_id\":\"p%d\",\"system\":\"x86_64-linux\","
                                     "\"store_path\":\"" H1 "-same\"}",
                            p ? "," : "", p);
  sprintf(t + len, "]}");
  l = parse_ok(t, "x86_64-linux");
  ck_assert_uint_eq(l.npkgs, 3000);
  ck_assert_uint_eq(l.npaths, 1);
  frc_lockfile_release(&l);
}
END_TEST

START_TEST(test_strset)
{
  struct frc_strset s = { 0 };
  char names[2000][8];
  for (int i = 0; i < 2000; i++)
    {
      snprintf(names[i], sizeof(names[i]), "n%d", i);
      ck_assert(frc_strset_add(&s, names[i]));
    }
  for (int i = 0; i < 2000; i++)
    {
      ck_assert(!frc_strset_add(&s, names[i]));
      ck_assert(frc_strset_has(&s, names[i]));
    }
  ck_assert(!frc_strset_has(&s, "n2000"));
  ck_assert_uint_eq(s.n, 2000);
  frc_strset_release(&s);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("lockfile");
  TCase *tc = tcase_create("lockfile");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, test_shapes);
  tcase_add_test(tc, test_wrong_system);
  tcase_add_test(tc, test_empty_environment);
  tcase_add_loop_test(tc, test_bad, 0, sizeof(bad_locks) / sizeof(bad_locks[0]));
  tcase_add_loop_test(tc, test_store_paths, 0, sizeof(paths) / sizeof(paths[0]));
  tcase_add_test(tc, test_store_path_bytes);
  tcase_add_test(tc, test_system);
  tcase_add_test(tc, test_v1_priorities);
  tcase_add_test(tc, test_v1_build_counter);
  tcase_add_test(tc, test_schema_outputs);
  tcase_add_test(tc, test_schema_refused);
  tcase_add_test(tc, test_systems);
  tcase_add_test(tc, test_lockfile_version);
  tcase_add_test(tc, test_mode);
  tcase_add_test(tc, test_bounds);
  tcase_add_test(tc, test_dedup);
  tcase_add_test(tc, test_many_descriptors);
  tcase_add_test(tc, test_strset);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
