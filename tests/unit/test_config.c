/* The node configuration (lib/config.c). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "util.h"

static int
parse(struct frc_config *c, const char *text, frc_error_t *err)
{
  cleanup_free char *tmp = xstrdup("/tmp/frc-test-config-XXXXXX");
  int fd = mkstemp(tmp);
  int r;
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write_all(fd, text, strlen(text)), 0);
  close(fd);
  r = frc_config_load(c, tmp, err);
  unlink(tmp);
  return r;
}

START_TEST(test_missing_file_defaults)
{
  struct frc_config c;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_config_load(&c, "/nonexistent/flox-runc.json", &err), 0);
  ck_assert(!c.from_file);
  ck_assert_ptr_null(c.runtime);
  ck_assert_str_eq(c.floxhub_url, "https://hub.flox.dev");
  ck_assert_str_eq(c.floxhub_git_url, "https://api.flox.dev/git");
  ck_assert_str_eq(c.store_root, "/");
  ck_assert_str_eq(c.store_prefix, "");
  ck_assert_str_eq(c.state_dir, "/var/lib/flox-runc");
  ck_assert_str_eq(c.substituters[0], "https://cache.nixos.org");
  ck_assert_str_eq(c.substituters[1], "https://cache.flox.dev");
  ck_assert_ptr_null(c.substituters[2]);
  ck_assert_ptr_nonnull(strstr(c.trusted_public_keys[1], "flox-cache-public-1:"));
  ck_assert_int_eq(c.on_missing_environment, FRC_ON_MISSING_FAIL);
  ck_assert_int_eq(c.deadline_seconds, 110);
  ck_assert(c.share_tree_symlinks);
  ck_assert(!c.allow_criu_config_annotation);
  ck_assert_int_eq(c.closure_hook_min_paths, 4);
  frc_config_release(&c);
}
END_TEST

/* A boolean key: true/false only; printed and compared. */
START_TEST(test_bool_key)
{
  struct frc_config c, d;
  frc_error_t err = NULL;
  cleanup_free char *json = NULL;
  ck_assert_int_eq(parse(&c, "{\"share_tree_symlinks\":false}", &err), 0);
  ck_assert(!c.share_tree_symlinks);
  json = frc_config_to_json(&c);
  ck_assert_ptr_nonnull(strstr(json, "\"share_tree_symlinks\": false"));
  ck_assert_int_eq(parse(&d, "{}", &err), 0);
  ck_assert(d.share_tree_symlinks);
  ck_assert(!frc_config_equal(&c, &d));
  frc_config_release(&d);
  ck_assert_int_eq(parse(&d, "{\"allow_criu_config_annotation\":true}", &err), 0);
  ck_assert(d.allow_criu_config_annotation);
  frc_config_release(&d);
  ck_assert_int_eq(parse(&d, "{\"share_tree_symlinks\":true}", &err), 0);
  ck_assert(d.share_tree_symlinks);
  frc_config_release(&d);
  ck_assert_int_eq(parse(&d, "{\"share_tree_symlinks\":false}", &err), 0);
  ck_assert(frc_config_equal(&c, &d));
  frc_config_release(&d);
  frc_config_release(&c);
}
END_TEST

