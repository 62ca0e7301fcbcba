/* A process inside a Flox environment (lib/activate.c): the variables of
 * each mode as Flox's sources give them, vars set directly or by bash,
 * command lookup through the store's symlinks, the bash wrapper, the tree
 * probe, and applying it twice. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activate.h"
#include "store.h"
#include "config.h"
#include "json.h"
#include "proc.h"
#include "spec.h"
#include "testdir.h"
#include "util.h"

#define ENV "/nix/var/flox-runc/envs/0123"
#define PKG "/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-1"

static char dir[] = "/tmp/frc-test-activate-XXXXXX";

static void
mk(const char *rel)
{
  cleanup_free char *cmd = xasprintf("mkdir -p '%s%s'", dir, rel);
  ck_assert_int_eq(system(cmd), 0);
}

/* <dir>/nix/store/<pkg>/bin/hello (executable) and the environment's bin ->
 * the package's bin, as lib/envbuild.c collapses it. */
static void
setup(void)
{
  cleanup_free char *hello = NULL, *link = NULL;
  FILE *f;
  frc_test_dir_make(dir, "activate");
  mk(PKG "/bin");
  mk(ENV);
  hello = xasprintf("%s%s/bin/hello", dir, PKG);
  f = fopen(hello, "w");
  ck_assert_ptr_nonnull(f);
  fputs("#!/bin/sh\n", f);
  fclose(f);
  ck_assert_int_eq(chmod(hello, 0755), 0);
  link = xasprintf("%s%s/bin", dir, ENV);
  ck_assert_int_eq(symlink(PKG "/bin", link), 0);
}

static void
teardown(void)
{
  frc_test_dir_remove(dir);
}

static yajl_val
process(const char *json)
{
  yajl_val v = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_json_parse(json, strlen(json), &v, &err), 0);
  return v;
}

static struct frc_env_features no_features;

static struct frc_activation
activation(enum frc_mode mode)
{
  static char *names[] = { (char *) "GREETING", NULL };
  static char *values[] = { (char *) "hi 'there'", NULL };
  struct frc_activation a = {
    .env_path = ENV,
    .store_prefix = dir,
    .description = "acme/hello:2",
    .owner = "acme",
    .name = "hello",
    .floxhub_url = "https://hub.flox.dev",
    .mode = mode,
    .var_names = names,
    .var_values = values,
    .nvars = 1,
    .features = &no_features,
    .env_cache = "/run/flox/env-cache",
  };
  return a;
}

#define ACTIVE "[{\"environment\":{\"type\":\"remote\",\"owner\":\"acme\",\"name\":\"hello\"," \
               "\"floxhub_url\":\"https://hub.flox.dev/\",\"version\":1},\"mode\":\"run\"}]"

static void
assert_idempotent(const struct frc_activation *a, yajl_val p)
{
  cleanup_free char *once = frc_json_serialize(p, NULL);
  cleanup_free char *twice = NULL;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_activate_process(a, p, &err), 0);
  twice = frc_json_serialize(p, NULL);
  ck_assert_str_eq(once, twice);
}

/* A hub URL with credentials (a private hub behind basic auth): the
 * container's _FLOX_ACTIVE_ENVIRONMENTS names the hub without them. */
START_TEST(test_hub_credentials_not_in_env)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;
  a.floxhub_url = "https://user:s3cret@hub.example";
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  const char *v = frc_process_getenv(p, "_FLOX_ACTIVE_ENVIRONMENTS");
  ck_assert_msg(strstr(v, "\"floxhub_url\":\"https://hub.example/\"") && !strstr(v, "s3cret")
                    && !strstr(v, "user"),
                "%s", v);
}
END_TEST

START_TEST(test_run_mode)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\",\"--x\"],\"cwd\":\"/work\",\"env\":["
                                    "\"PATH=/usr/bin:/bin:/usr/bin\",\"HOME=/root\",\"GREETING=old\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;

  a.disable_metrics = true;
  a.ca_bundle = "/run/flox/ca-bundle.crt";
  ck_assert_msg(frc_activate_process(&a, p, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV"), ENV);
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_CACHE"), "/run/flox/env-cache");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_PROJECT"), "/work");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_DESCRIPTION"), "acme/hello");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_DIRS"), ENV);
  ck_assert_str_eq(frc_process_getenv(p, "_FLOX_ACTIVE_ENVIRONMENTS"), ACTIVE);
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_PROMPT_ENVIRONMENTS"), "hello");
  /* bin only (sbin needs --add-sbin); the repeated /usr/bin deduplicated */
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), ENV "/bin:/usr/bin:/bin");
  ck_assert_str_eq(frc_process_getenv(p, "MANPATH"), ENV "/share/man:");
  ck_assert_str_eq(frc_process_getenv(p, "HOME"), "/root");
  ck_assert_str_eq(frc_process_getenv(p, "GREETING"), "hi 'there'"); /* nothing to evaluate */
  ck_assert_str_eq(frc_process_getenv(p, "INFOPATH"), ENV "/share/info:");
  ck_assert_str_eq(frc_process_getenv(p, "XDG_DATA_DIRS"), ENV "/share");
  ck_assert_str_eq(frc_process_getenv(p, "SSL_CERT_FILE"), "/run/flox/ca-bundle.crt");
  ck_assert_str_eq(frc_process_getenv(p, "NIX_SSL_CERT_FILE"), "/run/flox/ca-bundle.crt");
  ck_assert_ptr_null(frc_process_getenv(p, "LOCALE_ARCHIVE"));
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_DISABLE_METRICS"), "1");
  ck_assert_ptr_null(frc_process_getenv(p, "CPATH"));
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ACTIVATE_START_SERVICES"), "false");
  /* found through bin -> pkg/bin; argv[0] stays the name, found through PATH */
  ck_assert_str_eq(frc_process_arg(p, 0), "hello");
  ck_assert_str_eq(frc_process_arg(p, 1), "--x");
  ck_assert_uint_eq(frc_process_nargs(p), 2); /* no bash needed */
  assert_idempotent(&a, p);
}
END_TEST

