/* The flox.dev/... annotation contract and container selection
 * (lib/annotations.c, lib/select.c). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "annotations.h"
#include "json.h"
#include "select.h"
#include "util.h"

static yajl_val
parse(const char *json)
{
  yajl_val v = NULL;
  frc_error_t err = NULL;
  ck_assert_msg(frc_json_parse(json, strlen(json), &v, &err) == 0, "bad test JSON: %s", json);
  return v;
}

/* Annotations object with one flox.dev/environment value. */
static yajl_val
with_env(const char *value)
{
  yajl_val obj = frc_json_new_object();
  frc_json_set(obj, FRC_ANN_ENVIRONMENT, frc_json_new_string(value));
  return obj;
}

static const struct
{
  const char *value;
  const char *owner, *name;
  unsigned gen;
} good_envs[] = {
  { "acme/hello", "acme", "hello", 0 },
  { "acme/hello:3", "acme", "hello", 3 },
  { "Ac.m_e-1/my.env_2-x:999999999", "Ac.m_e-1", "my.env_2-x", 999999999 },
  { "a/b", "a", "b", 0 },
  { "flox/flox-kind-demo:12", "flox", "flox-kind-demo", 12 },
};

START_TEST(test_env_good)
{
  struct frc_envref r;
  frc_error_t err = NULL;
  char buf[256];
  ck_assert_msg(frc_envref_parse(good_envs[_i].value, &r, &err) == 0, "%s: %s", good_envs[_i].value,
                err ? err->msg : "");
  ck_assert_str_eq(r.owner, good_envs[_i].owner);
  ck_assert_str_eq(r.name, good_envs[_i].name);
  ck_assert_uint_eq(r.generation, good_envs[_i].gen);
  ck_assert_str_eq(frc_envref_format(&r, buf, sizeof(buf)), good_envs[_i].value);
}
END_TEST

static const char *const bad_envs[] = {
  "",
  "acme",
  "acme/",
  "/hello",
  "acme/hello:",
  "acme/hello:0",
  "acme/hello:01",
  "acme/hello:-1",
  "acme/hello:1x",
  "acme/hello:1234567890",
  "acme/hello@3",
  "acme/hello/extra",
  "../etc",
  "acme/..",
  "acme/../x",
  "../acme/x",
  "acme/a..b",
  ".acme/x",
  "acme/.hidden",
  "acme/x.",
  "acme/x.lock",
  "acme/hel lo",
  " acme/hello",
  "acme/hello\n",
  "acme/hé",
  "acme/hello;rm -rf /",
  "acme/$(id)",
  "acme\\x/y",
  "acme/x:3:4",
};

START_TEST(test_env_bad)
{
  struct frc_envref r;
  frc_error_t err = NULL;
  ck_assert_msg(frc_envref_parse(bad_envs[_i], &r, &err) < 0, "accepted \"%s\"", bad_envs[_i]);
  ck_assert_ptr_nonnull(strstr(err->msg, FRC_ANN_ENVIRONMENT));
  ck_assert_ptr_nonnull(strstr(err->msg, "owner/name:N"));
  ck_assert_ptr_null(strchr(err->msg, '\n'));
  frc_error_release(&err);
}
END_TEST

START_TEST(test_env_too_long)
{
  char owner[FRC_OWNER_MAX + 2], val[512];
  struct frc_envref r;
  frc_error_t err = NULL;

  memset(owner, 'a', sizeof(owner) - 1);
  owner[sizeof(owner) - 1] = '\0';
  snprintf(val, sizeof(val), "%s/x", owner);
  ck_assert_int_lt(frc_envref_parse(val, &r, &err), 0);
  frc_error_release(&err);
  owner[FRC_OWNER_MAX] = '\0';
  snprintf(val, sizeof(val), "%s/x", owner);
  ck_assert_int_eq(frc_envref_parse(val, &r, &err), 0);
}
END_TEST

