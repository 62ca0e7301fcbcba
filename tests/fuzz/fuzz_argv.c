/* runc's command-line grammar (lib/argv.c) on an argv an engine or a person
 * writes.  Input: the arguments after argv[0], separated by NUL bytes.
 * Properties: nothing is copied (every string the parser returns is one of
 * argv's, or points into one), indexes stay inside argv, and the verb is the
 * one frc_verb_from_name names. */
#include "argv.h"
#include "fuzz.h"

#define MAX_ARGS 64

static void
inside(char *const *argv, int argc, const char *s)
{
  if (s == NULL)
    return;
  for (int i = 0; i < argc; i++)
    if (s >= argv[i] && s <= argv[i] + strlen(argv[i]))
      return;
  FUZZ_ASSERT(!"a string outside argv");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *argv[MAX_ARGS + 2];
  cleanup_free char *buf = xmalloc0(size + 1);
  struct frc_cmdline c;
  frc_error_t err = NULL;
  int argc = 0;

  memcpy(buf, data, size);
  argv[argc++] = (char *) "flox-runc";
  for (size_t i = 0; i <= size && argc <= MAX_ARGS; )
    {
      argv[argc++] = buf + i;
      i += strlen(buf + i) + 1;
    }
  argv[argc] = NULL;

  if (frc_cmdline_parse(argc, argv, &c, &err) == 0)
    {
      FUZZ_ASSERT(c.argc == argc && c.argv == argv);
      FUZZ_ASSERT(c.verb_index >= -1 && c.verb_index < argc);
      FUZZ_ASSERT(c.cmd_index >= -1 && c.cmd_index < argc);
      if (c.verb_index >= 0)
        {
          enum frc_verb v = frc_verb_from_name(argv[c.verb_index]);
          FUZZ_ASSERT(c.verb_name == argv[c.verb_index]);
          FUZZ_ASSERT(v == c.verb || c.g.unknown_flag != NULL);
        }
      if (c.nargs > 0)
        FUZZ_ASSERT(c.args >= argv && c.args + c.nargs <= argv + argc);
      inside(argv, argc, c.g.root);
      inside(argv, argc, c.g.log);
      inside(argv, argc, c.g.log_format);
      inside(argv, argc, c.bundle);
      inside(argv, argc, c.pid_file);
      inside(argv, argc, c.console_socket);
      inside(argv, argc, c.process);
      inside(argv, argc, c.id);
      inside(argv, argc, c.image_path);
    }
  fuzz_check_error(&err);
  (void) frc_verb_from_name(buf);
  return 0;
}
