/* annotations.h - the flox.dev/... annotation contract (FLOX.md).
 *
 * Owns: the annotation names, parsing and validating all six of them into
 * one typed value (struct frc_annotations), and the messages that name the
 * annotation, the offending value (escaped and truncated) and the accepted
 * form.  Values are hostile input: bounded, no control characters, no path
 * tricks; nothing parsed here may ever become a host path without the
 * character rules enforced here.
 */
#ifndef FRC_ANNOTATIONS_H
#define FRC_ANNOTATIONS_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "error.h"

#define FRC_ANN_ENVIRONMENT "flox.dev/environment"
#define FRC_ANN_ACTIVATE_MODE "flox.dev/activate-mode"
#define FRC_ANN_NIX_MUTABLE "flox.dev/nix-mutable"
#define FRC_ANN_DISABLE_METRICS "flox.dev/disable-metrics"
#define FRC_ANN_SKIP_CONTAINERS "flox.dev/skip-containers"
#define FRC_ANN_SKIP_CONTAINERS_EXEC "flox.dev/skip-containers-exec"

#define FRC_OWNER_MAX 64 /* owner (FloxHub handle) length */
#define FRC_ENVNAME_MAX 100 /* environment name length */
#define FRC_GENERATION_MAX 999999999u
#define FRC_SKIP_MAX_ENTRIES 64
#define FRC_ANN_VALUE_MAX 4096 /* any flox.dev/... value */

enum frc_mode
{
  FRC_MODE_RUN,
  FRC_MODE_DEV,
};

struct frc_envref
{
  char owner[FRC_OWNER_MAX + 1];
  char name[FRC_ENVNAME_MAX + 1];
  unsigned generation; /* 0: follow the live generation */
};

struct frc_annotations
{
  bool has_environment;
  struct frc_envref env;
  bool has_mode; /* flox.dev/activate-mode given; else the manifest decides */
  enum frc_mode mode; /* run when not given */
  bool nix_mutable;
  bool disable_metrics;
  char **skip_containers; /* NULL-terminated, never NULL after parse */
  char **skip_containers_exec;
};

/* Parses the flox.dev/... keys of an annotations object (NULL: none).  The
 * first invalid value fails with its message. */
int frc_annotations_parse(yajl_val annotations, struct frc_annotations *out, frc_error_t *err);
/* Parses only flox.dev/skip-containers (what selection needs first). */
int frc_annotations_parse_skip(yajl_val annotations, const char *key, char ***out, frc_error_t *err);
void frc_annotations_release(struct frc_annotations *a);
#define cleanup_annotations __attribute__((cleanup(frc_annotations_release)))

int frc_envref_parse(const char *value, struct frc_envref *out, frc_error_t *err);
/* "owner/name" or "owner/name:N", into buf. */
const char *frc_envref_format(const struct frc_envref *r, char *buf, size_t size);
bool frc_is_container_name(const char *s, size_t len);
bool frc_name_list_contains(char *const *list, const char *name);
const char *frc_mode_name(enum frc_mode m);

#endif
