/* nodebash.h - the node's static bash in its Nix store.
 *
 * Owns: the store path of the static bash that evaluates environments'
 * vars and hooks when the node config's `bash` is a node file: a directory
 * flox-runc-bash/bin/bash added with `nix-store --add` (content-addressed,
 * <hash>-flox-runc-bash).  Its path is computed from the file exactly as
 * Nix names it (the NAR's SHA-256, a "source" path) and rooted at the
 * node's GC root gcroots/flox-runc/node/bash BEFORE nix-store adds it, so
 * a concurrent `nix-store --gc` can never take it between the add and the
 * root (Nix 2.8's `--add` ignores `--add-root`).  Done once per node:
 * by `flox-runc install`, else by the first create that needs it; then
 * <state_dir>/bash.json remembers it while the node file is unchanged and
 * the root and the path are there.  `flox-runc gc` never releases node/;
 * `flox-runc install --uninstall` does (frc_node_bash_release).
 */
#ifndef FRC_NODEBASH_H
#define FRC_NODEBASH_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* The store path `nix-store --add` gives a directory NAME holding only
 * bin/bash with data (n bytes, executable) as its contents:
 * /nix/store/<32 nix32>-NAME, in out (at least 64 + strlen(name)). */
int frc_node_bash_store_path(const void *data, size_t n, const char *name, char *out, size_t out_len,
                             frc_error_t *err);

/* The node's bash (config `bash`, a static file) in the store: *pkg gets
 * the store path (its bin/bash is the bash), *added whether nix-store ran.
 * The caller roots it again with whatever uses it. */
int frc_node_bash(const struct frc_store *s, char **pkg, bool *added, frc_error_t *err);

/* Releases the node's root of its bash (and forgets bash.json): Nix's GC
 * may then take it once no environment pins it. */
int frc_node_bash_release(const struct frc_config *c, frc_error_t *err);

#endif
