#include <stddef.h>
#include <string.h>

#include "argv.h"
#include "util.h"

enum flag_kind
{
  FLAG_BOOL,
  FLAG_VALUE,
};

/* Where a recognised flag's value goes, as an offset into the target struct
 * (struct frc_globals or struct frc_cmdline); -1 when flox-runc only needs to
 * skip it. */
struct flag_def
{
  const char *name;
  char short_name;
  enum flag_kind kind;
  ptrdiff_t offset;
};

#define G(field) offsetof(struct frc_globals, field)
#define C(field) offsetof(struct frc_cmdline, field)
#define SKIP (-1)

/* runc 1.1 and crun 1.8 global flags. */
static const struct flag_def global_flags[] = {
  { "debug", 0, FLAG_BOOL, G(debug) },
  { "log", 0, FLAG_VALUE, G(log) },
  { "log-format", 0, FLAG_VALUE, G(log_format) },
  { "log-level", 0, FLAG_VALUE, G(log_level) },
  { "root", 0, FLAG_VALUE, G(root) },
  { "criu", 0, FLAG_VALUE, G(criu) },
  { "systemd-cgroup", 0, FLAG_BOOL, G(systemd_cgroup) },
  { "rootless", 0, FLAG_VALUE, G(rootless) },
  { "cgroup-manager", 0, FLAG_VALUE, G(cgroup_manager) },
  { "help", 'h', FLAG_BOOL, G(help) },
  { "usage", '?', FLAG_BOOL, G(help) },
  { "version", 'v', FLAG_BOOL, G(version) },
  { "version", 'V', FLAG_BOOL, G(version) },
  { NULL, 0, 0, 0 },
};

static const struct flag_def create_flags[] = {
  { "bundle", 'b', FLAG_VALUE, C(bundle) },
  { "console-socket", 0, FLAG_VALUE, C(console_socket) },
  { "pidfd-socket", 0, FLAG_VALUE, SKIP },
  { "pid-file", 0, FLAG_VALUE, C(pid_file) },
  { "no-pivot", 0, FLAG_BOOL, SKIP },
  { "no-new-keyring", 0, FLAG_BOOL, SKIP },
  { "preserve-fds", 0, FLAG_VALUE, C(preserve_fds) },
  { NULL, 0, 0, 0 },
};

static const struct flag_def run_flags[] = {
  { "bundle", 'b', FLAG_VALUE, C(bundle) },
  { "console-socket", 0, FLAG_VALUE, C(console_socket) },
  { "pidfd-socket", 0, FLAG_VALUE, SKIP },
  { "pid-file", 0, FLAG_VALUE, C(pid_file) },
  { "no-pivot", 0, FLAG_BOOL, SKIP },
  { "no-new-keyring", 0, FLAG_BOOL, SKIP },
  { "preserve-fds", 0, FLAG_VALUE, C(preserve_fds) },
  { "detach", 'd', FLAG_BOOL, C(detach) },
  { "keep", 0, FLAG_BOOL, C(keep) },
  { "no-subreaper", 0, FLAG_BOOL, SKIP },
  { NULL, 0, 0, 0 },
};

static const struct flag_def exec_flags[] = {
  { "console-socket", 0, FLAG_VALUE, C(console_socket) },
  { "pidfd-socket", 0, FLAG_VALUE, SKIP },
  { "cwd", 0, FLAG_VALUE, SKIP },
  { "env", 'e', FLAG_VALUE, SKIP },
  { "tty", 't', FLAG_BOOL, SKIP },
  { "user", 'u', FLAG_VALUE, SKIP },
  { "additional-gids", 'g', FLAG_VALUE, SKIP },
  { "process", 'p', FLAG_VALUE, C(process) },
  { "detach", 'd', FLAG_BOOL, C(detach) },
  { "pid-file", 0, FLAG_VALUE, C(pid_file) },
  { "process-label", 0, FLAG_VALUE, SKIP },
  { "apparmor", 0, FLAG_VALUE, SKIP },
  { "no-new-privs", 0, FLAG_BOOL, SKIP },
  { "cap", 'c', FLAG_VALUE, SKIP },
  { "preserve-fds", 0, FLAG_VALUE, SKIP },
  { "cgroup", 0, FLAG_VALUE, SKIP },
  { "ignore-paused", 0, FLAG_BOOL, SKIP },
  { NULL, 0, 0, 0 },
};