START_TEST(test_existing_values)
{
  cleanup_json yajl_val p = process(
      "{\"args\":[\"hello\"],\"env\":[\"MANPATH=:/m\",\"INFOPATH=/i\",\"XDG_DATA_DIRS=/x\","
      "\"SSL_CERT_FILE=/mine.pem\",\"NIX_SSL_CERT_FILE=/other.pem\",\"FLOX_ENV_DIRS=/o\","
      "\"_FLOX_ACTIVE_ENVIRONMENTS=[{\\\"environment\\\":{\\\"type\\\":\\\"remote\\\","
      "\\\"name\\\":\\\"other\\\"},\\\"mode\\\":\\\"dev\\\"}]\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  struct frc_env_features f = { .ca_bundle = true, .locales = true };
  frc_error_t err = NULL;

  a.features = &f;
  a.generation = 3;
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  /* every FLOX_ENV_DIRS entry's share/man; no extra ':' */
  ck_assert_str_eq(frc_process_getenv(p, "MANPATH"), ENV "/share/man:/o/share/man::/m");
  ck_assert_str_eq(frc_process_getenv(p, "INFOPATH"), ENV "/share/info:/i");
  ck_assert_str_eq(frc_process_getenv(p, "XDG_DATA_DIRS"), ENV "/share:/x");
  ck_assert_str_eq(frc_process_getenv(p, "SSL_CERT_FILE"), "/mine.pem");
  ck_assert_str_eq(frc_process_getenv(p, "NIX_SSL_CERT_FILE"), "/mine.pem");
  ck_assert_str_eq(frc_process_getenv(p, "LOCALE_ARCHIVE"), ENV "/lib/locale/locale-archive");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_DIRS"), ENV ":/o");
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), ENV "/bin:/o/bin:" FRC_DEFAULT_PATH);
  ck_assert_str_eq(frc_process_getenv(p, "_FLOX_ACTIVE_ENVIRONMENTS"),
                   "[{\"environment\":{\"type\":\"remote\",\"owner\":\"acme\",\"name\":\"hello\","
                   "\"floxhub_url\":\"https://hub.flox.dev/\",\"version\":1},\"generation\":\"3\","
                   "\"mode\":\"run\"},{\"environment\":{\"type\":\"remote\",\"name\":\"other\"},"
                   "\"mode\":\"dev\"}]");
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_PROMPT_ENVIRONMENTS"), "hello other");
  assert_idempotent(&a, p);

  /* FLOX_ENV_DIRS already holding the environment: as it is (populate_env_dirs) */
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\"],\"env\":[\"FLOX_ENV_DIRS=/o:" ENV ":/o\",\"PATH=/usr/bin\"]}");
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_DIRS"), "/o:" ENV ":/o");
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), "/o/bin:" ENV "/bin:/usr/bin");
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\"],\"env\":[\"FLOX_ENV_DIRS=empty\"]}");
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_str_eq(frc_process_getenv(p, "FLOX_ENV_DIRS"), ENV);

  /* the environment's own bundle when the process has none */
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\"]}");
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_str_eq(frc_process_getenv(p, "SSL_CERT_FILE"), ENV "/etc/ssl/certs/ca-bundle.crt");
  ck_assert_str_eq(frc_process_getenv(p, "NIX_SSL_CERT_FILE"), ENV "/etc/ssl/certs/ca-bundle.crt");
}
END_TEST

