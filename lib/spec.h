/* spec.h - reading and editing an OCI bundle's config.json and exec process
 * files.
 *
 * Owns: locating config.json in a bundle, the size bound for specs and
 * process files, and the typed views flox-runc edits: annotations, mounts,
 * root.path (resolved against the bundle) and a process object's args and
 * env.  Everything else in the document is kept as loaded (json.h;
 * linux.seccomp as its text, frc_json_parse_opaque), and a
 * save replaces the file atomically keeping its mode, without fsync (the
 * runtime reads it at once; after a crash the container is gone).
 */
#ifndef FRC_SPEC_H
#define FRC_SPEC_H

#include <stdbool.h>

#include "json.h"

#define FRC_SPEC_MAX_BYTES (16u << 20) /* config.json and process files */

struct frc_spec
{
  struct frc_json_doc doc; /* doc.root is the spec object */
  char *bundle; /* absolute bundle directory */
};

/* bundle NULL means the current directory, as runc. */
int frc_spec_load(struct frc_spec *s, const char *bundle, frc_error_t *err);
int frc_spec_save(struct frc_spec *s, frc_error_t *err);
void frc_spec_release(struct frc_spec *s);
#define cleanup_spec __attribute__((cleanup(frc_spec_release)))

/* The annotation's string value, NULL when absent or not a string.  *present
 * (optional) tells whether the key exists with any type. */
const char *frc_spec_annotation(const struct frc_spec *s, const char *key, bool *present);
void frc_spec_set_annotation(struct frc_spec *s, const char *key, const char *value);

/* root.path made absolute against the bundle (malloc'd), or an error when the
 * spec has none. */
int frc_spec_rootfs(const struct frc_spec *s, char **out, frc_error_t *err);

/* The spec's process object, created when missing. */
yajl_val frc_spec_process(struct frc_spec *s);

/* Appends a mount {destination, type, source, options[]}; options is a
 * NULL-terminated list. */
void frc_spec_add_mount(struct frc_spec *s, const char *destination, const char *type,
                        const char *source, const char *const *options);
/* Removes the mounts at destination whose source is exactly source; returns
 * how many. */
size_t frc_spec_remove_mount(struct frc_spec *s, const char *destination, const char *source);
/* Removes the mounts at or below destination (a path: "/nix" covers
 * "/nix/store/x") whose source is, or is below, one of the directories in
 * sources (NULL-terminated); returns how many. */
size_t frc_spec_remove_mounts_below(struct frc_spec *s, const char *destination,
                                    const char *const *sources);
/* Whether a mount with this destination exists. */
bool frc_spec_has_mount(const struct frc_spec *s, const char *destination);

/* Process object helpers, for the spec's process and exec process files. */
/* The value of NAME in process.env (last "NAME=" entry wins, as execve), or
 * NULL. */
const char *frc_process_getenv(yajl_val process, const char *name);
/* Sets NAME=value, replacing existing entries for NAME. */
void frc_process_setenv(yajl_val process, const char *name, const char *value);
/* Replaces process.args with argv (NULL-terminated). */
void frc_process_set_args(yajl_val process, const char *const *argv);
/* The number of string args, and the i-th (NULL when out of range). */
size_t frc_process_nargs(yajl_val process);
const char *frc_process_arg(yajl_val process, size_t i);

/* An exec --process file: the document's root is the process object. */
int frc_process_file_load(struct frc_json_doc *doc, const char *path, frc_error_t *err);

#endif
