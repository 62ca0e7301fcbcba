/* store.h - the node's Nix store.
 *
 * Owns: calling the node's `nix-store` (found in PATH or the usual Nix
 * profile directories) on the store under store_root (`/` is the node's own
 * store; any other directory is a chroot store `--store <root>` whose paths
 * still read /nix/store/...), with the configured substituters and trusted
 * public keys and signatures required (a substituter's credentials go to Nix
 * through a root-only netrc file, never on its command line, and every URL
 * Nix quotes is shown with its userinfo masked): realising a batch of paths under the
 * deadline with progress in the log (by a nix-store started before the
 * paths were known, when the caller had one started), several substitutions at a time and
 * never building (no derivation is realised), and querying closures; failures are
 * reported with Nix's own `error:` line (a download error it only warned
 * about when that is all it said), never only "build of ... failed";
 * closures read from Nix's database (libsqlite3, read-only) when it can be;
 * a Nix database registering a closure in a private root (--dump-db, then
 * --load-db);
 * and the GC roots flox-runc keeps as plain symlinks under
 * <store_root>/nix/var/nix/gcroots/flox-runc/ (an environment's root
 * directory holds one link per store path it pins; removing the directory
 * releases them; a container's root is one link to its environment's;
 * either is replaced in one step, built beside it and swapped in by
 * renameat2 RENAME_EXCHANGE, never missing or half made in between).
 */
#ifndef FRC_STORE_H
#define FRC_STORE_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "log.h"

struct frc_store
{
  const struct frc_config *config;
  const struct frc_logger *log;
  long long deadline_ns;
};

/* The node's nix-store: the first in PATH, else in the usual Nix profile
 * and system directories; NULL when there is none.  Every caller (realise,
 * doctor) looks here. */
char *frc_nix_store_find(void);

/* The physical location of a /nix/store path (malloc'd). */
char *frc_store_physical(const struct frc_config *c, const char *store_path);
/* The node's location of a logical /nix/... path, every symlink followed
 * the way a container sees it (absolute targets mapped under prefix, the
 * store_root or "" for "/"); NULL when it leaves /nix, dangles or loops,
 * or a link leads anywhere but into a store path (/nix/store/<name>...). */
char *frc_nix_resolve(const char *prefix, const char *logical);
/* Whether every path is present (directory entry exists) in the store. */
bool frc_store_all_present(const struct frc_config *c, char *const *paths);

/* Nix's netrc text for the credentials in substituters' URLs (one
 * "machine HOST login USER password PASS" line per host, %XX decoded), NULL
 * in *text when none has any; two different credentials for one host, or
 * one with a control character, are an error naming the (masked) URL. */
int frc_store_netrc(char *const *substituters, char **text, frc_error_t *err);

/* How many substitutions a realisation runs at once (Nix's max-jobs). */
unsigned frc_store_substitution_jobs(void);

/* Removes Nix's narinfo cache under state_dir once (older releases left
 * substituters' credentials in it); every nix-store run calls it first. */
void frc_store_purge_narinfo_cache(const struct frc_config *c);
/* Realises paths (NULL-terminated) in one nix-store call; a derivation
 * (.drv) is refused. */
int frc_store_realise(const struct frc_store *s, char *const *paths, frc_error_t *err);
/* The same in two steps, for work that does not need the paths done while
 * nix-store runs: start, then finish (0, or Nix's error) or abort
 * (nix-store killed and reaped).  s and paths stay valid until then; either
 * frees r. */
struct frc_store_realising;
int frc_store_realise_start(const struct frc_store *s, char *const *paths,
                            struct frc_store_realising **r, frc_error_t *err);
int frc_store_realise_finish(struct frc_store_realising *r, frc_error_t *err);
void frc_store_realise_abort(struct frc_store_realising *r);
/* cb(data) on each substitution nix-store starts (its "copying path"
 * line), from within frc_store_realise_finish: the paths that one
 * references are valid by then (Nix substitutes references first), so work
 * on them can start (lib/environment.c's draft of the tree). */
void frc_store_realise_on_copy(struct frc_store_realising *r, void (*cb)(void *), void *data);
/* A realisation started before its paths are known, for a caller that
 * waits for them (a cold create: FloxHub's answer; docs/performance.md,
 * "Lever: cold start at 5 MiB (cold5)"): `nix-store --serve --write` starts
 * with the store's options and waits with its store open;
 * frc_store_realise_start_early hands it the paths (and sets *early to NULL)
 * instead of starting nix-store --realise (*early NULL: a nix-store --serve
 * started now with the paths, whose answer also comes before its exit;
 * early NULL: as frc_store_realise_start).  It substitutes them and says which are valid; when
 * one is not, nix-store --realise runs on them, so a failure is reported
 * as Nix's own error as ever.  Abort it (killed and reaped) when no
 * realisation takes it. */