START_TEST(test_dev_mode)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\"],\"env\":[\"PYTHONPATH=/p:" ENV
                                    "/lib/python3.12/site-packages\",\"JUPYTER_PATH=/j\"]}");
  struct frc_activation a = activation(FRC_MODE_DEV);
  struct frc_env_features f = { .java = true, .rust_src = true, .jupyter = true, .cmake = true,
                                .pip = true, .python = "3.12" };
  frc_error_t err = NULL;
  a.features = &f;
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_str_eq(frc_process_getenv(p, "PATH"), ENV "/bin:" FRC_DEFAULT_PATH);
  ck_assert_str_eq(frc_process_getenv(p, "CPATH"), ENV "/include");
  ck_assert_str_eq(frc_process_getenv(p, "LIBRARY_PATH"), ENV "/lib");
  ck_assert_str_eq(frc_process_getenv(p, "PKG_CONFIG_PATH"), ENV "/lib/pkgconfig:" ENV "/share/pkgconfig");
  ck_assert_str_eq(frc_process_getenv(p, "ACLOCAL_PATH"), ENV "/share/aclocal");
  ck_assert_str_eq(frc_process_getenv(p, "INFOPATH"), ENV "/share/info:");
  ck_assert_str_eq(frc_process_getenv(p, "RUST_SRC_PATH"), ENV);
  ck_assert_str_eq(frc_process_getenv(p, "JAVA_HOME"), ENV);
  ck_assert_str_eq(frc_process_getenv(p, "JUPYTER_PATH"), ENV "/share/jupyter:/j");
  ck_assert_str_eq(frc_process_getenv(p, "PYTHONPATH"), ENV "/lib/python3.12/site-packages:/p");
  ck_assert_str_eq(frc_process_getenv(p, "PIP_CONFIG_FILE"), "/run/flox/env-cache/pip.ini");
  ck_assert_str_eq(frc_process_getenv(p, "CMAKE_PREFIX_PATH"), ENV);
  ck_assert_ptr_null(frc_process_getenv(p, "FLOX_DISABLE_METRICS"));
  assert_idempotent(&a, p);

  /* none of them without what the tree has */
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\"]}");
  a.features = &no_features;
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_ptr_null(frc_process_getenv(p, "JAVA_HOME"));
  ck_assert_ptr_null(frc_process_getenv(p, "PYTHONPATH"));
  ck_assert_ptr_null(frc_process_getenv(p, "CMAKE_PREFIX_PATH"));
  ck_assert_ptr_null(frc_process_getenv(p, "JUPYTER_PATH"));
}
END_TEST

START_TEST(test_bash)
{
  cleanup_json yajl_val p = process("{\"args\":[\"hello\",\"a b\"]}");
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;

  a.has_hook = true;
  ck_assert_int_lt(frc_activate_process(&a, p, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "needs bash"));
  frc_error_release(&err);
  frc_json_freep(&p);
  p = process("{\"args\":[\"hello\",\"a b\"],\"env\":[\"GREETING=old\"]}");
  a.bash = PKG "/bin/bash";
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  ck_assert_uint_eq(frc_process_nargs(p), 6);
  ck_assert_str_eq(frc_process_arg(p, 0), PKG "/bin/bash");
  ck_assert_str_eq(frc_process_arg(p, 1), "-c");
  /* envrc and the hook in a process of their own (test_hook_process runs it) */
  ck_assert_ptr_nonnull(strstr(frc_process_arg(p, 2), "exec {__flox_runc_fd}< <(\n"));
  ck_assert_ptr_nonnull(strstr(frc_process_arg(p, 2), "    . '" ENV "/activate.d/envrc'\n    set +euo pipefail\n"
                                                     "    . '" ENV "/activate.d/hook-on-activate' 1>&2\n"));
  ck_assert_str_eq(frc_process_arg(p, 3), FRC_HOOK_ARGV0);
  ck_assert_str_eq(frc_process_arg(p, 4), "hello");
  ck_assert_str_eq(frc_process_arg(p, 5), "a b");
  /* bash exports the vars: the spec's value is not replaced */
  ck_assert_str_eq(frc_process_getenv(p, "GREETING"), "old");
  assert_idempotent(&a, p); /* not wrapped twice */

  /* a var to evaluate, no hook */
  {
    static char *names[] = { (char *) "PORT", NULL };
    static char *values[] = { (char *) "${PORT:-8000}", NULL };
    frc_json_freep(&p);
    p = process("{\"args\":[\"hello\"]}");
    a.has_hook = false;
    a.var_names = names;
    a.var_values = values;
    ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
    ck_assert_uint_eq(frc_process_nargs(p), 5);
    ck_assert_ptr_nonnull(strstr(frc_process_arg(p, 2), " . '" ENV "/activate.d/envrc'; }\n"));
    ck_assert_ptr_null(strstr(frc_process_arg(p, 2), "hook-on-activate"));
    ck_assert_ptr_null(frc_process_getenv(p, "PORT"));
  }
  ck_assert(!frc_activation_needs_bash((char *[]){ (char *) "a b 'c'" }, 1, false));
  ck_assert(frc_activation_needs_bash((char *[]){ (char *) "a\\b" }, 1, false));
  ck_assert(frc_activation_needs_bash((char *[]){ (char *) "`id`" }, 1, false));
  ck_assert(frc_activation_needs_bash((char *[]){ (char *) "a\"" }, 1, false));
}
END_TEST

/* The first activation records itself only in create's /run/flox tmpfs
 * (record), an exec tries the record first (attach; t_exec_attach runs
 * both through runc); without the tmpfs neither. */
START_TEST(test_attach_script)
{
  for (int k = 0; k < 3; k++)
    {
      cleanup_json yajl_val p = process("{\"args\":[\"hello\"]}");
      struct frc_activation a = activation(FRC_MODE_RUN);
      frc_error_t err = NULL;
      const char *script;
      a.bash = PKG "/bin/bash";
      a.has_hook = true;
      a.record = k > 0;
      a.attach = k == 2;
      ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
      script = frc_process_arg(p, 2);
      ck_assert((strstr(script, ">|'" FRC_ACTIVATION_RECORD "'") != NULL) == (k == 1));
      ck_assert((strstr(script, ">>" FRC_ACTIVATION_RECORD ";") != NULL) == (k == 1));
      ck_assert((strstr(script, "{__flox_runc_fd}<" FRC_ACTIVATION_RECORD ";") != NULL) == (k == 2));
      /* the hook still runs when there is nothing to attach to */
      ck_assert_ptr_nonnull(strstr(script, "/activate.d/hook-on-activate' 1>&2\n"));
    }
}
END_TEST

