/* argv.h - runc's command-line grammar.
 *
 * Owns: finding the verb and the options flox-runc needs in an argv written
 * for runc or crun, without changing or copying it (every pointer in
 * struct frc_cmdline points into argv).  Global flags come before the verb in
 * the forms --f v, --f=v, -f v, -f=v (Go's single-dash long form) and -x v /
 * -xv for short letters; boolean flags never take a separate value.  The verb
 * is the first token that is neither a global flag nor a global flag's value,
 * so a container id or a flag value that reads "create" is never mistaken for
 * it.  Verb flags may follow the container id (urfave/cli and argp reorder),
 * except for exec whose arguments after the id are the command.
 */
#ifndef FRC_ARGV_H
#define FRC_ARGV_H

#include <stdbool.h>

#include "error.h"

enum frc_verb
{
  FRC_VERB_NONE = 0, /* no verb: e.g. `flox-runc --help` */
  FRC_VERB_PASSTHROUGH, /* any runc verb flox-runc does not handle */
  FRC_VERB_CREATE,
  FRC_VERB_RUN,
  FRC_VERB_EXEC,
  FRC_VERB_DELETE,
  FRC_VERB_CHECKPOINT, /* runc/crun checkpoint (CRIU) */
  FRC_VERB_RESTORE, /* runc/crun restore: creates the container like create */
  /* flox-runc's own node verbs */
  FRC_VERB_RESOLVE,
  FRC_VERB_PREFETCH,
  FRC_VERB_GC,
  FRC_VERB_DOCTOR,
  FRC_VERB_CONFIG,
  FRC_VERB_INSTALL,
  FRC_VERB_BIND_CLOSURE, /* the createContainer hook flox-runc writes (lib/bindhook.h) */
};

struct frc_globals
{
  const char *root; /* --root, NULL when absent (runc's default then applies) */
  const char *log; /* --log */
  const char *log_format; /* --log-format: "text" (default) or "json" */
  const char *log_level; /* crun --log-level */
  const char *rootless;
  const char *criu;
  const char *cgroup_manager; /* crun --cgroup-manager */
  bool debug;
  bool systemd_cgroup;
  bool help;
  bool version;
  /* A global flag the grammar does not know: the verb cannot be located
   * reliably, so the call is handed to the real runtime untouched. */
  const char *unknown_flag;
};

struct frc_cmdline
{
  int argc;
  char **argv;
  struct frc_globals g;
  enum frc_verb verb;
  int verb_index; /* index of the verb in argv, -1 when none */
  const char *verb_name;

  /* Options of the handled verbs (NULL/false when absent). */
  const char *bundle; /* create, run, restore: --bundle/-b; NULL means the cwd */
  const char *pid_file;
  const char *console_socket;
  const char *preserve_fds; /* create, run: --preserve-fds N (fds 3..N+2 go to the container) */
  const char *process; /* exec --process/-p */
  const char *image_path; /* checkpoint, restore: --image-path (NULL: the runtime's default) */
  bool verb_help; /* `VERB --help` (-h) of a handled verb: the runtime's to answer */
  bool detach;
  bool keep; /* run --keep */
  bool force; /* delete --force/-f */
  const char *id; /* the container id */
  int cmd_index; /* exec: index in argv of the inline command, -1 if none */
  int nargs; /* positional arguments of the verb (own verbs) */
  char **args;
};

/* Fills *out from argv.  Fails only for a handled verb whose own flags are
 * malformed (an unknown flag, a missing value, no container id): in that case
 * it is not safe to edit any bundle. */
int frc_cmdline_parse(int argc, char **argv, struct frc_cmdline *out, frc_error_t *err);

/* Locates only the verb; used by the passthrough fast path. */
enum frc_verb frc_verb_from_name(const char *name);

#endif
