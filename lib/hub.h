/* hub.h - resolving owner/name[:N] to a generation's manifest.lock.
 *
 * Owns: the node cache of FloxHub environments under
 * <state_dir>/hub/<hub key>/<owner>/<name>/ (live.json: the branch commit
 * and live generation last seen; gen/<N>/manifest.lock: immutable per
 * generation; auth/<sha256>: when FloxHub last accepted a credential for
 * this environment; <state_dir>/hub/<hub key>/.capabilities: the hub's v2
 * capability advertisement, kept as bytes for the next fetch child, which
 * then skips info/refs), a cache hit read without the lock (another
 * tenant's resolutions of the environment never hold it up), single
 * flight (one flock per environment and credential, .lock-<sha256>:
 * concurrent resolutions with one credential wait for one fetch and then
 * share it, even when the windows
 * below are 0: what it wrote after they asked; one that waits past its
 * deadline falls back as if its own fetch had; another credential's, a
 * tenant's refused tokens among them, never waits on them), freshness and
 * authorisation windows, retries with backoff inside one deadline, the
 * offline fallbacks, and the user-facing messages for every failure (the
 * token masked in them, even where a server quotes it back); and
 * the seam of privilege separation: cache hits never fork, a fetch forks
 * once into the unprivileged child of lib/sandbox.h, which talks to FloxHub
 * (lib/git.c), parses every byte and hands back only validated results (a
 * commit, generation numbers, one lockfile frc_lockfile_parse accepted);
 * only this root parent writes the node cache.
 */
#ifndef FRC_HUB_H
#define FRC_HUB_H

#include <stdbool.h>

#include "annotations.h"
#include "config.h"
#include "log.h"

struct frc_resolve_request
{
  const struct frc_config *config;
  const struct frc_envref *ref;
  const char *token; /* NULL: anonymous */
  const struct frc_logger *log;
  long long deadline_ns; /* CLOCK_MONOTONIC; 0: now + config deadline */
  /* NULL, or called once right before the fetch child starts when this
   * resolution fetches a generation of which nothing is on the node (a new
   * node or environment, a pinned generation not seen): the caller starts
   * there what a cold create needs next (its nix-store), beside the fetch */
  void (*on_cold_fetch)(void *data);
  void *on_cold_fetch_data;
  /* the cached manifest.lock opened, not read: frc_resolved_lockfile reads
   * it when the caller needs the text (a warm create that knows its
   * environment by the file's identity never does: 150 KiB at 150
   * packages) */
  bool lockfile_later;
};

enum frc_resolve_source
{
  FRC_FROM_CACHE, /* no request at all */
  FRC_FROM_CACHE_VERIFIED, /* the hub confirmed the branch and credential */
  FRC_FROM_HUB, /* fetched now */
  FRC_FROM_CACHE_OFFLINE, /* the hub was unreachable: last copy seen */
};

struct frc_resolved
{
  unsigned generation;
  unsigned live; /* the live generation as last seen */
  bool pinned;
  enum frc_resolve_source source;
  char *commit; /* floxmeta commit the generation was read from */
  char *lockfile_path; /* the cached manifest.lock on the node */
  char *lockfile; /* its text (lockfile_later: NULL until frc_resolved_lockfile) */
  size_t lockfile_len;
  int lockfile_fd; /* lockfile_later: the file, opened, while lockfile_open */
  bool lockfile_open;
  /* that file's identity as read ("dev:ino:size:mtime:ctime", ns times):
   * a generation's file is written once, by rename */
  char lockfile_id[128];
  unsigned requests; /* HTTP requests made */
};

int frc_hub_resolve(const struct frc_resolve_request *req, struct frc_resolved *out,
                    frc_error_t *err);
/* The text of r's lockfile: read now from the file opened for
 * lockfile_later (the same file as lockfile_id), or already there. */
int frc_resolved_lockfile(struct frc_resolved *r, frc_error_t *err);
void frc_resolved_release(struct frc_resolved *r);
#define cleanup_resolved __attribute__((cleanup(frc_resolved_release)))
const char *frc_resolve_source_name(enum frc_resolve_source s);

/* Whether the hub serves ref's branch to token (NULL: anonymous): the
 * branch's commit, asked by the unprivileged fetch child, nothing cached
 * (doctor). */
int frc_hub_check_access(const struct frc_config *cfg, const struct frc_envref *ref,
                         const char *token, long long deadline_ns, char commit[41],
                         frc_error_t *err);

/* The git URL of an owner's floxmeta repository on the configured hub. */
char *frc_hub_repo_url(const struct frc_config *c, const char *owner);

#endif