/* cli/flox-activations/src/cli/fix_paths.rs and prepend_and_dedup.rs tests */
START_TEST(test_prepend_dedup)
{
  static const char *const cases[][4] = {
    { "foo:bar", "bin", "", "foo/bin:bar/bin" },
    { "foo:bar", NULL, "", "foo:bar" },
    { "/flox_env", "suffix", "/path1:/path2", "/flox_env/suffix:/path1:/path2" },
    { "/a:/b", "bin", "/b/bin:/x:/a/bin:/x", "/a/bin:/b/bin:/x" },
    { "/a", "share/man", ":/m", "/a/share/man::/m" },
    { "/a", "share/man", "/m::/n", "/a/share/man:/m::/n" },
    { "/a:/a", NULL, "/a", "/a" },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_free char *v = frc_prepend_dedup(cases[i][0], cases[i][1], cases[i][2]);
      ck_assert_msg(strcmp(v, cases[i][3]) == 0, "case %zu: %s", i, v);
    }
}
END_TEST

/* A pod's PATH is hostile and a pod spec holds 200,000 entries: kept in
 * order, each once, in well under the test case's 10 s (comparing each
 * with those kept before it took ~60 s of the node's root CPU per create,
 * for PATH, MANPATH and more). */
START_TEST(test_prepend_dedup_hostile)
{
  enum { N = 200000 };
  cleanup_free char *old = xmalloc0((size_t) N * 16);
  cleanup_free char *want = NULL;
  cleanup_free char *v = NULL;
  char *w = old;
  for (int i = 0; i < N; i++)
    w += sprintf(w, "%s/d%d", i ? ":" : "", i % (N - 1)); /* the last repeats the first */
  v = frc_prepend_dedup("/e:/d1", "bin", old);
  *strrchr(old, ':') = '\0';
  want = xasprintf("/e/bin:/d1/bin:%s", old);
  ck_assert_str_eq(v, want);
}
END_TEST

static void
put_file(const char *rel, mode_t mode)
{
  cleanup_free char *p = xasprintf("%s%s", dir, rel);
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  ck_assert_int_eq(chmod(p, mode), 0);
}

/* What the dev profile scripts test, probed in the tree (through symlinks
 * into the store). */
START_TEST(test_features_probe)
{
  struct frc_env_features f;
  cleanup_free char *py = xasprintf("%s" PKG "/bin/python3", dir);
  cleanup_json yajl_val j = NULL;
  struct frc_env_features back;

  frc_env_features_probe(dir, ENV, &f);
  ck_assert(!f.java && !f.cmake && !f.pip && !f.rust_src && !f.jupyter && !f.ca_bundle);
  ck_assert_str_eq(f.python, "");

  put_file(PKG "/bin/python3.11", 0755);
  ck_assert_int_eq(symlink("python3.11", py), 0);
  put_file(PKG "/bin/java", 0755);
  put_file(PKG "/bin/cmake", 0644); /* not executable */
  mk(ENV "/rustc-std-workspace-std");
  mk(ENV "/share/jupyter");
  mk(ENV "/etc/ssl/certs");
  put_file(ENV "/etc/ssl/certs/ca-bundle.crt", 0444);
  mk(ENV "/lib/locale");
  put_file(ENV "/lib/locale/locale-archive", 0444);
  frc_env_features_probe(dir, ENV, &f);
  ck_assert(f.java && !f.cmake && !f.pip && f.rust_src && f.jupyter && f.ca_bundle && f.locales);
  ck_assert_str_eq(f.python, "3.11");
  j = frc_env_features_to_json(&f);
  frc_env_features_from_json(j, &back);
  ck_assert(back.java && !back.cmake && !back.pip && back.rust_src && back.jupyter && back.ca_bundle
            && back.locales);
  ck_assert_str_eq(back.python, "3.11");
  ck_assert(!f.profile_d_plugins && !back.profile_d_plugins);

  /* plugin profile.d scripts: a *.sh not named as one of the interpreter's,
   * not a dotfile */
  mk(ENV "/etc/profile.d");
  put_file(ENV "/etc/profile.d/0501_rust.sh", 0444);
  put_file(ENV "/etc/profile.d/0800_cuda.sh", 0444);
  put_file(ENV "/etc/profile.d/notes.txt", 0444);
  put_file(ENV "/etc/profile.d/.hidden.sh", 0444);
  put_file(ENV "/etc/profile.d/profile.d.functions", 0444);
  frc_env_features_probe(dir, ENV, &f);
  ck_assert(!f.profile_d_plugins);
  put_file(ENV "/etc/profile.d/zz-plugin.sh", 0444);
  frc_env_features_probe(dir, ENV, &f);
  ck_assert(f.profile_d_plugins);
  frc_json_freep(&j);
  j = frc_env_features_to_json(&f);
  frc_env_features_from_json(j, &back);
  ck_assert(back.profile_d_plugins);
}
END_TEST

/* A package's links (store contents are hostile) lead the probe, which
 * runs as root on the node, only into /nix/store: never into another
 * environment's tree or /nix/var/nix, which the container does not have. */
