/* bindrun.h - the closure hook's side: the binds it makes when the runtime
 * runs it (the protocol and the spec side: lib/bindhook.h).
 *
 * Owns what runs in the container's mount namespace before pivot_root:
 * reading the runtime's state from stdin, checking that the container's
 * /nix is flox-runc's view, and binding the closure (from the view's pin,
 * else path by path from the view's list, or the paths named), the
 * environment's tree and the node binds.  It needs nothing but the C
 * library, the JSON reader and lib/util.c, so that the same code builds
 * both `flox-runc bind-closure` and the small static `flox-runc-hook`
 * (cmd/flox-runc-hook: no dynamic loader on the create's path).
 */
#ifndef FRC_BINDRUN_H
#define FRC_BINDRUN_H

#include <stdbool.h>

#include "bindhook.h"
#include "error.h"

/* The state the runtime writes to the hook's stdin, read to the end in any
 * case (crun fails the create when the hook exits before it wrote), a pipe
 * only; its "bundle" (malloc'd), or NULL. */
char *frc_bindhook_state_bundle(void);

/* Calls fn(name, data, err) for each closure path whose mount point the
 * view's store directory store_dir holds (the node's; each entry but the
 * symlinks, which are store paths the view holds as they are, and the dot
 * names), by its name in /nix/store; an entry that is not a store path's
 * name fails (the view is rebuilt by `flox-runc gc`).  fn returning < 0
 * stops the walk with that.  One walk for the closure hook, the view's pin
 * and CRIU's configuration. */
int frc_view_each_bind(const char *store_dir,
                       int (*fn)(const char *name, void *data, frc_error_t *err), void *data,
                       frc_error_t *err);

/* Binds each closure path whose mount point the view's store directory
 * view_store holds (frc_view_each_bind) from the node's store (prefix)
 * onto its mount point in store (a directory of the same entries, opened
 * O_PATH), read-only, nosuid, nodev: the hook's binds, and the pin's
 * (lib/viewpin.h). */
int frc_bindhook_bind_view(const char *view_store, int store, const char *prefix, frc_error_t *err);

/* The hook: argv as after the verb (ROOT NIX_SOURCE STORE_PREFIX
 * [STORE_PATH | FRC_BINDHOOK_VIEW_STORE DIR | ...]...); bundle: the state's "bundle" (NULL when none), against
 * which a relative ROOT resolves.  legacy: mount(2) through /proc/self/fd
 * even where the new mount API exists (tests). */
int frc_bindhook_run(const char *bundle, int argc, char *const *argv, bool legacy,
                     frc_error_t *err);

#endif
