/* activate-gen - the activation's wrapper, alone (tests/bench/activate.sh).
 *
 *   activate-gen gen ENV_PATH BASH HOOK NVARS OUTDIR [RECORD]
 *     writes OUTDIR/argv and OUTDIR/env (NUL-separated): the process
 *     frc_activate_process makes of `/bin/true` with a manifest var that
 *     needs bash, HOOK 1/0 (ENV_PATH/activate.d/hook-on-activate), and an
 *     environment of NVARS extra variables (a pod's service links); RECORD
 *     1: a container's first activation, which records itself at
 *     FRC_ACTIVATION_RECORD for execs to attach to (a /run/flox tmpfs);
 *   activate-gen time DIR N
 *     spawns DIR's argv with DIR's env N times (stdout, stderr to
 *     /dev/null) and prints each run's wall-clock µs; exit 1 on a failure.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "activate.h"
#include "json.h"
#include "spec.h"
#include "util.h"

static void
write_list(const char *dir, const char *name, yajl_val list)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    exit(1);
  for (size_t i = 0; i < list->u.array.len; i++)
    {
      const char *v = YAJL_GET_STRING(list->u.array.values[i]);
      fputs(v ? v : "", f);
      fputc(0, f);
    }
  if (fclose(f) != 0)
    exit(1);
}

static int
gen(char **argv)
{
  static const struct frc_env_features none = { 0 };
  static char *names[] = { (char *) "GREETING" };
  static char *values[] = { (char *) "hello $HOME" };
  struct frc_activation a = {
    .env_path = argv[0], .store_prefix = "", .description = "bench/activate", .owner = "bench",
    .name = "activate", .mode = FRC_MODE_RUN, .var_names = names, .var_values = values, .nvars = 1,
    .has_hook = atoi(argv[2]) != 0, .bash = argv[1], .features = &none,
    .record = argv[5] != NULL && atoi(argv[5]) != 0,
  };
  int nvars = atoi(argv[3]);
  cleanup_free char *json = NULL;
  size_t json_len = 0;
  FILE *f = open_memstream(&json, &json_len);
  cleanup_json yajl_val p = NULL;
  frc_error_t err = NULL;

  fputs("{\"args\":[\"/bin/true\"],\"cwd\":\"/\",\"env\":[\"PATH=/usr/bin:/bin\",\"HOME=/root\"", f);
  for (int i = 0; i < nvars; i++)
    fprintf(f, ",\"SVC_%04d_SERVICE_HOST=10.96.%d.%d\"", i, i / 250, i % 250);
  fputs("]}", f);
  fclose(f);
  if (frc_json_parse(json, strlen(json), &p, &err) < 0 || frc_activate_process(&a, p, &err) < 0)
    {
      fprintf(stderr, "activate-gen: %s\n", err->msg);
      return 1;
    }
  write_list(argv[4], "argv", frc_json_get(p, "args"));
  write_list(argv[4], "env", frc_json_get(p, "env"));
  return 0;
}

static char **
load(const char *dir, const char *name)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  size_t len = 0, n = 0, k = 0;
  char *text = NULL, **v;
  frc_error_t err = NULL;

  if (read_file_bounded(path, 1 << 24, &text, &len, &err) < 0)
    exit(1);
  for (size_t i = 0; i < len; i++)
    n += text[i] == '\0';
  v = xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < len; i += strlen(text + i) + 1)
    v[k++] = text + i;
  return v;
}

static int
time_runs(char **argv)
{
  char **args = load(argv[0], "argv"), **env = load(argv[0], "env");
  int n = atoi(argv[1]);
  posix_spawn_file_actions_t fa;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < n; i++)
    {
      struct timespec t0, t1;
      pid_t pid;
      int st;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      if (posix_spawn(&pid, args[0], &fa, NULL, args, env) != 0 || waitpid(pid, &st, 0) < 0)
        return 1;
      clock_gettime(CLOCK_MONOTONIC, &t1);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
      printf("%lld\n", (long long) (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    }
  return 0;
}

int
main(int argc, char **argv)
{
  if ((argc == 7 || argc == 8) && strcmp(argv[1], "gen") == 0)
    return gen(argv + 2);
  if (argc == 4 && strcmp(argv[1], "time") == 0)
    return time_runs(argv + 2);
  fprintf(stderr, "usage: activate-gen gen ENV_PATH BASH HOOK NVARS OUTDIR [RECORD] | time DIR N\n");
  return 2;
}