/* runc 1.1 and crun 1.8 checkpoint and restore. */
static const struct flag_def checkpoint_flags[] = {
  { "image-path", 0, FLAG_VALUE, C(image_path) },
  { "work-path", 0, FLAG_VALUE, SKIP },
  { "parent-path", 0, FLAG_VALUE, SKIP },
  { "leave-running", 0, FLAG_BOOL, SKIP },
  { "tcp-established", 0, FLAG_BOOL, SKIP },
  { "ext-unix-sk", 0, FLAG_BOOL, SKIP },
  { "shell-job", 0, FLAG_BOOL, SKIP },
  { "lazy-pages", 0, FLAG_BOOL, SKIP },
  { "status-fd", 0, FLAG_VALUE, SKIP },
  { "page-server", 0, FLAG_VALUE, SKIP },
  { "file-locks", 0, FLAG_BOOL, SKIP },
  { "pre-dump", 0, FLAG_BOOL, SKIP },
  { "manage-cgroups-mode", 0, FLAG_VALUE, SKIP },
  { "empty-ns", 0, FLAG_VALUE, SKIP },
  { "auto-dedup", 0, FLAG_BOOL, SKIP },
  { NULL, 0, 0, 0 },
};

static const struct flag_def restore_flags[] = {
  { "bundle", 'b', FLAG_VALUE, C(bundle) },
  { "image-path", 0, FLAG_VALUE, C(image_path) },
  { "work-path", 0, FLAG_VALUE, SKIP },
  { "console-socket", 0, FLAG_VALUE, C(console_socket) },
  { "pid-file", 0, FLAG_VALUE, C(pid_file) },
  { "detach", 'd', FLAG_BOOL, C(detach) },
  { "tcp-established", 0, FLAG_BOOL, SKIP },
  { "ext-unix-sk", 0, FLAG_BOOL, SKIP },
  { "shell-job", 0, FLAG_BOOL, SKIP },
  { "file-locks", 0, FLAG_BOOL, SKIP },
  { "manage-cgroups-mode", 0, FLAG_VALUE, SKIP },
  { "no-subreaper", 0, FLAG_BOOL, SKIP },
  { "no-pivot", 0, FLAG_BOOL, SKIP },
  { "empty-ns", 0, FLAG_VALUE, SKIP },
  { "auto-dedup", 0, FLAG_BOOL, SKIP },
  { "lazy-pages", 0, FLAG_BOOL, SKIP },
  { "lsm-profile", 0, FLAG_VALUE, SKIP },
  { "lsm-mount-context", 0, FLAG_VALUE, SKIP },
  { NULL, 0, 0, 0 },
};

static const struct flag_def delete_flags[] = {
  { "force", 'f', FLAG_BOOL, C(force) },
  { NULL, 0, 0, 0 },
};

static const struct
{
  const char *name;
  enum frc_verb verb;
} verbs[] = {
  { "create", FRC_VERB_CREATE },   { "run", FRC_VERB_RUN },
  { "exec", FRC_VERB_EXEC },       { "delete", FRC_VERB_DELETE },
  { "resolve", FRC_VERB_RESOLVE }, { "prefetch", FRC_VERB_PREFETCH },
  { "gc", FRC_VERB_GC },           { "doctor", FRC_VERB_DOCTOR },
  { "config", FRC_VERB_CONFIG },   { "install", FRC_VERB_INSTALL },
  { "bind-closure", FRC_VERB_BIND_CLOSURE },
  { "checkpoint", FRC_VERB_CHECKPOINT }, { "restore", FRC_VERB_RESTORE },
};

enum frc_verb
frc_verb_from_name(const char *name)
{
  for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
    if (strcmp(verbs[i].name, name) == 0)
      return verbs[i].verb;
  return FRC_VERB_PASSTHROUGH;
}

/* The outcome of matching one token against a flag table. */
struct flag_match
{
  const struct flag_def *def; /* NULL: not a known flag */
  const char *value; /* inline value (--f=v, -xv), NULL if none */
};

static struct flag_match
match_flag(const struct flag_def *table, const char *tok)
{
  struct flag_match m = { NULL, NULL };
  const char *name;
  size_t len;

  if (tok[0] != '-' || tok[1] == '\0')
    return m;
  name = tok[1] == '-' ? tok + 2 : tok + 1;
  len = strcspn(name, "=");
  /* Long names, with one or two dashes (Go's flag package takes both). */
  for (const struct flag_def *d = table; d->name; d++)
    if (len == strlen(d->name) && strncmp(name, d->name, len) == 0)
      {
        m.def = d;
        m.value = name[len] == '=' ? name + len + 1 : NULL;
        return m;
      }
  /* Short letters: -x, -x=v, -xv (argp), only with one dash. */
  if (tok[1] != '-')
    for (const struct flag_def *d = table; d->name; d++)
      if (d->short_name != 0 && d->short_name == tok[1])
        {
          m.def = d;
          if (tok[2] == '=')
            m.value = tok + 3;
          else if (tok[2] != '\0')
            m.value = d->kind == FLAG_VALUE ? tok + 2 : NULL;
          if (tok[2] != '\0' && tok[2] != '=' && d->kind == FLAG_BOOL)
            m.def = NULL; /* -dx style bundles of booleans: not used by engines */
          return m;
        }
  return m;
}

static bool
parse_bool(const char *v)
{
  return v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "t") == 0
         || strcmp(v, "TRUE") == 0 || strcmp(v, "True") == 0;
}

