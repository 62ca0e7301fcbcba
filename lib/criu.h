/* criu.h - what checkpoint and restore (runc's and crun's, through CRIU)
 * need from flox-runc for a Flox container.
 *
 * Owns: (1) the CRIU configuration of an environment whose closure a
 * container binds with flox-runc's createContainer hook (lib/bindhook.h).
 * CRIU dumps a container's mounts and must be told which ones come from
 * the node (external binds): runc declares the spec's bind mounts (key =
 * destination), but not the hook's, and CRIU then refuses the dump ("doesn't
 * have a proper root mount").  runc hands CRIU the file named by the
 * container's `org.criu.config` annotation (else /etc/criu/runc.conf), so a
 * create whose closure goes by the hook sets that annotation to
 * <state_dir>/views/<key>.criu.conf, and `checkpoint` writes the file: the
 * node's /etc/criu/runc.conf (which the annotation replaces) followed by one
 * `ext-mount-map /nix/store/NAME:/nix/store/NAME` per bound path, and one for
 * each other bind the hook may make (the tree, FLOX_ENV_CACHE, the CA
 * bundle; a key of a mount the container lacks is unused) (the same
 * keys runc gives spec mounts, so a restore, which binds the closure by
 * spec mounts, maps them back).  A spec that already carries the annotation
 * loses it (frc_criu_screen: a CRIU configuration can run scripts as root,
 * and a pod must not choose one) unless the node config's
 * allow_criu_config_annotation is true; then it keeps it, and its closure
 * goes by spec mounts.
 * (2) the image's record, <image-path>/flox-runc.json, written by
 * `checkpoint` ({"environment": "owner/name:N"}, the generation the
 * container ran): a restore pins that generation, so a floating
 * `owner/name` whose live generation moved since restores the environment
 * the process was checkpointed with (its open files, its mounts' keys).
 * The file comes with the image (podman's and CRI-O's archives, a
 * Kubernetes checkpoint image): it is read bounded and must name the
 * annotation's own owner/name.
 */
#ifndef FRC_CRIU_H
#define FRC_CRIU_H

#include <stdbool.h>

#include "annotations.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "spec.h"

#define FRC_CRIU_ANNOTATION "org.criu.config"
#define FRC_CRIU_IMAGE_RECORD "flox-runc.json"
/* The checkpoint's directory without --image-path (runc's and crun's). */
#define FRC_CRIU_DEFAULT_IMAGE "checkpoint"
/* The node's own configuration for the runtime's CRIU calls, which the
 * annotation replaces: copied at the top of flox-runc's file (crun from
 * 1.26 prefers crun.conf when there is one). */
#define FRC_CRIU_RUNC_CONF "/etc/criu/runc.conf"
#define FRC_CRIU_CRUN_CONF "/etc/criu/crun.conf"

/* <state_dir>/views/<key>.criu.conf (malloc'd); removed with the view. */
char *frc_criu_config_path(const struct frc_config *c, const char *env_key);

/* Whether the spec carries an org.criu.config annotation flox-runc did not
 * set (any value: an empty one tells runc to use no file). */
bool frc_criu_annotation_foreign(const struct frc_spec *s, const struct frc_config *c);
/* Sets the annotation to env_key's file; frc_criu_unannotate removes one
 * flox-runc set before (a bundle edited by an earlier create). */
void frc_criu_annotate(struct frc_spec *s, const struct frc_config *c, const char *env_key);
void frc_criu_unannotate(struct frc_spec *s, const struct frc_config *c);
/* A Flox container's spec (create and restore), after frc_criu_unannotate:
 * an org.criu.config flox-runc did not set is removed (a warning in log
 * names its value and the key that keeps it) unless the node config's
 * allow_criu_config_annotation is true (then a debug line says it is kept).
 * Returns whether it removed one. */
bool frc_criu_screen(struct frc_spec *s, const struct frc_config *c, const struct frc_logger *log);

/* checkpoint of the container id under the runtime's root ("" when the
 * call has none): when flox-runc holds a record of it, writes its
 * environment's CRIU configuration (when the hook binds its closure: the
 * spec as create left it carries the annotation; an error when the runtime
 * is a crun that would not read it) and the image's record into image_dir;
 * *flox false when it holds none (the call passes through untouched). */
int frc_criu_checkpoint(const struct frc_config *c, const char *root, const char *id,
                        const char *image_dir, bool *flox, frc_error_t *err);

/* Whether the runtime whose `--version` prints version_line hands CRIU the
 * org.criu.config annotation's file (runc; crun from 1.26); name gets the
 * line (for messages). */
bool frc_criu_runtime_reads_config(const char *version_line, char *name, size_t size);

/* checkpoint: writes env_key's CRIU configuration from its view (every
 * store path of the view that is not a symlink is a bind), after the first
 * of the node's node_confs (NULL-terminated: FRC_CRIU_CRUN_CONF,
 * FRC_CRIU_RUNC_CONF...) that exists, opened once and read bounded (a
 * file that is not a regular one is an error naming it). */
int frc_criu_write_config(const struct frc_config *c, const char *env_key,
                          const char *const *node_confs, frc_error_t *err);

/* checkpoint: writes <image_dir>/flox-runc.json naming reference
 * ("owner/name:N"); image_dir is made (0700) when missing, as runc does. */
int frc_criu_image_write(const char *image_dir, const char *reference, frc_error_t *err);
/* restore: the generation recorded in <image_dir>/flox-runc.json; *found
 * false when there is none (a checkpoint by another runtime).  A record
 * naming another environment than *annotated, or another generation than
 * the one it pins, is an error naming both. */
int frc_criu_image_read(const char *image_dir, const struct frc_envref *annotated,
                        unsigned *generation, bool *found, frc_error_t *err);

#endif
