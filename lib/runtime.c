#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "runtime.h"
#include "util.h"

#define BUILD_ID_MAX 64

static const char *const fallback_dirs[] = {
  "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", NULL,
};

struct note_search
{
  unsigned char id[BUILD_ID_MAX];
  size_t len;
};

/* Finds NT_GNU_BUILD_ID in a buffer of ELF notes. */
static size_t
find_build_id(const unsigned char *notes, size_t size, unsigned char *out)
{
  size_t off = 0;
  while (off + sizeof(ElfW(Nhdr)) <= size)
    {
      const ElfW(Nhdr) *n = (const void *) (notes + off);
      size_t name_sz = (n->n_namesz + 3) & ~(size_t) 3;
      size_t desc_sz = (n->n_descsz + 3) & ~(size_t) 3;
      size_t desc_off = off + sizeof(*n) + name_sz;
      if (desc_off + n->n_descsz > size)
        break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4
          && memcmp(notes + off + sizeof(*n), "GNU", 4) == 0 && n->n_descsz <= BUILD_ID_MAX)
        {
          memcpy(out, notes + desc_off, n->n_descsz);
          return n->n_descsz;
        }
      off = desc_off + desc_sz;
    }
  return 0;
}

static int
self_note_cb(struct dl_phdr_info *info, size_t size, void *data)
{
  struct note_search *s = data;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_NOTE)
      {
        s->len = find_build_id((const unsigned char *) (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr),
                               info->dlpi_phdr[i].p_memsz, s->id);
        if (s->len)
          break;
      }
  return 1; /* the first object is the main program */
}

/* The build id of an ELF file on disk (0 when none or not ELF). */
static size_t
file_build_id(int fd, unsigned char *out)
{
  ElfW(Ehdr) eh;
  ElfW(Phdr) ph[64];
  size_t n;

  if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t) sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0
      || eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
      || eh.e_phentsize != sizeof(ElfW(Phdr)))
    return 0;
  n = eh.e_phnum < 64 ? eh.e_phnum : 64;
  if (pread(fd, ph, n * sizeof(ph[0]), (off_t) eh.e_phoff) != (ssize_t) (n * sizeof(ph[0])))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (ph[i].p_type == PT_NOTE && ph[i].p_filesz > 0 && ph[i].p_filesz <= 4096)
      {
        unsigned char notes[4096];
        size_t len;
        if (pread(fd, notes, ph[i].p_filesz, (off_t) ph[i].p_offset) != (ssize_t) ph[i].p_filesz)
          return 0;
        len = find_build_id(notes, ph[i].p_filesz, out);
        if (len)
          return len;
      }
  return 0;
}

/* Opens path once: is it flox-runc (same file or same build id), and is it
 * a script? */
static void
inspect(const char *path, bool *self_out, bool *script_out)
{
  char self[PATH_MAX], real[PATH_MAX], head[2];
  ssize_t n;
  struct note_search mine = { .len = 0 };
  unsigned char theirs[BUILD_ID_MAX];
  cleanup_close int fd = -1;
  size_t len;

  *self_out = *script_out = false;
  if (realpath(path, real) == NULL)
    return;
  n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0)
    {
      self[n] = '\0';
      if (strcmp(self, real) == 0)
        {
          *self_out = true;
          return;
        }
    }
  fd = open(real, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || pread(fd, head, 2, 0) != 2)
    return;
  if (head[0] == '#' && head[1] == '!')
    {
      *script_out = true;
      return;
    }
  dl_iterate_phdr(self_note_cb, &mine);
  if (mine.len == 0)
    return;
  len = file_build_id(fd, theirs);
  *self_out = len == mine.len && memcmp(theirs, mine.id, len) == 0;
}

bool
frc_runtime_is_self(const char *path)
{
  bool self, script;
  inspect(path, &self, &script);
  return self;
}

static bool
is_executable_file(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Whether cand is a usable runtime; fills rt when it is. */
static bool
take(const char *cand, struct frc_runtime *rt)
{
  bool self, script;
  if (!is_executable_file(cand))
    return false;
  inspect(cand, &self, &script);
  if (self)
    return false;
  rt->path = xstrdup(cand);
  rt->script = script;
  return true;
}

/* The first executable `name` in PATH then the fallback directories that is
 * not flox-runc itself. */
static bool
search(const char *name, struct frc_runtime *rt)
{
  const char *path_env = getenv("PATH");
  cleanup_free char *dirs = xstrdup(path_env ? path_env : "");
  char *save = NULL;

  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *cand = NULL;
      if (d[0] != '/')
        continue; /* relative PATH entries are never trusted */
      cand = xasprintf("%s/%s", d, name);
      if (take(cand, rt))
        return true;
    }
  for (const char *const *d = fallback_dirs; *d; d++)
    {
      cleanup_free char *cand = xasprintf("%s/%s", *d, name);
      if (take(cand, rt))
        return true;
    }
  return false;
}

