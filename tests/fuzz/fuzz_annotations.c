/* The flox.dev/... annotations (lib/annotations.c) and the create decision
 * (lib/select.c) on a spec's annotations object, under both
 * on_missing_environment settings; and an environment reference alone.
 * Properties: an accepted reference formats back to itself, skip lists hold
 * only container names, a Flox decision has a valid environment. */
#include "annotations.h"
#include "config.h"
#include "fuzz.h"
#include "json.h"
#include "select.h"

static void
check_envref(const struct frc_envref *r)
{
  char buf[FRC_OWNER_MAX + FRC_ENVNAME_MAX + 16];
  struct frc_envref again;
  frc_error_t err = NULL;
  FUZZ_ASSERT(r->owner[0] && r->name[0] && r->generation <= FRC_GENERATION_MAX);
  FUZZ_ASSERT(strchr(r->owner, '/') == NULL && strstr(r->name, "..") == NULL
              && strchr(r->name, '/') == NULL);
  frc_envref_format(r, buf, sizeof(buf));
  FUZZ_ASSERT(frc_envref_parse(buf, &again, &err) == 0);
  FUZZ_ASSERT(strcmp(again.owner, r->owner) == 0 && strcmp(again.name, r->name) == 0
              && again.generation == r->generation);
}

static void
check_names(char **list)
{
  FUZZ_ASSERT(list != NULL);
  for (size_t i = 0; list[i]; i++)
    {
      FUZZ_ASSERT(i < FRC_SKIP_MAX_ENTRIES);
      FUZZ_ASSERT(frc_is_container_name(list[i], strlen(list[i])));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_json yajl_val ann = NULL;
  cleanup_free char *s = fuzz_cstr(data, size);
  frc_error_t err = NULL;
  struct frc_envref ref;

  if (frc_envref_parse(s, &ref, &err) == 0)
    check_envref(&ref);
  fuzz_check_error(&err);

  if (frc_json_parse((const char *) data, size, &ann, &err) < 0)
    {
      fuzz_check_error(&err);
      return 0;
    }
  {
    cleanup_annotations struct frc_annotations a = { 0 };
    if (frc_annotations_parse(ann, &a, &err) == 0)
      {
        if (a.has_environment)
          check_envref(&a.env);
        check_names(a.skip_containers);
        check_names(a.skip_containers_exec);
      }
    fuzz_check_error(&err);
  }
  for (int missing = 0; missing < 2; missing++)
    {
      cleanup_config struct frc_config c = { 0 };
      cleanup_decision struct frc_decision d;
      const char *conf = missing ? "{\"on_missing_environment\": \"passthrough\"}" : "{}";
      FUZZ_ASSERT(frc_config_parse(&c, conf, strlen(conf), "fuzz", &err) == 0);
      if (frc_decide(ann, &c, &d, &err) == 0)
        {
          FUZZ_ASSERT(d.reason != NULL);
          if (d.action == FRC_ACTION_FLOX)
            {
              FUZZ_ASSERT(!d.id.sandbox && d.ann.has_environment);
              check_envref(&d.ann.env);
            }
        }
      fuzz_check_error(&err);
    }
  return 0;
}