START_TEST(test_full_parse)
{
  cleanup_json yajl_val ann = parse(
      "{\"flox.dev/environment\":\"acme/hello:2\",\"flox.dev/activate-mode\":\"dev\","
      "\"flox.dev/nix-mutable\":\"true\",\"flox.dev/disable-metrics\":\"false\","
      "\"flox.dev/skip-containers\":\" istio-proxy ,vault-agent,, \","
      "\"flox.dev/skip-containers-exec\":\"build\",\"other\":\"x\"}");
  cleanup_annotations struct frc_annotations a;
  frc_error_t err = NULL;

  ck_assert_int_eq(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert(a.has_environment);
  ck_assert_str_eq(a.env.owner, "acme");
  ck_assert_uint_eq(a.env.generation, 2);
  ck_assert_int_eq(a.mode, FRC_MODE_DEV);
  ck_assert(a.has_mode);
  ck_assert(a.nix_mutable);
  ck_assert(!a.disable_metrics);
  ck_assert_str_eq(a.skip_containers[0], "istio-proxy");
  ck_assert_str_eq(a.skip_containers[1], "vault-agent");
  ck_assert_ptr_null(a.skip_containers[2]);
  ck_assert_str_eq(a.skip_containers_exec[0], "build");
  ck_assert(frc_name_list_contains(a.skip_containers, "vault-agent"));
  ck_assert(!frc_name_list_contains(a.skip_containers, "vault"));
}
END_TEST

START_TEST(test_defaults)
{
  cleanup_annotations struct frc_annotations a;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_annotations_parse(NULL, &a, &err), 0);
  ck_assert(!a.has_environment);
  ck_assert_int_eq(a.mode, FRC_MODE_RUN);
  ck_assert(!a.has_mode); /* not given: the manifest's options.activate.mode decides */
  ck_assert(!a.nix_mutable && !a.disable_metrics);
  ck_assert_ptr_nonnull(a.skip_containers);
  ck_assert_ptr_null(a.skip_containers[0]);
}
END_TEST

static const struct
{
  const char *key, *value, *expect_in_msg;
} bad_values[] = {
  { FRC_ANN_ACTIVATE_MODE, "build", "\"run\" or \"dev\"" },
  { FRC_ANN_ACTIVATE_MODE, "RUN", "\"run\" or \"dev\"" },
  { FRC_ANN_ACTIVATE_MODE, "", "\"run\" or \"dev\"" },
  { FRC_ANN_NIX_MUTABLE, "yes", "\"true\" or \"false\"" },
  { FRC_ANN_NIX_MUTABLE, "True", "\"true\" or \"false\"" },
  { FRC_ANN_DISABLE_METRICS, "1", "\"true\" or \"false\"" },
  { FRC_ANN_SKIP_CONTAINERS, "Istio", "container names" },
  { FRC_ANN_SKIP_CONTAINERS, "a/b", "container names" },
  { FRC_ANN_SKIP_CONTAINERS, "-x", "container names" },
  { FRC_ANN_SKIP_CONTAINERS, "../x", "container names" },
  { FRC_ANN_SKIP_CONTAINERS_EXEC, "x_y", "container names" },
  { FRC_ANN_SKIP_CONTAINERS_EXEC, "a b", "container names" },
  { FRC_ANN_ACTIVATE_MODE, "run\x01", "control characters" },
  { FRC_ANN_ACTIVATE_MODE, "run\n", "control characters" },
};

