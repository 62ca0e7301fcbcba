/* engineconf.h - does an engine's config register flox-runc?
 *
 * Owns: reading containerd's config.toml (version 2: plugins."io.containerd.
 * grpc.v1.cri".containerd.runtimes.<name>; version 3: plugins.'io.containerd.
 * cri.v1.runtime'.containerd.runtimes.<name>) and CRI-O's crio.conf and
 * crio.conf.d/ drop-ins ([crio.runtime.runtimes.<name>]) with a small TOML
 * reader (tables, strings, booleans, numbers, arrays, inline comments), and
 * judging them: a runtime whose binary is flox-runc, of the right type, with
 * the flox.dev/... annotations allowed where the engine needs it.  Used by
 * `flox-runc doctor`; every finding is one line with the fix.
 */
#ifndef FRC_ENGINECONF_H
#define FRC_ENGINECONF_H

#include <stdbool.h>

#include "error.h"

typedef void (*frc_finding_fn)(bool ok, const char *text, void *data);

/* is_self tells whether a binary path is this flox-runc. Returns the number
 * of problems found (0: fine), -1 when the file cannot be read or parsed. */
int frc_check_containerd_config(const char *path, bool (*is_self)(const char *),
                                frc_finding_fn report, void *data, frc_error_t *err);
int frc_check_crio_config(const char *const *paths, bool (*is_self)(const char *),
                          frc_finding_fn report, void *data, frc_error_t *err);

#endif