#define EVIL "/nix/store/1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-evil-1"
START_TEST(test_features_probe_confined)
{
  struct frc_env_features f;
  static const char *const links[][2] = {
    { ENV "/lib", EVIL "/lib" },
    { ENV "/etc", EVIL "/etc" },
    { EVIL "/lib", "/nix/var/flox-runc/envs/other/lib" },
    { EVIL "/etc", "../../var/flox-runc/envs/other/etc" },
    { PKG "/bin/java", "/nix/var/nix/java" },
    { EVIL "/store", "/nix/store" },
  };

  mk("/nix/var/flox-runc/envs/other/lib/python3.9");
  mk("/nix/var/flox-runc/envs/other/etc/profile.d");
  put_file("/nix/var/flox-runc/envs/other/etc/profile.d/secret.sh", 0444);
  mk("/nix/var/nix");
  put_file("/nix/var/nix/java", 0755);
  put_file(PKG "/bin/python3", 0755);
  mk(EVIL);
  for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
    {
      cleanup_free char *at = xasprintf("%s%s", dir, links[i][0]);
      ck_assert_int_eq(symlink(links[i][1], at), 0);
    }
  frc_env_features_probe(dir, ENV, &f);
  ck_assert_str_eq(f.python, "");
  ck_assert(!f.profile_d_plugins);
  ck_assert(!f.java);
  /* nor to the node's whole store (the container's lists its closure) */
  {
    cleanup_free char *whole = frc_nix_resolve(dir, EVIL "/store");
    cleanup_free char *named = frc_nix_resolve(dir, "/nix/store");
    ck_assert_ptr_null(whole);
    ck_assert_ptr_nonnull(named);
  }
  /* within the store, links are followed */
  {
    cleanup_free char *at = xasprintf("%s" PKG "/bin/java", dir);
    put_file(EVIL "/java", 0755);
    ck_assert_int_eq(unlink(at), 0);
    ck_assert_int_eq(symlink("../../1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-evil-1/java", at), 0);
    frc_env_features_probe(dir, ENV, &f);
    ck_assert(f.java);
  }
}
END_TEST

/* Dev mode with plugin profile.d scripts runs bash (envrc sources them),
 * even with vars that need none and no hook; run mode does not; without
 * the node's bash it fails naming the fix. */
START_TEST(test_plugin_bash)
{
  struct frc_env_features f = { .profile_d_plugins = true };
  frc_error_t err = NULL;

  for (int mode = 0; mode < 2; mode++)
    {
      cleanup_json yajl_val p = process("{\"args\":[\"hello\"]}");
      struct frc_activation a = activation(mode ? FRC_MODE_DEV : FRC_MODE_RUN);
      a.features = &f;
      a.bash = PKG "/bin/bash";
      ck_assert(!frc_activation_needs_bash(a.var_values, a.nvars, a.has_hook));
      ck_assert(frc_activation_wants_bash(&a) == (mode == 1));
      ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
      if (mode)
        {
          ck_assert_str_eq(frc_process_arg(p, 0), PKG "/bin/bash");
          ck_assert_ptr_nonnull(strstr(frc_process_arg(p, 2), " . '" ENV "/activate.d/envrc'; }\n"));
        }
      else
        ck_assert_str_eq(frc_process_arg(p, 0), "hello");
      assert_idempotent(&a, p);
    }
  {
    cleanup_json yajl_val p = process("{\"args\":[\"hello\"]}");
    struct frc_activation a = activation(FRC_MODE_DEV);
    a.features = &f;
    ck_assert_int_lt(frc_activate_process(&a, p, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, "profile.d scripts and the node has none"));
    frc_error_release(&err);
  }
}
END_TEST

/* Runs the activated process p (args and env, nothing inherited) with the
 * node's bash; its stdout in *r. */