START_TEST(test_all_keys)
{
  struct frc_config c;
  frc_error_t err = NULL;
  cleanup_free char *json = NULL;
  ck_assert_int_eq(parse(&c,
                         "{\"runtime\":\"/usr/bin/crun\",\"floxhub_url\":\"http://127.0.0.1:8080/\","
                         "\"store_root\":\"/tmp/store\",\"state_dir\":\"/tmp/state\","
                         "\"substituters\":[\"http://127.0.0.1:9000\"],"
                         "\"trusted_public_keys\":[\"test-1:abc=\"],"
                         "\"on_missing_environment\":\"passthrough\",\"deadline_seconds\":30}",
                         &err),
                   0);
  ck_assert(c.from_file);
  ck_assert_str_eq(c.runtime, "/usr/bin/crun");
  ck_assert_str_eq(c.floxhub_git_url, "http://127.0.0.1:8080/git");
  ck_assert_str_eq(c.store_root, "/tmp/store");
  ck_assert_str_eq(c.store_prefix, "/tmp/store");
  ck_assert_str_eq(c.substituters[0], "http://127.0.0.1:9000");
  ck_assert_ptr_null(c.substituters[1]);
  ck_assert_int_eq(c.on_missing_environment, FRC_ON_MISSING_PASSTHROUGH);
  ck_assert_int_eq(c.deadline_seconds, 30);
  json = frc_config_to_json(&c);
  ck_assert_ptr_nonnull(strstr(json, "\"runtime\": \"/usr/bin/crun\""));
  ck_assert_ptr_nonnull(strstr(json, "\"on_missing_environment\": \"passthrough\""));
  frc_config_release(&c);
}
END_TEST

START_TEST(test_git_url_derivation)
{
  struct frc_config c;
  frc_error_t err = NULL;
  ck_assert_int_eq(parse(&c, "{\"floxhub_url\":\"https://hub.example.org\"}", &err), 0);
  ck_assert_str_eq(c.floxhub_git_url, "https://api.example.org/git");
  frc_config_release(&c);
  ck_assert_int_eq(parse(&c, "{\"floxhub_url\":\"https://hub.example.org\","
                             "\"floxhub_git_url\":\"http://127.0.0.1:1/g\"}",
                         &err),
                   0);
  ck_assert_str_eq(c.floxhub_git_url, "http://127.0.0.1:1/g");
  frc_config_release(&c);
}
END_TEST

static const struct
{
  const char *json, *in_msg;
} bad[] = {
  { "{\"runtim\":\"runc\"}", "unknown key `runtim`" },
  { "{\"runtime\":1}", "`runtime`" },
  { "{\"runtime\":\"\"}", "`runtime`" },
  { "{\"floxhub_url\":\"ftp://x\"}", "`floxhub_url`" },
  { "{\"floxhub_url\":\"http://\"}", "`floxhub_url`" }, /* no host (fuzz_config) */
  { "{\"floxhub_git_url\":\"https:///git\"}", "`floxhub_git_url`" },
  { "{\"substituters\":[\"http://?x\"]}", "`substituters`" },
  { "{\"store_root\":\"relative\"}", "absolute path" },
  { "{\"state_dir\":[]}", "must be a string" },
  { "{\"substituters\":\"http://x\"}", "array of strings" },
  { "{\"substituters\":[1]}", "entry 0" },
  { "{\"trusted_public_keys\":[\"nokey\"]}", "name:base64" },
  { "{\"on_missing_environment\":\"ignore\"}", "\"fail\" or \"passthrough\"" },
  { "{\"deadline_seconds\":0}", "from 1 to 3600" },
  { "{\"deadline_seconds\":1.5}", "integer" },
  { "{\"deadline_seconds\":\"10\"}", "integer" },
  { "[]", "JSON object" },
  { "{", "invalid JSON" },
  { "{\"state_dir\":\"/a\\nb\"}", "control characters" },
  { "{\"bash\":\"bash-static\"}", "a static bash on the node" },
  { "{\"bash\":\"/nix/store/not-a-store-path/bin/bash\"}", "inside a store path" },
  { "{\"hook_shell\":\"/bin/sh\"}", "unknown key `hook_shell`" },
  { "{\"container_ca_bundle\":\"certs.pem\"}", "absolute path" },
  { "{\"closure_hook_min_paths\":0}", "from 1 to 1000000" },
  { "{\"share_tree_symlinks\":1}", "true or false, not a number" },
  { "{\"share_tree_symlinks\":\"no\"}", "true or false, not a string" },
  { "{\"allow_criu_config_annotation\":\"yes\"}", "true or false, not a string" },
};

