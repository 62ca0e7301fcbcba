/* viewpin.h - an environment's closure binds made once per boot, in a mount
 * namespace of flox-runc's own that a file on the node pins.
 *
 * Owns: <state_dir>/viewns/<key>, a bind of the namespace file
 * (/proc/PID/ns/mnt) of a mount namespace holding nothing but a small
 * tmpfs root and, at /store, a read-only, nosuid, nodev bind of the view's
 * store directory (lib/mounts.h) with each closure path bound on its mount
 * point there as the closure hook binds it (lib/bindhook.h).  The hook then
 * enters that namespace, clones /store with everything below it in one
 * open_tree(OPEN_TREE_CLONE | AT_RECURSIVE), returns to the container's
 * namespace and moves the clone onto the container's /nix/store: one clone
 * for the whole closure instead of one a path (~0.25 ms against ~2 ms at
 * 150 paths, docs/performance.md, "Lever: one recursive clone of a pinned
 * view").  The pins live in <state_dir>/viewns, made a private bind of
 * itself (an nsfs bind in a shared mount with peers in other namespaces
 * fails, and must not propagate into containers), and go with the view
 * (frc_view_remove) or the boot (after a reboot the file is a plain empty
 * one, which is no pin).  Each pin holds one mount of the node: the
 * store's file system and the view's stay mounted while it lives.
 */
#ifndef FRC_VIEWPIN_H
#define FRC_VIEWPIN_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "log.h"

/* The directory in the pinned namespace holding the closure's binds. */
#define FRC_VIEWPIN_STORE "/store"

/* <state_dir>/viewns/<key> (malloc'd). */
char *frc_viewpin_path(const struct frc_config *c, const char *env_key);
/* Whether path is a pin: the bind of a mount namespace's file; *ns_ino
 * (optional) gets that namespace's inode number. */
bool frc_viewpin_valid(const char *path, unsigned long long *ns_ino);
/* The pin of env_key's view (view: its directory), made when missing under
 * <state_dir>/viewns.lock, and in *ns_ino its namespace's inode number;
 * NULL when it cannot be made (logged: the hook binds path by path then, a
 * create never fails for a pin). */
char *frc_viewpin_ensure(const struct frc_config *c, const char *env_key, const char *view,
                         const struct frc_logger *log, unsigned long long *ns_ino);
/* Unmounts and removes env_key's pin; missing is fine. */
int frc_viewpin_remove(const struct frc_config *c, const char *env_key, frc_error_t *err);
/* The same for the pin at path. */
int frc_viewpin_unmount(const char *pin, frc_error_t *err);
/* Calls fn(pin, data) for each pin whose view is gone (left by a crash
 * between the two, or an older flox-runc's gc); fn < 0 stops. */
int frc_viewpin_each_orphan(const struct frc_config *c, int (*fn)(const char *pin, void *data),
                            void *data);

#endif