static void
run_activated(yajl_val p, struct frc_proc_result *r)
{
  yajl_val args = frc_json_get(p, "args"), env = frc_json_get(p, "env");
  const char **argv = xmalloc0((args->u.array.len + env->u.array.len + 3) * sizeof(char *));
  size_t n = 0;
  frc_error_t err = NULL;
  struct frc_proc proc = { .capture_stdout = 1 };

  argv[n++] = "/usr/bin/env";
  argv[n++] = "-i";
  for (size_t i = 0; i < env->u.array.len; i++)
    argv[n++] = YAJL_GET_STRING(env->u.array.values[i]);
  for (size_t i = 0; i < args->u.array.len; i++)
    argv[n++] = YAJL_GET_STRING(args->u.array.values[i]);
  proc.argv = argv;
  proc.deadline_ns = frc_now_ns() + 3LL * 1000000000LL;
  ck_assert_msg(frc_proc_run(&proc, r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg(!r->timed_out, "the activated process did not finish in 3 s");
  free(argv);
}

/* <dir>/env with an empty envrc and HOOK_TEXT as its on-activate hook; the
 * environment's path. */
static char *
hook_env(const char *hook_text)
{
  cleanup_free char *envrc = xasprintf("%s/env/activate.d/envrc", dir);
  cleanup_free char *hook = xasprintf("%s/env/activate.d/hook-on-activate", dir);
  frc_error_t err = NULL;

  if (access(FRC_DEFAULT_BASH, X_OK) != 0)
    ck_abort_msg("%s is missing: apt-get install bash-static (tests/deps.sh)", FRC_DEFAULT_BASH);
  mk("/env/activate.d");
  ck_assert_int_eq(write_file_replace(envrc, "", 0, 0644, &err), 0);
  ck_assert_int_eq(write_file_replace(hook, hook_text, strlen(hook_text), 0644, &err), 0);
  return xasprintf("%s/env", dir);
}

/* The process JSON activated with env's hook by the node's bash and run;
 * legacy: on the path kept for a bash before 5.2 (the version it needs
 * raised). */
static void
run_hooked(const char *json, const char *env, bool legacy, struct frc_proc_result *r)
{
  cleanup_json yajl_val p = process(json);
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;
  char *script, *gate;

  a.env_path = env;
  a.store_prefix = "";
  a.bash = FRC_DEFAULT_BASH;
  a.has_hook = true;
  ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
  script = (char *) YAJL_GET_STRING(frc_json_get(p, "args")->u.array.values[2]);
  gate = strstr(script, "BASH_VERSINFO[1] >= 502");
  ck_assert_ptr_nonnull(gate);
  if (legacy)
    memcpy(gate + strlen("BASH_VERSINFO[1] >= "), "999", 3);
  run_activated(p, r);
}

/* What the hook's process hands back, on both of the wrapper's paths (bash
 * 5.2's `declare -px` lists, and the name scan kept for an older bash, forced
 * here by raising the version the first needs): values with a newline,
 * quotes, `$`, backquotes, backslashes and UTF-8 arrive as they are; an
 * unset, a variable turned into an array (bash exports no array: it used to
 * arrive as its first element) and one left without a value do not reach
 * the command; an environment far larger than a pipe's buffer (1500
 * variables, ~70 KiB) goes through whole. */
START_TEST(test_hook_values)
{
  static const char hook_text[] = "export NL=$'a\\nb' Q='x\"y$z`w\\v' U8='\xc3\xa9\xe2\x9c\x93'\n"
                                  "unset DROPME\ndeclare -ax ARR=(p q)\nunset VALUELESS; export VALUELESS\n";
  static const char want[] = "[a\nb][x\"y$z`w\\v][\xc3\xa9\xe2\x9c\x93][unset][unset][unset][1]1500\n";
  cleanup_free char *env = hook_env(hook_text);
  cleanup_free char *json = NULL;
  size_t json_len = 0;
  FILE *f = open_memstream(&json, &json_len);

  ck_assert_ptr_nonnull(f);
  fputs("{\"args\":[\"/bin/sh\",\"-c\",\"printf '[%s]' \\\"$NL\\\" \\\"$Q\\\" \\\"$U8\\\" \\\"${DROPME-unset}\\\" "
        "\\\"${ARR-unset}\\\" \\\"${VALUELESS-unset}\\\" \\\"${KEEP-}\\\"; env | grep -c '^BIG_'\"],"
        "\"cwd\":\"/\",\"env\":[\"PATH=/usr/bin:/bin\",\"DROPME=1\",\"ARR=x\",\"VALUELESS=v\",\"KEEP=1\"",
        f);
  for (int i = 0; i < 1500; i++)
    fprintf(f, ",\"BIG_%04d_SERVICE_PORT=tcp://10.96.%d.%d:8080\"", i, i / 250, i % 250);
  fputs("]}", f);
  ck_assert_int_eq(fclose(f), 0);
  for (int legacy = 0; legacy < 2; legacy++)
    {
      cleanup_proc_result struct frc_proc_result r = { 0 };
      run_hooked(json, env, legacy, &r);
      ck_assert_msg(r.status == 0, "legacy %d: status %d, stderr %s", legacy, r.status, r.last_err ? r.last_err : "");
      ck_assert_msg(strcmp(r.out, want) == 0, "legacy %d: stdout [%s], want [%s]", legacy, r.out, want);
    }
}
END_TEST

/* What the hook's process hands back is data, never code (bash 5.2's path):
 * a line the hook writes into the pipe itself, with a command substitution
 * in it, is not evaluated (it ran in the parent: the eval of the list), nor
 * a name with a subscript holding one (`unset` evaluated it);
 * SHELLOPTS the hook exports does not reach the command (Flox ignores it,
 * env_trace.rs IGNORED_VARS: it carried the wrapper's errexit and nounset
 * into a bash command); an exported nameref reaches it as bash exports it,
 * its target's name (it was unset); an environment of ~1.4 MiB (12 values
 * of 120 KiB) goes through in well under the 3 s deadline (the list was
 * matched whole after each 4 KiB block read: quadratic, ~7 s); a hook that
 * defines functions named `builtin` and `set` still completes (the list
 * was its function's output: "did not complete normally"). */
START_TEST(test_hook_hostile)
{
  cleanup_free char *mark = xasprintf("%s/evaluated", dir);
  cleanup_free char *hook_text = xasprintf(
      "for f in /proc/$BASHPID/fd/*; do if [[ $(readlink \"$f\") == pipe:* ]]; then "
      "printf 'declare -x EVIL=\"$(touch %s)\"\\ndeclare -x EV2=$(touch %s)\\ndeclare -a PIPESTATUS[$(touch %s)]\\n' >\"$f\"; fi; done 2>/dev/null\n"
      "export SHELLOPTS 2>/dev/null\nexport T=t\ndeclare -nx R=T\nbuiltin() { :; }\nset() { :; }\n",
      mark, mark, mark);
  static const char want[] = "[unset][unset][T]0 12\n";
  cleanup_free char *big = xmalloc0(120 * 1024 + 1);
  cleanup_free char *json = NULL;
  size_t json_len = 0;
  cleanup_free char *env = hook_env(hook_text);
  FILE *f;

  memset(big, 'b', 120 * 1024);
  f = open_memstream(&json, &json_len);
  ck_assert_ptr_nonnull(f);
  fputs("{\"args\":[\"/bin/sh\",\"-c\",\"printf '[%s]' \\\"${EVIL-unset}\\\" \\\"${EV2-unset}\\\" \\\"${R-}\\\"; "
        "echo $(env | grep -c '^SHELLOPTS=') $(env | grep -c '^BIG_')\"],"
        "\"cwd\":\"/\",\"env\":[\"PATH=/usr/bin:/bin\"",
        f);
  for (int i = 0; i < 12; i++)
    fprintf(f, ",\"BIG_%02d=%s\"", i, big);
  fputs("]}", f);
  ck_assert_int_eq(fclose(f), 0);
  {
    cleanup_proc_result struct frc_proc_result r = { 0 };
    run_hooked(json, env, false, &r);
    ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.last_err ? r.last_err : "");
    ck_assert_msg(strcmp(r.out, want) == 0, "stdout [%s], want [%s]", r.out, want);
    ck_assert_msg(access(mark, F_OK) != 0, "a line the hook wrote into the pipe was evaluated");
  }
}
END_TEST

/* Flox runs envrc and the hook in its activate script, a process of its
 * own, and applies what they change in the environment to the command
 * (start.rs:98-118, attach.rs:262-280): the hook's exports and unsets reach
 * the command, its `cd` and `umask` do not; it runs under umask 077
 * (activate:239-241); an `exit` (any status) or an
 * `exec` in it fails the activation with exit 1 and the command does not
 * run; so does a failing envrc.  A background job of the hook does not hold
 * the command back. */
START_TEST(test_hook_process)
{
  static const struct
  {
    const char *hook; /* NULL: none */
    const char *envrc;
    int status;
    const char *out, *err;
  } cases[] = {
    { "echo hook-out\nexport HOOK_UMASK=\"$(umask)\" HOOK_ARGS=\"$#\"\ncd /usr\numask 027\nexport FROM_HOOK=\"a b\"\nunset DROPME\n"
      "export PATH=\"/hook:$PATH\"\n( sleep 20; : ) >/dev/null 2>&1 &\n",
      "export V=\"$HOME/v\"\n", 0, "/|0022|/h/v|a b|unset|0077|0|0|/hook:", "hook-out" },
    { "return 2\n", "", 0, "/|0022||-|1|-|-|0|", NULL },
    { "exit 0\n", "", 1, "", "did not complete normally" },
    { "exit 3\n", "", 1, "", "Running hook.on-activate failed" },
    { "exec /bin/sh -c 'echo exec-ran'\n", "", 1, "", "did not complete normally" },
    { "true\n", "export V=\"$UNDEFINED_IN_TEST\"\n", 1, "", "Running hook.on-activate failed" },
    { NULL, "export V=\"$UNDEFINED_IN_TEST\"\n", 1, "", "Running hook.on-activate failed" },
    { NULL, "export V=\"$HOME/w\"\n", 0, "/|0022|/h/w|-|1|-|-|0|", NULL },
  };
  cleanup_free char *env = xasprintf("%s/env", dir);
  cleanup_free char *ad = xasprintf("%s/env/activate.d", dir);

  if (access(FRC_DEFAULT_BASH, X_OK) != 0)
    ck_abort_msg("%s is missing: apt-get install bash-static (tests/deps.sh)", FRC_DEFAULT_BASH);
  mk("/env/activate.d");
  ck_assert_int_eq(chdir("/"), 0);
  umask(022);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
      cleanup_json yajl_val p = process(
          "{\"args\":[\"/bin/sh\",\"-c\",\"echo \\\"$(pwd)|$(umask)|${V-}|${FROM_HOOK--}|${DROPME-unset}|${HOOK_UMASK--}|${HOOK_ARGS--}|$(tr '\\\\0' '\\\\n' </proc/$$/environ | grep -c '^PWD=')|${PATH%%/usr/bin*}\\\"\"],\"cwd\":\"/\",\"env\":[\"HOME=/h\",\"DROPME=1\",\"PATH=/usr/bin:/bin\"]}");
      static char *names[] = { (char *) "V", NULL };
      static char *values[] = { (char *) "$HOME", NULL };
      struct frc_activation a = activation(FRC_MODE_RUN);
      cleanup_proc_result struct frc_proc_result r = { 0 };
      cleanup_free char *envrc = xasprintf("%s/envrc", ad);
      cleanup_free char *hook = xasprintf("%s/hook-on-activate", ad);
      frc_error_t err = NULL;

      a.env_path = env;
      a.store_prefix = "";
      a.bash = FRC_DEFAULT_BASH;
      a.var_names = names;
      a.var_values = values;
      a.has_hook = cases[i].hook != NULL;
      ck_assert_int_eq(write_file_replace(envrc, cases[i].envrc, strlen(cases[i].envrc), 0644, &err), 0);
      unlink(hook);
      if (cases[i].hook)
        ck_assert_int_eq(write_file_replace(hook, cases[i].hook, strlen(cases[i].hook), 0644, &err), 0);
      ck_assert_int_eq(frc_activate_process(&a, p, &err), 0);
      run_activated(p, &r);
      ck_assert_msg(r.status == cases[i].status, "case %zu: status %d, stderr %s", i, r.status,
                    r.last_err ? r.last_err : "");
      {
        /* PATH: env/bin first, then the hook's and the old entries */
        cleanup_free char *want = cases[i].out[0] ? xasprintf("%s%s/bin:\n", cases[i].out, env) : xstrdup("");
        ck_assert_msg(strcmp(r.out, want) == 0, "case %zu: stdout [%s], want [%s]", i, r.out, want);
      }
      if (cases[i].err)
        ck_assert_msg(r.last_err && strstr(r.last_err, cases[i].err), "case %zu: stderr %s", i,
                      r.last_err ? r.last_err : "");
    }

  /* a command the hook puts on PATH (a venv, a tool in FLOX_ENV_CACHE): in
   * neither the environment nor the (empty) image, found when the hook has
   * run; one nowhere fails as Flox's exec does */
  {
    cleanup_free char *tool = xasprintf("%s/hookbin/hooktool", dir);
    cleanup_free char *hook = xasprintf("%s/hook-on-activate", ad);
    cleanup_free char *text = xasprintf("export PATH=\"%s/hookbin:$PATH\"\n", dir);
    cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
    cleanup_free char *envrc = xasprintf("%s/envrc", ad);
    const char *cmds[] = { "hooktool", "missingtool" };
    frc_error_t err = NULL;

    mk("/hookbin");
    mk("/rootfs");
    ck_assert_int_eq(write_file_replace(tool, "#!/bin/sh\necho hooktool-ran\n", 27, 0755, &err), 0);
    ck_assert_int_eq(write_file_replace(hook, text, strlen(text), 0644, &err), 0);
    ck_assert_int_eq(write_file_replace(envrc, "", 0, 0644, &err), 0);
    for (size_t i = 0; i < 2; i++)
      {
        cleanup_free char *json = xasprintf("{\"args\":[\"%s\"],\"env\":[\"PATH=/usr/bin:/bin\"]}", cmds[i]);
        cleanup_json yajl_val p = process(json);
        struct frc_activation a = activation(FRC_MODE_RUN);
        cleanup_proc_result struct frc_proc_result r = { 0 };

        a.env_path = env;
        a.store_prefix = "";
        a.bash = FRC_DEFAULT_BASH;
        a.has_hook = true;
        a.rootfs = rootfs;
        ck_assert_msg(frc_activate_process(&a, p, &err) == 0, "%s", err ? err->msg : "");
        run_activated(p, &r);
        if (i == 0)
          {
            ck_assert_msg(r.status == 0, "hooktool: status %d, %s", r.status, r.last_err ? r.last_err : "");
            ck_assert_str_eq(r.out, "hooktool-ran\n");
          }
        else
          {
            ck_assert_int_eq(r.status, 1);
            ck_assert_msg(r.last_err && strstr(r.last_err, "missingtool: command not found"), "%s",
                          r.last_err ? r.last_err : "");
          }
      }
  }
}
END_TEST