/* Stores a matched flag into base; consumes the next token when the value is
 * separate.  Returns the number of tokens consumed, or -1 when a value is
 * missing. */
static int
store_flag(void *base, struct flag_match m, int i, int argc, char **argv)
{
  int used = 1;
  const char *value = m.value;

  if (m.def->kind == FLAG_VALUE && value == NULL)
    {
      if (i + 1 >= argc)
        return -1;
      value = argv[i + 1];
      used = 2;
    }
  if (m.def->offset == SKIP)
    return used;
  if (m.def->kind == FLAG_VALUE)
    memcpy((char *) base + m.def->offset, &value, sizeof(value)); /* aligned: a field */
  else
    *(bool *) ((char *) base + m.def->offset) = parse_bool(value);
  return used;
}

/* An error quoting argument tok escaped (a control character in argv must
 * not reach the log raw). */
#define bad_token(err, fmt, tok, verb)                                                             \
  __extension__({                                                                                  \
    cleanup_free char *esc_ = escape_for_message((tok), strlen(tok), 64);                          \
    frc_error((err), fmt, esc_, (verb));                                                           \
  })

static int
parse_verb_args(struct frc_cmdline *out, const struct flag_def *table, bool stop_at_id,
                frc_error_t *err)
{
  int argc = out->argc;
  char **argv = out->argv;
  bool only_positional = false;

  for (int i = out->verb_index + 1; i < argc; i++)
    {
      const char *tok = argv[i];
      struct flag_match m;
      int used;

      if (!only_positional && strcmp(tok, "--") == 0)
        {
          only_positional = true;
          continue;
        }
      if (only_positional || tok[0] != '-' || tok[1] == '\0')
        {
          if (out->id == NULL)
            {
              out->id = tok;
              if (stop_at_id)
                {
                  out->cmd_index = i + 1 < argc ? i + 1 : -1;
                  return 0;
                }
              continue;
            }
          return bad_token(err, "unexpected argument `%s` for `%s`: it takes one container id",
                           tok, out->verb_name);
        }
      /* `VERB --help` is the runtime's (podman probes `checkpoint --help`). */
      if (strcmp(tok, "--help") == 0 || strcmp(tok, "-help") == 0 || strcmp(tok, "-h") == 0)
        {
          out->verb_help = true;
          return 0;
        }
      m = match_flag(table, tok);
      if (m.def == NULL)
        return bad_token(err,
                         "unknown flag `%s` for `%s`: flox-runc does not know it, so it will not "
                         "edit the container; update flox-runc or remove the flag",
                         tok, out->verb_name);
      used = store_flag(out, m, i, argc, argv);
      if (used < 0)
        return bad_token(err, "flag `%s` of `%s` needs a value", tok, out->verb_name);
      i += used - 1;
    }
  if (out->id == NULL || out->id[0] == '\0')
    return frc_error(err, "`%s` needs a container id", out->verb_name);
  return 0;
}

int
frc_cmdline_parse(int argc, char **argv, struct frc_cmdline *out, frc_error_t *err)
{
  int i;

  memset(out, 0, sizeof(*out));
  out->argc = argc;
  out->argv = argv;
  out->verb_index = -1;
  out->cmd_index = -1;

  for (i = 1; i < argc; i++)
    {
      const char *tok = argv[i];
      struct flag_match m;
      int used;

      if (tok[0] != '-' || tok[1] == '\0')
        break;
      if (strcmp(tok, "--") == 0)
        {
          i++;
          break;
        }
      m = match_flag(global_flags, tok);
      if (m.def == NULL)
        {
          out->g.unknown_flag = tok;
          out->verb = FRC_VERB_PASSTHROUGH;
          return 0;
        }
      used = store_flag(&out->g, m, i, argc, argv);
      if (used < 0)
        {
          /* e.g. `--root` as the last token: the runtime reports it. */
          out->g.unknown_flag = tok;
          out->verb = FRC_VERB_PASSTHROUGH;
          return 0;
        }
      i += used - 1;
    }

  if (i >= argc)
    {
      out->verb = FRC_VERB_NONE;
      return 0;
    }
  out->verb_index = i;
  out->verb_name = argv[i];
  out->verb = frc_verb_from_name(argv[i]);
  out->args = argv + i + 1;
  out->nargs = argc - i - 1;

  switch (out->verb)
    {
    case FRC_VERB_CREATE:
      return parse_verb_args(out, create_flags, false, err);
    case FRC_VERB_RUN:
      return parse_verb_args(out, run_flags, false, err);
    case FRC_VERB_EXEC:
      return parse_verb_args(out, exec_flags, true, err);
    case FRC_VERB_DELETE:
      return parse_verb_args(out, delete_flags, false, err);
    case FRC_VERB_CHECKPOINT:
      return parse_verb_args(out, checkpoint_flags, false, err);
    case FRC_VERB_RESTORE:
      return parse_verb_args(out, restore_flags, false, err);
    default:
      return 0;
    }
}
