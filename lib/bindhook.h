/* bindhook.h - a Flox container's closure binds, made by the runtime's
 * createContainer hook instead of one spec mount per closure path.
 *
 * Owns: the hook flox-runc puts first in a Flox container's
 * hooks.createContainer and the choice of its program (flox-runc-hook
 * beside flox-runc, else flox-runc itself), and the protocol between them;
 * what the hook does when the runtime runs it is lib/bindrun.c's
 * (`flox-runc bind-closure ROOT NIX_SOURCE
 * STORE_PREFIX STORE_PATH...`, ROOT the spec's root.path as written: a
 * relative one is resolved against the "bundle" of the state the runtime
 * writes on the hook's stdin, so a bundle moved or copied whole still
 * works), and what it does when the runtime runs it:
 * in the container's mount namespace, after the runtime's own mounts (the
 * spec's /nix) and before pivot_root (runc 1.1.5 prepareRootfs, crun 1.8.1
 * container_init_setup), it binds each STORE_PATH of the node's store
 * (STORE_PREFIX/nix/store/...) onto its mount point in the container's /nix,
 * read-only, nosuid, nodev, non-recursive: what the spec mounts did, at a
 * few syscalls a path (runc spends ~0.15-0.3 ms a bind mount on its checks
 * and remount).  Nothing is followed that the container's image controls:
 * ROOTFS/nix must be the very directory the spec bound there (the device
 * and inode of NIX_SOURCE, opened O_NOFOLLOW), each mount point is opened
 * O_PATH|O_NOFOLLOW below it, and the mounts go through those descriptors
 * (open_tree/mount_setattr/move_mount; mount(2) on /proc/self/fd on kernels
 * without them).  Any failure fails the hook, and so the create.
 * Create names the closure by the environment's view instead
 * (`FRC_BINDHOOK_VIEW_STORE DIR`, DIR the view's store directory on the
 * node: every entry but a symlink is a closure path's mount point), which
 * keeps a long closure out of the spec: runc parses a spec and hands it to
 * its init as JSON, ~0.5 ms more for 150 paths as arguments
 * (docs/performance.md, "Lever: the closure hook by name").
 * Before it, `FRC_BINDHOOK_VIEW_PIN PIN INO` names the view's pin
 * (lib/viewpin.h) by the root of the runtime's create process
 * (/proc/PID/root/...: the kernel copies no mount namespace's file into the
 * container's namespace): the hook enters the pinned namespace, clones its
 * /store with every bind below it in one open_tree(AT_RECURSIVE), returns,
 * makes every mount of the clone read-only, nosuid, nodev and moves it onto
 * the container's /nix/store, when PIN is the namespace INO and the clone's
 * root is that very directory; else (no pin, a stale one) path by path.
 * Besides store paths, the arguments may name the environment's tree
 * (FRC_ENVS_DIR/<key>, bound read-only like a store path from its mount
 * point in the view) and binds of node paths outside /nix (`--bind-ro SRC
 * DST`, `--bind-rw SRC DST`: FLOX_ENV_CACHE and the CA bundle, which create
 * gives the hook with frc_bindhook_add_bind instead of spec mounts).
 */
#ifndef FRC_BINDHOOK_H
#define FRC_BINDHOOK_H

#include <stdbool.h>

#include "error.h"
#include "log.h"
#include "spec.h"

#define FRC_BINDHOOK_VERB "bind-closure"
/* The hook argument before the view's store directory. */
#define FRC_BINDHOOK_VIEW_STORE "--view-store"
/* The hook argument before the view's pin (lib/viewpin.h) and the inode
 * number of the namespace it pins, which come before
 * FRC_BINDHOOK_VIEW_STORE: the closure in one recursive clone when that
 * namespace is there, path by path from the view when not. */
#define FRC_BINDHOOK_VIEW_PIN "--view-pin"