START_TEST(test_command_lookup)
{
  struct frc_activation a = activation(FRC_MODE_RUN);
  frc_error_t err = NULL;
  cleanup_json yajl_val missing = process("{\"args\":[\"nope\"],\"env\":[\"PATH=/bin\"]}");
  cleanup_json yajl_val explicit_path = process("{\"args\":[\"/bin/sh\",\"-c\",\"x\"]}");
  cleanup_json yajl_val none = process("{\"args\":[]}");
  cleanup_json yajl_val in_sbin = process("{\"args\":[\"admin\"]}");
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);

  a.rootfs = rootfs; /* an empty image */
  mk("/rootfs/bin");
  ck_assert_int_lt(frc_activate_process(&a, missing, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "command \"nope\" is in neither the environment acme/hello:2 nor the image"));
  frc_error_release(&err);
  ck_assert_int_eq(frc_activate_process(&a, explicit_path, &err), 0);
  ck_assert_str_eq(frc_process_arg(explicit_path, 0), "/bin/sh");
  /* in sbin, not on PATH without --add-sbin: the path */
  mk(ENV "/sbin");
  put_file(ENV "/sbin/admin", 0755);
  ck_assert_int_eq(frc_activate_process(&a, in_sbin, &err), 0);
  ck_assert_str_eq(frc_process_arg(in_sbin, 0), ENV "/sbin/admin");
  ck_assert_int_lt(frc_activate_process(&a, none, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "has no command"));
  frc_error_release(&err);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("activate");
  TCase *tc = tcase_create("activate");
  SRunner *sr;
  int failed;
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_hub_credentials_not_in_env);
  tcase_add_test(tc, test_run_mode);
  tcase_add_test(tc, test_existing_values);
  tcase_add_test(tc, test_dev_mode);
  tcase_add_test(tc, test_bash);
  tcase_add_test(tc, test_prepend_dedup);
  tcase_add_test(tc, test_features_probe);
  tcase_add_test(tc, test_features_probe_confined);
  tcase_add_test(tc, test_plugin_bash);
  tcase_add_test(tc, test_attach_script);
  tcase_add_test(tc, test_command_lookup);
  tcase_add_test(tc, test_hook_process);
  tcase_add_test(tc, test_hook_values);
  tcase_add_test(tc, test_hook_hostile);
  suite_add_tcase(s, tc);
  tc = tcase_create("hostile");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_prepend_dedup_hostile);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
