/* engineconf.h - engine configurations as the engines read them.
 *
 * Owns: containerd's file set as containerd loads it (the root config.toml, then
 * its `imports`, relative to the importing file, globs sorted, recursively,
 * each file once) and the view containerd makes of it (containerd 1.x: an
 * imported file replaces a whole plugin section; containerd 2.x / config
 * version 3: keys merge); CRI-O's crio.conf plus crio.conf.d/NAME.conf (later
 * keys win); and judging them: is a runtime registered whose binary is
 * flox-runc, of the right type, with the flox.dev annotations passed where
 * the engine needs it.  Every finding is one line with its fix.  Paths of
 * the node are read under a host root ("/" for the running node).
 */
#ifndef FRC_ENGINECONF_H
#define FRC_ENGINECONF_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "toml.h"

#define FRC_ENGINECONF_MAX_BYTES (4u << 20)
#define FRC_ENGINECONF_MAX_FILES 64

/* containerd's configuration files, in the order containerd loads them. */
struct frc_containerd_file
{
  char *path; /* as the node names it (without the host root) */
  char *text; /* NULL when the file does not exist (only the root may be missing) */
  struct frc_toml toml;
  long version; /* the file's `version`, 1 when absent */
};

struct frc_containerd_conf
{
  struct frc_containerd_file *files;
  size_t n;
  long version; /* the root config's */
};

/* Loads path (a node path, read under host_root) and what it imports.  A
 * missing root config is one file with text NULL; a missing import is
 * skipped (containerd skips it too when it came from a glob). */
int frc_containerd_load(const char *host_root, const char *path, struct frc_containerd_conf *out,
                        frc_error_t *err);
void frc_containerd_release(struct frc_containerd_conf *c);
/* The containerd plugin id a normalised table path belongs to, NULL when
 * it is none of the CRI plugin's ids (v1 "cri", v2 "io.containerd.grpc.v1.cri",
 * v3 "io.containerd.cri.v1.runtime"). */
const char *frc_containerd_cri_plugin(const char *table);
/* Index of the last file that configures plugin (any key under
 * plugins.<plugin>), -1 when none. */
int frc_containerd_last_defining(const struct frc_containerd_conf *c, const char *plugin);

enum frc_finding
{
  FRC_FINDING_OK,
  FRC_FINDING_PROBLEM,
  FRC_FINDING_NOTE, /* worth knowing, not counted as a problem */
};
typedef void (*frc_finding_fn)(enum frc_finding kind, const char *text, void *data);

struct frc_engine_check
{
  bool (*is_self)(const char *path, void *data); /* is this binary flox-runc? */
  void *self_data;
  frc_finding_fn report;
  void *data;
  int containerd_major; /* 1 or 2 when known (`containerd --version`), 0 otherwise */
};

/* Judges the view containerd makes of c: the sections a containerd 1.x
 * drops (an import replacing a whole plugin section, config version 3),
 * then the registration.  Return the number of problems. */
int frc_check_containerd(const struct frc_containerd_conf *c, const struct frc_engine_check *chk);
int frc_check_containerd_sections(const struct frc_containerd_conf *c,
                                  const struct frc_engine_check *chk);
/* The major version in `containerd --version` output ("containerd
 * github.com/containerd/containerd 1.6.20~ds1 ..." or "... v2.0.0 ..."),
 * 0 when there is none. */
int frc_containerd_parse_major(const char *version_output);
/* Judges the output of `containerd config dump` (one merged file). */
int frc_check_containerd_dump(const char *dump, const char *label, const struct frc_engine_check *chk,
                              frc_error_t *err);
/* CRI-O: crio.conf and crio.conf.d/NAME.conf under host_root (the node's
 * paths), in CRI-O's order; NULL-terminated, malloc'd; empty when none. */
char **frc_crio_files(const char *host_root);
/* Judges CRI-O's files (node paths read under host_root), later keys
 * winning.  Returns the number of problems, -1 when a file cannot be read. */
int frc_check_crio(const char *host_root, const char *const *paths,
                   const struct frc_engine_check *chk, frc_error_t *err);

#endif