START_TEST(test_bad)
{
  struct frc_config c;
  frc_error_t err = NULL;
  ck_assert_int_lt(parse(&c, bad[_i].json, &err), 0);
  ck_assert_msg(strstr(err->msg, bad[_i].in_msg) != NULL, "%s: %s", bad[_i].json, err->msg);
  ck_assert_msg(strstr(err->msg, "/tmp/frc-test-config-") != NULL, "names the file: %s", err->msg);
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  /* Nothing held after a failure: callers (doctor) have nothing to release
   * (the sanitizer build found the leak). */
  ck_assert_ptr_null(c.path);
  ck_assert_ptr_null(c.floxhub_url);
  ck_assert_ptr_null(c.substituters);
  frc_error_release(&err);
}
END_TEST

/* `bash`: a static bash on the node by default, or a file in a store path
 * (then its package is what the environment pins). */
START_TEST(test_bash)
{
  struct frc_config c;
  frc_error_t err = NULL;
  ck_assert_int_eq(parse(&c, "{}", &err), 0);
  ck_assert_str_eq(c.bash, "/bin/bash-static");
  ck_assert_ptr_null(c.bash_package);
  ck_assert_ptr_null(c.container_ca_bundle);
  frc_config_release(&c);
  ck_assert_int_eq(parse(&c, "{\"bash\":\"/nix/store/0c4mrh3pzz0vq2bgdq1q1d8y0ll8n8nf-bash-5.2/bin/bash\","
                             "\"container_ca_bundle\":\"/etc/pki/ca.pem\"}",
                         &err),
                   0);
  ck_assert_str_eq(c.bash_package, "/nix/store/0c4mrh3pzz0vq2bgdq1q1d8y0ll8n8nf-bash-5.2");
  ck_assert_str_eq(c.container_ca_bundle, "/etc/pki/ca.pem");
  frc_config_release(&c);
  ck_assert_int_eq(parse(&c, "{\"bash\":\"/opt/bash\"}", &err), 0);
  ck_assert_ptr_null(c.bash_package);
  frc_config_release(&c);
}
END_TEST

/* frc_config_parse on a zeroed struct (what the fuzz harness calls) used to
 * dereference the NULL floxhub_url; it starts from the defaults now. */
START_TEST(test_parse_text_defaults)
{
  struct frc_config c;
  frc_error_t err = NULL;
  memset(&c, 0, sizeof(c));
  ck_assert_int_eq(frc_config_parse(&c, "{\"deadline_seconds\": 7}", 23, "text", &err), 0);
  ck_assert_str_eq(c.floxhub_git_url, "https://api.flox.dev/git");
  ck_assert_str_eq(c.substituters[0], "https://cache.nixos.org");
  ck_assert_int_eq(c.deadline_seconds, 7);
  ck_assert_int_eq(c.fresh_seconds, 10);
  frc_config_release(&c);
}
END_TEST

START_TEST(test_env_path)
{
  setenv(FRC_CONFIG_ENV, "/some/where.json", 1);
  ck_assert_str_eq(frc_config_path(), "/some/where.json");
  unsetenv(FRC_CONFIG_ENV);
  ck_assert_str_eq(frc_config_path(), "/etc/flox-runc/config.json");
}
END_TEST

/* frc_url_mask: the userinfo (up to the authority's LAST '@') becomes
 * "***"; idempotent; everything else is kept. */
static const struct
{
  const char *in, *out;
} masks[] = {
  { "http://user:secret@proxy:3128", "http://***@proxy:3128" },
  { "http://u:p@ss@word@proxy:3128/x@y", "http://***@proxy:3128/x@y" },
  { "https://tok%40en@cache.example/path?q=a@b", "https://***@cache.example/path?q=a@b" },
  { "http://user:pw@[::1]:8080", "http://***@[::1]:8080" },
  { "user:pw@proxy:3128", "***@proxy:3128" },
  { "http://proxy:3128", "http://proxy:3128" },
  { "http://@proxy:3128", "http://@proxy:3128" },
  { "http://***@proxy:3128", "http://***@proxy:3128" },
  { "http://proxy:3128/a@b", "http://proxy:3128/a@b" },
};

