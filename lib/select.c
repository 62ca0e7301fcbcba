#include <string.h>

#include "json.h"
#include "record.h"
#include "select.h"
#include "util.h"

/* CRI-O's ContainerName is "k8s_<name>_<pod>_<namespace>_<uid>_<attempt>";
 * container names cannot hold '_', so the name ends at the next one. */
static char *
name_from_crio_full_name(const char *full)
{
  const char *end;
  if (full == NULL || !str_has_prefix(full, "k8s_"))
    return NULL;
  full += 4;
  end = strchr(full, '_');
  if (end == NULL || !frc_is_container_name(full, (size_t) (end - full)))
    return NULL;
  return xstrndup(full, (size_t) (end - full));
}

static char *
name_from_crio_labels(const char *labels_json)
{
  cleanup_json yajl_val labels = NULL;
  frc_error_t ignored = NULL;
  const char *n;

  if (labels_json == NULL || strlen(labels_json) > 65536
      || frc_json_parse(labels_json, strlen(labels_json), &labels, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return NULL;
    }
  n = frc_json_get_string(labels, "io.kubernetes.container.name");
  return n && frc_is_container_name(n, strlen(n)) ? xstrdup(n) : NULL;
}

void
frc_identity_from_annotations(yajl_val ann, struct frc_identity *out)
{
  const char *type;
  const char *name;
  bool crio;

  memset(out, 0, sizeof(*out));
  /* A spec of CRI-O (its ContainerType, which it always sets, last) is read
   * through CRI-O's keys only: CRI-O copies every pod annotation into the
   * spec first, so a pod can write containerd's io.kubernetes.cri.* keys
   * there (its sandbox id would choose another pod's FLOX_ENV_CACHE).
   * containerd sets its own keys after the allow-listed pod annotations. */
  crio = frc_json_get_string(ann, "io.kubernetes.cri-o.ContainerType") != NULL;
  type = frc_json_get_string(ann, crio ? "io.kubernetes.cri-o.ContainerType"
                                       : "io.kubernetes.cri.container-type");
  out->sandbox = type && strcmp(type, "sandbox") == 0;
  if (!out->sandbox)
    {
      const char *docker = frc_json_get_string(ann, "io.kubernetes.docker.type");
      out->sandbox = docker && strcmp(docker, "podsandbox") == 0;
    }

  name = crio ? NULL : frc_json_get_string(ann, "io.kubernetes.cri.container-name");
  if (name == NULL)
    name = frc_json_get_string(ann, "io.kubernetes.container.name");
  if (name && frc_is_container_name(name, strlen(name)))
    out->name = xstrdup(name);
  if (out->name == NULL)
    out->name = name_from_crio_labels(frc_json_get_string(ann, "io.kubernetes.cri-o.Labels"));
  if (out->name == NULL)
    out->name = name_from_crio_full_name(frc_json_get_string(ann, "io.kubernetes.cri-o.ContainerName"));

  /* the pod's sandbox: keys FLOX_ENV_CACHE (lib/envcache.c).  Both
   * engines' keys naming different sandboxes: one is a pod's own
   * annotation, and which cannot be told from the spec (on CRI-O a pod
   * writes containerd's; on containerd a `pod_annotations` pattern that
   * matches CRI-O's keys lets it write those, which containerd never
   * overwrites): no pod-wide FLOX_ENV_CACHE then, the container's own. */
  {
    const char *cd = frc_json_get_string(ann, "io.kubernetes.cri.sandbox-id");
    const char *co = frc_json_get_string(ann, "io.kubernetes.cri-o.SandboxID");
    const char *sb = crio ? co : cd;
    if (cd && co && strcmp(cd, co) != 0)
      sb = NULL;
    if (sb && frc_container_id_valid(sb))
      out->sandbox_id = xstrdup(sb);
  }
}

int
frc_decide(yajl_val ann, const struct frc_config *c, struct frc_decision *d, frc_error_t *err)
{
  cleanup_strv char **skip = NULL;

  memset(d, 0, sizeof(*d));
  frc_identity_from_annotations(ann, &d->id);
  d->action = FRC_ACTION_PASSTHROUGH;
  if (d->id.sandbox)
    {
      d->reason = "pod sandbox";
      return 0;
    }
  if (frc_annotations_parse_skip(ann, FRC_ANN_SKIP_CONTAINERS, &skip, err) < 0)
    return -1;
  if (frc_name_list_contains(skip, d->id.name))
    {
      d->reason = "listed in " FRC_ANN_SKIP_CONTAINERS;
      return 0;
    }
  if (frc_annotations_parse(ann, &d->ann, err) < 0)
    return -1;
  if (!d->ann.has_environment)
    {
      if (c->on_missing_environment == FRC_ON_MISSING_PASSTHROUGH)
        {
          d->reason = "no " FRC_ANN_ENVIRONMENT " and on_missing_environment is passthrough";
          return 0;
        }
      if (d->id.name)
        return frc_error(err,
                         "no " FRC_ANN_ENVIRONMENT " annotation: add "
                         "`" FRC_ANN_ENVIRONMENT ": owner/name` to the pod's metadata.annotations, "
                         "list \"%s\" in " FRC_ANN_SKIP_CONTAINERS ", or run the pod without "
                         "runtimeClassName flox",
                         d->id.name);
      return frc_error(err, "no " FRC_ANN_ENVIRONMENT " annotation: add "
                            "`" FRC_ANN_ENVIRONMENT ": owner/name` to the pod's (or container's) "
                            "annotations, or run it with the plain runtime");
    }
  d->action = FRC_ACTION_FLOX;
  d->reason = "Flox container";
  return 0;
}

void
frc_decision_release(struct frc_decision *d)
{
  free(d->id.name);
  d->id.name = NULL;
  free(d->id.sandbox_id);
  d->id.sandbox_id = NULL;
  frc_annotations_release(&d->ann);
}
