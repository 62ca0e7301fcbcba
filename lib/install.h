/* install.h - putting flox-runc on a node, and taking it off again.
 *
 * Owns `flox-runc install`: the binary and the node config put in place
 * under a host root ("/" on the node itself, /host in the DaemonSet's
 * install container); the runtime registered with containerd (config
 * version 1 and 2: a marked block appended to the file whose CRI section
 * containerd uses, since containerd 1.x lets an imported file replace a
 * whole plugin section; version 3: a drop-in, its directory merged into the
 * existing `imports` or the key added before the first table) and with
 * CRI-O (a crio.conf.d drop-in); the merged configuration validated with
 * the engine itself (`containerd config dump`, run in the host root) before
 * the engine is restarted, every file put back byte for byte when it does
 * not validate; the node's static bash added to its store and rooted
 * (lib/nodebash.h, inside the host root), or released by --uninstall;
 * with the record lib/nodefiles.c keeps under
 * /var/lib/flox-runc/install, a second run changes nothing and --uninstall
 * restores the node byte for byte (a file changed since is left, or only
 * flox-runc's block removed, and said).  Restarting the engine: --restart-command, else
 * systemctl when systemd runs the node (through nsenter into PID 1's
 * namespaces from a container), else a note that it must be restarted.
 */
#ifndef FRC_INSTALL_H
#define FRC_INSTALL_H

#include <stdbool.h>

#include "engineconf.h"
#include "error.h"

enum frc_install_engine
{
  FRC_INSTALL_AUTO = 0, /* the engines the node has (config or binary) */
  FRC_INSTALL_CONTAINERD,
  FRC_INSTALL_CRIO,
};

struct frc_install_opts
{
  const char *host_root; /* NULL: "/" */
  enum frc_install_engine engine;
  const char *binary; /* the flox-runc to install; NULL: this one (/proc/self/exe) */
  const char *binary_dest; /* node path; NULL: /usr/local/bin/flox-runc */
  const char *node_config; /* a node config to install; NULL: leave the node's alone */
  const char *containerd_config; /* node path; NULL: /etc/containerd/config.toml */
  const char *runtime_name; /* NULL: "flox" */
  const char *restart_command; /* run by /bin/sh -c after a change; NULL: systemctl or a note */
  bool no_restart;
  bool uninstall;
  /* one line per step: FRC_FINDING_OK (done), NOTE, PROBLEM (a warning) */
  frc_finding_fn report;
  void *data;
};

/* Installs (or uninstalls).  Returns 0 when the node is in the wanted state
 * (also when nothing had to change), -1 with *err when it could not be
 * done; then every file is as it was before the call. */
int frc_install(const struct frc_install_opts *o, frc_error_t *err);

/* The edits alone, for tests: the text of a containerd file with the
 * `imports` entry added (merged into an existing list, or the key added
 * before the first table header); NULL when an entry already covers it. */
char *frc_install_add_import(const char *text, const struct frc_toml *t, const char *entry);

#endif