/* The hook's program: FRC_BINDHOOK_PROGRAM in exe's directory (exe the
 * flox-runc binary, absolute, in a buffer of size bytes) when it is there
 * as flox-runc is, a regular file of exe's owner that it may execute and
 * nobody else may write (cmd/flox-runc-hook: a static program that starts
 * ~0.4 ms sooner); exe is then rewritten to name it.  Otherwise exe is
 * left as it is, and the runtime runs `flox-runc bind-closure`.  Whether
 * it chose the program. */
#define FRC_BINDHOOK_PROGRAM "flox-runc-hook"
bool frc_bindhook_program(char *exe, size_t size);
/* Whether the hook can make this spec's closure binds; when not, the
 * caller makes one spec mount per path.  Not in a user namespace (the
 * spec's linux.namespaces has "user"): the hook runs as that namespace's
 * root, which cannot open the node's private state (the view) or a private
 * store prefix, where the runtime opens spec mount sources on the node.
 * And only while the hook's argv (exe, the verb, root, nix_source, prefix
 * and paths) fits what execve(2) takes beside an environment: a quarter of
 * stack_limit (RLIMIT_STACK, the spec's process.rlimits one when lower),
 * 128 KiB at least, 6 MiB at most, less FRC_BINDHOOK_ENV_RESERVE (crun
 * hands a hook its own environment).  And never when the spec carries
 * crun's run.oci.hooks.stdout/stderr annotations: crun opens those node
 * paths as root for hooks, and a pod may set them. */
#define FRC_BINDHOOK_ENV_RESERVE (32 * 1024)
/* room kept for frc_bindhook_add_bind's arguments (a few binds) */
#define FRC_BINDHOOK_BINDS_RESERVE (8 * 4096)
/* Removes the pod's crun run.oci.hooks.stdout/stderr annotations from a
 * Flox container's spec (crun opens those node paths as root, O_CREAT, for
 * any hook's output, the engine's as well as flox-runc's), with a warning;
 * flox-runc's own run.oci.hooks.stderr (/proc/self/fd/2) stays.  Whether
 * it removed one. */
bool frc_bindhook_screen(struct frc_spec *s, const struct frc_logger *log);
bool frc_bindhook_usable(struct frc_spec *s, const char *exe, const struct frc_logger *log,
                         const char *root, const char *nix_source, const char *prefix,
                         char *const *paths, unsigned long long stack_limit);

/* Puts the hook that binds paths (NULL-terminated hook arguments:
 * /nix/store/... paths, FRC_BINDHOOK_VIEW_STORE and a view's store, the tree)
 * first in the spec's hooks.createContainer; exe is the flox-runc binary the
 * runtime runs, log the runtime's --log (the hook's error then goes there
 * too, `exe --log PATH --log-format FMT bind-closure ...`; NULL or no path:
 * none, and crun's run.oci.hooks.stderr annotation, unless set, names the
 * runtime's stderr), root the spec's root.path, nix_source what the spec binds
 * at /nix, prefix the node's store prefix ("" for /). */
void frc_bindhook_add(struct frc_spec *s, const char *exe, const struct frc_logger *log,
                      const char *root, const char *nix_source, const char *prefix,
                      char *const *paths);
/* Gives flox-runc's hook (when the spec has it) one more bind to make after
 * the closure's, instead of a spec mount: source, a node path (followed, as
 * the runtime opens a spec mount's source), onto destination, an absolute
 * path of the container outside /nix whose components the hook opens
 * without following symlinks and makes when missing (0755 directories, an
 * empty file for a file), as the runtime makes a spec mount's; read-only
 * (ro) or not, nosuid, nodev.  The caller checks that the image has no
 * symlink on the way (the runtime would resolve it, the hook fails).  false
 * when the spec has no hook of flox-runc's: make the spec mount. */
bool frc_bindhook_add_bind(struct frc_spec *s, const char *source, const char *destination,
                           bool ro);
/* Removes flox-runc's hook (a bundle edited before); returns how many. */
size_t frc_bindhook_remove(struct frc_spec *s);

#endif
