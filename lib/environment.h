/* environment.h - a Flox environment built on the node.
 *
 * Owns: materialising one (lockfile, mode, system) once per node: realising
 * its packages in one batch (lib/store.c), building the merged tree
 * (lib/envbuild.c) in <store_root>/nix/var/flox-runc/tmp/ and renaming it to
 * <store_root>/nix/var/flox-runc/envs/<key> (so that the /nix mount shows it
 * in every container at FLOX_ENV=/nix/var/flox-runc/envs/<key>, with no
 * copy into the store), rooting its packages (GC root "envs/<key>"),
 * computing its closure once and building its view of /nix (lib/mounts.h)
 * and, at its first nix-mutable create, the Nix database of its closure,
 * and recording it in <state_dir>/envs/<key>.json; and the bash that
 * evaluates the manifest's vars and hook (and, in dev mode, the packages'
 * plugin profile.d scripts: pinned in every dev environment) inside
 * containers: the node
 * config's `bash`, a store file, or a static bash on the node in the store
 * once per node (lib/nodebash.h), pinned with the environment's packages
 * (and so in its closure).  The directories holding what is
 * derived from an environment (<store_root>/nix/var/flox-runc,
 * gcroots/flox-runc and state_dir) are kept 0700: only root on the node,
 * and the containers of the environment through their binds, read them.
 * The record is written last, so a crash at any point leaves nothing that a
 * later create would use; nothing is synced before it: a record is trusted
 * in the boot that wrote it, and after a reboot only once a syncfs after it
 * confirmed it (docs/design.md, "Durability"); concurrent creates of one environment take one
 * flock and all but the first find the record.  A warm create only reads the
 * record, which summarises the lockfile (frc_environment_find: no parse),
 * and checks that its paths are still there (one stat of the store
 * directory when the key's lock file holds a stamp of it from a check that
 * found them all: docs/design.md, "Where things live on a node").
 */
#ifndef FRC_ENVIRONMENT_H
#define FRC_ENVIRONMENT_H

#include <stdbool.h>

#include "activate.h"
#include "annotations.h"
#include "config.h"
#include "lockfile.h"
#include "log.h"

/* <state_dir>/keys: environment keys remembered per lockfile copy
 * (frc_env_request.lockfile_id) */
#define FRC_KEY_MEMO_DIR "keys"

struct frc_store_early;
struct frc_env_request
{
  const struct frc_config *config;
  const struct frc_logger *log;
  long long deadline_ns;
  const char *name; /* the environment's name, part of its store path name */
  enum frc_mode mode;
  /* the text: part of the key and copied into the tree; NULL in
   * frc_environment_find when the key is remembered (lockfile_id): a
   * key not remembered is then not found */
  const char *lockfile;
  size_t lockfile_len;
  /* The identity of the node's immutable copy of the lockfile (device,
   * inode, size, times: lib/hub.h frc_resolved) or NULL: the environment's
   * key is then remembered under <state_dir>/keys/ instead of hashing the
   * text at each create (a 150 KiB lockfile: ~0.4 ms with its page faults). */
  const char *lockfile_id;
  const struct frc_lockfile *lock; /* parsed for this system (NULL in frc_environment_find) */
  /* NULL, or a nix-store started while FloxHub answered (lib/store.h
   * frc_store_early_start): the realisation takes it */
  struct frc_store_early **early;
};

struct frc_environment
{
  char key[65];
  char *path; /* FLOX_ENV: /nix/var/flox-runc/envs/<key> */
  char **pins; /* every store path a container of it must pin: outputs, bash */
  char **closure; /* the closure paths a container binds (lib/mounts.h) */
  char *view; /* the node directory bound at /nix */
  char *bash; /* /nix/store/.../bin/bash for vars and hook, NULL when none is needed */
  bool has_hook;
  struct frc_env_features features; /* of the built tree, for the activation */
  bool built; /* materialised by this call */
  /* The build's confirmation on the disk (docs/design.md, "Durability"),
   * not started yet: frc_environment_confirm starts it. */
  struct frc_env_confirm *confirm;
};

/* The logical directory built environments live in. */
#define FRC_ENVS_DIR "/nix/var/flox-runc/envs"

int frc_environment_materialise(const struct frc_env_request *req, struct frc_environment *env,
                                frc_error_t *err);
/* A warm create's look-up without parsing the lockfile (req->lock unused):
 * each record keeps a summary of its lockfile (the manifest's mode option,
 * the number of packages, the vars, whether there is a hook).  1 when the
 * environment of req's lockfile is on the node in the mode
 * frc_lock_pick_mode(summary, annotated, req->mode) picks, usable as
 * frc_environment_materialise would find it: *env, and *summary filled
 * with has_mode, mode and the vars only (no packages: *npkgs counts them).
 * 0 when it is not (then parse and materialise; *env and *summary are
 * empty), -1 on error. */
int frc_environment_find(const struct frc_env_request *req, bool annotated, struct frc_environment *env,
                         struct frc_lockfile *summary, size_t *npkgs, frc_error_t *err);
/* The Nix database of env's closure for a writable /nix (nix-mutable):
 * built once per environment under its lock (lib/store.h
 * frc_store_db_template) at <state_dir>/views/<key>.nixdb/ and removed with
 * the view; *db_dir gets its nix/var/nix/db directory. */
char *frc_environment_nix_db_dir(const struct frc_config *c, const char *env_key);
int frc_environment_nix_db(const struct frc_env_request *req, const struct frc_environment *env,
                           char **db_dir, frc_error_t *err);
/* Starts the confirmation of a record this call wrote (the syncfs and the
 * mark, in a process of its own that the caller does not wait for); none
 * pending: nothing.  Called when the caller has written what it writes
 * after the environment (a create: its container record and spec, right
 * before the runtime), so that the syncfs never holds up those writes
 * (docs/performance.md, "Lever: ... (cold4)"); frc_environment_release
 * calls it too. */
void frc_environment_confirm(struct frc_environment *env);
void frc_environment_release(struct frc_environment *env);
#define cleanup_environment __attribute__((cleanup(frc_environment_release)))

#endif