struct frc_store_early;
int frc_store_early_start(const struct frc_store *s, struct frc_store_early **e, frc_error_t *err);
void frc_store_early_abort(struct frc_store_early *e);
int frc_store_realise_start_early(const struct frc_store *s, struct frc_store_early **early,
                                  char *const *paths, struct frc_store_realising **r,
                                  frc_error_t *err);
/* finish for a caller with work that needs the paths but not nix-store's
 * exit: returns (0) as soon as the early nix-store's answer says every
 * path is valid (Nix committed them to its database before answering),
 * leaving *r the nix-store that is still exiting (~2 ms: its store's
 * teardown), which frc_store_realise_reap waits for; otherwise as finish
 * (*r NULL, freed).  On failure *r is NULL. */
int frc_store_realise_answered(struct frc_store_realising **r, frc_error_t *err);
/* Waits for what frc_store_realise_answered left to exit and frees it (its
 * exit status only logged: its answer was already taken); NULL: nothing. */
void frc_store_realise_reap(struct frc_store_realising *r);
/* The closure (nix-store -qR) of paths, NULL-terminated, malloc'd. */
int frc_store_closure(const struct frc_store *s, char *const *paths, char ***closure,
                      frc_error_t *err);
/* The same in two steps, for work that does not need the closure done
 * while nix-store answers: start, then finish (the closure, or Nix's
 * error) or abort (nix-store killed).  s and paths stay valid until then;
 * either frees q. */
struct frc_store_query;
int frc_store_closure_start(const struct frc_store *s, char *const *paths, struct frc_store_query **q,
                            frc_error_t *err);
int frc_store_closure_finish(struct frc_store_query *q, char ***closure, frc_error_t *err);
void frc_store_closure_abort(struct frc_store_query *q);

/* The same closure read from Nix's database (<store_root>/nix/var/nix/db/
 * db.sqlite, read-only, through libsqlite3, which every Nix node has): no
 * nix-store process (~20 ms of its start).  An error when the database
 * cannot be read or lacks one of the paths: the caller asks nix-store.  The
 * paths must be distinct (a repeated one reads as missing). */
int frc_store_closure_db(const struct frc_config *c, char *const *paths, char ***closure, frc_error_t *err);
/* The same in two steps: _prepare (the library loaded, the database
 * opened, the statement prepared: ~1 ms, done while nix-store realises),
 * then _read, which reads what Nix has committed by then (the statement's
 * read transaction begins there) and frees q; _free frees an unread q. */
/* valid[i] (n entries for the n paths): whether Nix's database holds
 * paths[i] as valid (a path Nix is still unpacking is not); -1 when it
 * cannot be read (busy for more than a moment, none yet). */
int frc_store_valid_db(const struct frc_config *c, char *const *paths, bool *valid, frc_error_t *err);
struct frc_store_closure_dbq;
int frc_store_closure_db_prepare(const struct frc_config *c, char *const *paths,
                                 struct frc_store_closure_dbq **q, frc_error_t *err);
int frc_store_closure_db_read(struct frc_store_closure_dbq *q, char ***closure, frc_error_t *err);
void frc_store_closure_db_free(struct frc_store_closure_dbq *q);

/* Adds the directory dir to the store (nix-store --add: a
 * content-addressed path named after dir's last component). */
int frc_store_add(const struct frc_store *s, const char *dir, char **path, frc_error_t *err);

/* A Nix database registering exactly paths (NULL-terminated; give a
 * closure) as the node's database has them: nix-store --dump-db of the
 * paths loaded (--load-db) into the store `local?root=<root>`, so the
 * database is <root>/nix/var/nix/db/.  Nothing of the node is written. */
int frc_store_db_template(const struct frc_store *s, char *const *paths, const char *root,
                          frc_error_t *err);

/* GC roots: <gcroots>/flox-runc/<kind>/<name>/ with one symlink per path
 * (a set of the same name is replaced atomically: a concurrent GC finds the
 * old set or the new one, whole): an environment's ("envs/<key>"). */
char *frc_gcroot_dir(const struct frc_config *c, const char *kind, const char *name);
int frc_gcroot_set(const struct frc_config *c, const char *kind, const char *name,
                   char *const *paths, frc_error_t *err);
/* A container's root: ONE symlink containers/<name> -> ../envs/<env_key>,
 * whatever the number of packages.  Nix's GC does not follow it (it points
 * to a directory, not into the store): the environment's own root pins the
 * packages, and `flox-runc gc` never removes an environment's root while a
 * container root refers to it (frc_gcroot_env_of).  Replaces a root of the
 * same name. */
int frc_gcroot_link(const struct frc_config *c, const char *name, const char *env_key,
                    frc_error_t *err);
/* The environment key the container root name refers to; NULL when it is
 * not such a link (missing, or a directory of links from before). */
char *frc_gcroot_env_of(const struct frc_config *c, const char *name);
int frc_gcroot_release(const struct frc_config *c, const char *kind, const char *name,
                       frc_error_t *err);


#endif
