/* make-pin STATE_DIR STORE_PREFIX KEY VIEW: makes the pin of VIEW's binds
 * (lib/viewpin.h) under STATE_DIR as create does, and prints its path and
 * its namespace's inode number;
 * exit 1 when none could be made.  For tests/bench/hook.sh. */
#include <stdio.h>

#include "config.h"
#include "util.h"
#include "viewpin.h"

int
main(int argc, char **argv)
{
  struct frc_config c = { 0 };
  struct frc_logger log = { 0 };
  cleanup_free char *pin = NULL;
  unsigned long long ino = 0;

  if (argc != 5)
    {
      fprintf(stderr, "usage: make-pin STATE_DIR STORE_PREFIX KEY VIEW\n");
      return 2;
    }
  c.state_dir = argv[1];
  c.store_prefix = argv[2];
  log.debug = true;
  log.stderr_fd = 2;
  pin = frc_viewpin_ensure(&c, argv[3], argv[4], &log, &ino);
  if (pin == NULL)
    return 1;
  printf("%s %llu\n", pin, ino);
  return 0;
}