int
frc_runtime_locate(const char *configured, struct frc_runtime *rt, frc_error_t *err)
{
  memset(rt, 0, sizeof(*rt));
  if (configured && strchr(configured, '/'))
    {
      if (configured[0] != '/')
        return frc_error(err, "the node config's `runtime` \"%s\" must be an absolute path or a "
                              "program name",
                         configured);
      if (!is_executable_file(configured))
        return frc_error(err, "the real runtime `%s` named by the node config's `runtime` is not "
                              "an executable file: install runc or crun there or fix `runtime`",
                         configured);
      if (!take(configured, rt))
        return frc_error(err, "the node config's `runtime` `%s` is flox-runc itself: set it to the "
                              "real runc or crun (e.g. /usr/sbin/runc)",
                         configured);
      return 0;
    }
  if (!search(configured ? configured : "runc", rt))
    return frc_error(err, "cannot find the real runtime `%s` in PATH or the sbin/bin directories: "
                          "install runc (apt-get install runc) or set `runtime` in the node config",
                     configured ? configured : "runc");
  return 0;
}

int
frc_runtime_check_loop(frc_error_t *err)
{
  const char *v = getenv(FRC_LOOP_GUARD_ENV);
  if (v == NULL)
    return 0;
  return frc_error(err, "loop detected: flox-runc was called again by the wrapper `%s` it runs as "
                        "the real runtime; point the node config's `runtime` at the real runc or crun",
                   v);
}

int
frc_runtime_exec(const struct frc_runtime *rt, char **argv, frc_error_t *err)
{
  argv[0] = rt->path;
  if (rt->script)
    setenv(FRC_LOOP_GUARD_ENV, rt->path, 1);
  execv(rt->path, argv);
  return frc_error_errno(err, errno, "cannot execute the real runtime `%s`", rt->path);
}

void
frc_runtime_release(struct frc_runtime *rt)
{
  free(rt->path);
  rt->path = NULL;
}

int
frc_runtime_run(const struct frc_runtime *rt, char **argv, bool quiet, int keep_fds,
                frc_error_t *err)
{
  return frc_runtime_run_timed(rt, argv, quiet, keep_fds, 0, err);
}

int
frc_runtime_run_timed(const struct frc_runtime *rt, char **argv, bool quiet, int keep_fds,
                      long long timeout_ns, frc_error_t *err)
{
  long long deadline = timeout_ns > 0 ? frc_now_ns() + timeout_ns : 0;
  /* While the runtime runs, flox-runc stays in between (it releases what
   * create took afterwards): signals meant for the runtime are handed on,
   * and flox-runc itself is not killed by them.  SIGINT and SIGQUIT from a
   * terminal already reach the runtime, which is in the same process group. */
  static const int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 };
  sigset_t set, old;
  int status = 0;
  pid_t pid;

  sigemptyset(&set);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
    sigaddset(&set, forwarded[i]);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid = fork();
  if (pid < 0)
    {
      int e = errno;
      sigprocmask(SIG_SETMASK, &old, NULL);
      return frc_error_errno(err, e, "cannot start the real runtime");
    }
  if (pid == 0)
    {
      frc_error_t ignored = NULL;
      sigprocmask(SIG_SETMASK, &old, NULL);
      if (quiet)
        {
          int fd = open("/dev/null", O_RDWR);
          if (fd >= 0)
            {
              dup2(fd, 1);
              dup2(fd, 2);
            }
        }
      /* flox-runc's and the engine's other descriptors stay out. */
      frc_close_fds_from(3 + keep_fds);
      frc_runtime_exec(rt, argv, &ignored);
      _exit(127);
    }
  for (;;)
    {
      struct timespec tick = { 1, 0 };
      pid_t w = waitpid(pid, &status, WNOHANG);
      int sig;
      if (w == pid)
        break;
      if (w < 0 && errno != EINTR)
        {
          int e = errno;
          sigprocmask(SIG_SETMASK, &old, NULL);
          return frc_error_errno(err, e, "cannot wait for the real runtime");
        }
      if (deadline)
        {
          long long left = deadline - frc_now_ns();
          if (left <= 0)
            {
              kill(pid, SIGKILL);
              waitpid(pid, &status, 0);
              sigprocmask(SIG_SETMASK, &old, NULL);
              return FRC_RUNTIME_TIMED_OUT;
            }
          if (left < 1000000000LL)
            tick = (struct timespec){ 0, (long) left };
        }
      sig = sigtimedwait(&set, NULL, &tick);
      for (size_t i = 0; sig > 0 && i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (sig == forwarded[i])
          kill(pid, sig);
    }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