START_TEST(test_url_mask)
{
  cleanup_free char *m = frc_url_mask(masks[_i].in);
  cleanup_free char *again = frc_url_mask(m);
  ck_assert_str_eq(m, masks[_i].out);
  ck_assert_str_eq(again, m);
}
END_TEST

/* frc_url_mask_text: every URL's userinfo in a program's message (Nix
 * quotes URLs in '...') masked, the rest kept. */
START_TEST(test_url_mask_text)
{
  static const struct
  {
    const char *in, *out;
  } t[] = {
    { "unable to download 'http://u:p@ss@127.0.0.1:5000/x.narinfo': HTTP error 401",
      "unable to download 'http://***@127.0.0.1:5000/x.narinfo': HTTP error 401" },
    { "a https://tok@h/p?q=a@b and s3://k:s@bucket, http://h/a@b",
      "a https://***@h/p?q=a@b and s3://***@bucket, http://h/a@b" },
    { "\"http://u:p@h\" <ftp://x@y> http://@h :// x://", "\"http://***@h\" <ftp://***@y> http://@h :// x://" },
    { "no url here", "no url here" },
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    {
      cleanup_free char *m = frc_url_mask_text(t[i].in);
      ck_assert_str_eq(m, t[i].out);
    }
}
END_TEST

/* `flox-runc config` prints the proxies' and caches' URLs without their
 * credentials, and what it prints loads back as the masked configuration. */
START_TEST(test_print_masks_credentials)
{
  struct frc_config c;
  frc_error_t err = NULL;
  cleanup_free char *text = NULL;
  ck_assert_int_eq(parse(&c, "{\"http_proxy\": \"http://alice:s3cr3t@proxy.internal:3128\","
                             " \"https_proxy\": \"http://bob:p@ss@proxy.internal:3129\","
                             " \"substituters\": [\"https://tok:cachepass@cache.example\"],"
                             " \"floxhub_url\": \"https://hubuser:hubpass@hub.example\"}",
                         &err),
                   0);
  text = frc_config_to_json(&c);
  ck_assert_ptr_null(strstr(text, "s3cr3t"));
  ck_assert_ptr_null(strstr(text, "p@ss"));
  ck_assert_ptr_null(strstr(text, "cachepass"));
  ck_assert_ptr_null(strstr(text, "hubpass"));
  ck_assert_ptr_null(strstr(text, "alice"));
  ck_assert_ptr_nonnull(strstr(text, "http://***@proxy.internal:3128"));
  ck_assert_ptr_nonnull(strstr(text, "https://***@cache.example"));
  /* masked, the configuration prints the same (tests/fuzz/fuzz_config.c
   * also loads the print back and compares) */
  frc_config_redact(&c);
  {
    cleanup_free char *masked = frc_config_to_json(&c);
    ck_assert_str_eq(masked, text);
  }
  frc_config_release(&c);
}
END_TEST

/* An invalid URL value is named in the error without its credentials. */
START_TEST(test_error_masks_credentials)
{
  struct frc_config c;
  frc_error_t err = NULL;
  ck_assert_int_lt(parse(&c, "{\"http_proxy\": \"ftp://alice:s3cr3t@proxy:21\"}", &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "http_proxy"));
  ck_assert_ptr_null(strstr(err->msg, "s3cr3t"));
  frc_error_release(&err);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_missing_file_defaults);
  tcase_add_test(tc, test_bool_key);
  tcase_add_test(tc, test_all_keys);
  tcase_add_test(tc, test_git_url_derivation);
  tcase_add_test(tc, test_bash);
  tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
  tcase_add_test(tc, test_parse_text_defaults);
  tcase_add_test(tc, test_env_path);
  tcase_add_loop_test(tc, test_url_mask, 0, sizeof(masks) / sizeof(masks[0]));
  tcase_add_test(tc, test_url_mask_text);
  tcase_add_test(tc, test_print_masks_credentials);
  tcase_add_test(tc, test_error_masks_credentials);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