START_TEST(test_bad_values)
{
  cleanup_json yajl_val ann = with_env("acme/hello");
  cleanup_annotations struct frc_annotations a;
  frc_error_t err = NULL;

  frc_json_set(ann, bad_values[_i].key, frc_json_new_string(bad_values[_i].value));
  ck_assert_int_lt(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert_msg(strstr(err->msg, bad_values[_i].key) != NULL, "%s", err->msg);
  ck_assert_msg(strstr(err->msg, bad_values[_i].expect_in_msg) != NULL, "%s", err->msg);
  ck_assert_msg(strchr(err->msg, '\n') == NULL && strchr(err->msg, '\x01') == NULL, "%s", err->msg);
  frc_error_release(&err);
}
END_TEST

START_TEST(test_hostile)
{
  /* huge value: rejected, and the message is bounded and escaped */
  cleanup_free char *huge = xmalloc0(1 << 20);
  cleanup_json yajl_val ann = NULL;
  cleanup_annotations struct frc_annotations a;
  frc_error_t err = NULL;

  memset(huge, 'a', (1 << 20) - 1);
  ann = with_env(huge);
  ck_assert_int_lt(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert_uint_lt(strlen(err->msg), 600);
  ck_assert_ptr_nonnull(strstr(err->msg, "..."));
  frc_error_release(&err);
  frc_annotations_release(&a);

  /* non-string values */
  frc_json_freep(&ann);
  ann = parse("{\"flox.dev/environment\":42}");
  ck_assert_int_lt(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "must be a string"));
  frc_error_release(&err);
  frc_annotations_release(&a);

  /* escape sequences in messages */
  frc_json_freep(&ann);
  ann = with_env("acme/\x1b[31mred\"q\\");
  ck_assert_int_lt(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert_msg(strstr(err->msg, "\\x1b[31mred\\\"q\\\\") != NULL, "%s", err->msg);
  frc_error_release(&err);
  frc_annotations_release(&a);

  /* too many skip entries */
  {
    char list[64 * 4 + 16] = "";
    for (int i = 0; i < 65; i++)
      sprintf(list + strlen(list), "c%d,", i);
    frc_json_freep(&ann);
    ann = with_env("acme/x");
    frc_json_set(ann, FRC_ANN_SKIP_CONTAINERS, frc_json_new_string(list));
    ck_assert_int_lt(frc_annotations_parse(ann, &a, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, "at most 64"));
    frc_error_release(&err);
  }
}
END_TEST

START_TEST(test_duplicate_keys_last_wins)
{
  cleanup_json yajl_val ann = parse("{\"flox.dev/activate-mode\":\"bogus\",\"flox.dev/environment\":"
                                    "\"a/b\",\"flox.dev/activate-mode\":\"dev\"}");
  cleanup_annotations struct frc_annotations a;
  frc_error_t err = NULL;
  ck_assert_int_eq(frc_annotations_parse(ann, &a, &err), 0);
  ck_assert_int_eq(a.mode, FRC_MODE_DEV);
}
END_TEST

static struct frc_config
config(enum frc_on_missing m)
{
  struct frc_config c = { 0 };
  c.on_missing_environment = m;
  return c;
}

#define VICTIM "a9c6047da4afd049da856780c0880715f7eb012132432f3c755cb5e2dc02d120"
#define OWN "5b1e8c2f0d7a4e6b9c3f1a2d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c"

START_TEST(test_identity)
{
  struct frc_identity id;
  cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-type\":\"sandbox\","
                                  "\"io.kubernetes.cri.sandbox-name\":\"p\"}");
  cleanup_json yajl_val b = parse("{\"io.kubernetes.cri.container-type\":\"container\","
                                  "\"io.kubernetes.cri.container-name\":\"app\"}");
  cleanup_json yajl_val c = parse("{\"io.kubernetes.cri-o.ContainerType\":\"container\","
                                  "\"io.kubernetes.cri-o.ContainerName\":\"k8s_build_pod_ns_uid_0\"}");
  cleanup_json yajl_val d = parse("{\"io.kubernetes.cri-o.ContainerType\":\"sandbox\"}");
  cleanup_json yajl_val e = parse("{\"io.kubernetes.cri-o.Labels\":\"{\\\"io.kubernetes.container."
                                  "name\\\":\\\"helper\\\"}\"}");
  cleanup_json yajl_val f = parse("{\"io.kubernetes.cri.container-name\":\"../../etc\"}");

  frc_identity_from_annotations(a, &id);
  ck_assert(id.sandbox);
  ck_assert_ptr_null(id.name);
  frc_identity_from_annotations(b, &id);
  ck_assert(!id.sandbox);
  ck_assert_str_eq(id.name, "app");
  free(id.name);
  frc_identity_from_annotations(c, &id);
  ck_assert(!id.sandbox);
  ck_assert_str_eq(id.name, "build");
  free(id.name);
  frc_identity_from_annotations(d, &id);
  ck_assert(id.sandbox);
  frc_identity_from_annotations(e, &id);
  ck_assert_str_eq(id.name, "helper");
  free(id.name);
  frc_identity_from_annotations(f, &id);
  ck_assert_ptr_null(id.name);
  frc_identity_from_annotations(NULL, &id);
  ck_assert(!id.sandbox);
  ck_assert_ptr_null(id.name);
}
END_TEST

/* CRI-O copies every pod annotation into the spec (then sets its own): a
 * pod writing containerd's keys chooses neither its sandbox id (another
 * pod's FLOX_ENV_CACHE), its kind nor its name; containerd's own keys,
 * which it sets after the allow-listed pod annotations, still count. */
START_TEST(test_identity_crio_spoof)
{
  struct frc_identity id;
  cleanup_json yajl_val crio = parse(
      "{\"io.kubernetes.cri.sandbox-id\":\"" VICTIM "\","
      "\"io.kubernetes.cri.container-type\":\"sandbox\","
      "\"io.kubernetes.cri.container-name\":\"sidecar\","
      "\"io.kubernetes.cri-o.ContainerType\":\"container\","
      "\"io.kubernetes.cri-o.SandboxID\":\"" OWN "\","
      "\"io.kubernetes.container.name\":\"app\"}");
  cleanup_json yajl_val containerd = parse(
      "{\"io.kubernetes.cri.sandbox-id\":\"" OWN "\","
      "\"io.kubernetes.cri.container-type\":\"container\","
      "\"io.kubernetes.cri.container-name\":\"app\"}");

  /* containerd with a pod_annotations pattern that lets a pod write
   * CRI-O's keys (containerd sets only its own after them) */
  cleanup_json yajl_val containerd_spoofed = parse(
      "{\"io.kubernetes.cri-o.ContainerType\":\"container\","
      "\"io.kubernetes.cri-o.SandboxID\":\"" VICTIM "\","
      "\"io.kubernetes.cri.sandbox-id\":\"" OWN "\","
      "\"io.kubernetes.cri.container-type\":\"container\","
      "\"io.kubernetes.cri.container-name\":\"app\"}");

  /* the two engines' sandbox ids disagree: neither is used (the
   * container's own FLOX_ENV_CACHE), never the victim's */
  frc_identity_from_annotations(crio, &id);
  ck_assert(!id.sandbox);
  ck_assert_ptr_null(id.sandbox_id);
  ck_assert_str_eq(id.name, "app");
  free(id.name);
  frc_identity_from_annotations(containerd_spoofed, &id);
  ck_assert_ptr_null(id.sandbox_id);
  free(id.name);
  frc_identity_from_annotations(containerd, &id);
  ck_assert_str_eq(id.sandbox_id, OWN);
  ck_assert_str_eq(id.name, "app");
  free(id.name);
  free(id.sandbox_id);
}
END_TEST

START_TEST(test_decide)
{
  struct frc_config fail = config(FRC_ON_MISSING_FAIL), pass = config(FRC_ON_MISSING_PASSTHROUGH);
  frc_error_t err = NULL;
  struct frc_decision d;

  /* a sandbox passes through even with invalid values */
  {
    cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-type\":\"sandbox\","
                                    "\"flox.dev/environment\":\"../x\"}");
    ck_assert_int_eq(frc_decide(a, &fail, &d, &err), 0);
    ck_assert_int_eq(d.action, FRC_ACTION_PASSTHROUGH);
    frc_decision_release(&d);
  }
  /* skip-containers */
  {
    cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-name\":\"helper\","
                                    "\"flox.dev/skip-containers\":\"init-permissions, helper\","
                                    "\"flox.dev/environment\":\"acme/x\"}");
    ck_assert_int_eq(frc_decide(a, &fail, &d, &err), 0);
    ck_assert_int_eq(d.action, FRC_ACTION_PASSTHROUGH);
    frc_decision_release(&d);
  }
  /* a Flox container */
  {
    cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-name\":\"build\","
                                    "\"flox.dev/skip-containers\":\"helper\","
                                    "\"flox.dev/environment\":\"acme/x:4\"}");
    ck_assert_int_eq(frc_decide(a, &fail, &d, &err), 0);
    ck_assert_int_eq(d.action, FRC_ACTION_FLOX);
    ck_assert_uint_eq(d.ann.env.generation, 4);
    frc_decision_release(&d);
  }
  /* invalid skip list: fails even for the container it would name */
  {
    cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-name\":\"helper\","
                                    "\"flox.dev/skip-containers\":\"Helper\"}");
    ck_assert_int_lt(frc_decide(a, &fail, &d, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, FRC_ANN_SKIP_CONTAINERS));
    frc_error_release(&err);
    frc_decision_release(&d);
  }
  /* no environment: fails naming the annotation and the container, or passes */
  {
    cleanup_json yajl_val a = parse("{\"io.kubernetes.cri.container-name\":\"app\"}");
    ck_assert_int_lt(frc_decide(a, &fail, &d, &err), 0);
    ck_assert_ptr_nonnull(strstr(err->msg, "flox.dev/environment"));
    ck_assert_ptr_nonnull(strstr(err->msg, "\"app\""));
    ck_assert_ptr_nonnull(strstr(err->msg, "metadata.annotations"));
    frc_error_release(&err);
    frc_decision_release(&d);
    ck_assert_int_eq(frc_decide(a, &pass, &d, &err), 0);
    ck_assert_int_eq(d.action, FRC_ACTION_PASSTHROUGH);
    frc_decision_release(&d);
  }
  /* invalid value with passthrough configured still fails */
  {
    cleanup_json yajl_val a = parse("{\"flox.dev/activate-mode\":\"x\"}");
    ck_assert_int_lt(frc_decide(a, &pass, &d, &err), 0);
    frc_error_release(&err);
    frc_decision_release(&d);
  }
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("annotations");
  TCase *tc = tcase_create("contract");
  SRunner *sr;
  int failed;

  tcase_add_loop_test(tc, test_env_good, 0, sizeof(good_envs) / sizeof(good_envs[0]));
  tcase_add_loop_test(tc, test_env_bad, 0, sizeof(bad_envs) / sizeof(bad_envs[0]));
  tcase_add_test(tc, test_env_too_long);
  tcase_add_test(tc, test_full_parse);
  tcase_add_test(tc, test_defaults);
  tcase_add_loop_test(tc, test_bad_values, 0, sizeof(bad_values) / sizeof(bad_values[0]));
  tcase_add_test(tc, test_hostile);
  tcase_add_test(tc, test_duplicate_keys_last_wins);
  tcase_add_test(tc, test_identity);
  tcase_add_test(tc, test_identity_crio_spoof);
  tcase_add_test(tc, test_decide);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
