/* manifest.lock (lib/lockfile.c), the text FloxHub serves for a generation.
 * Properties: what is accepted respects the header's bounds and every store
 * path passes frc_store_path_valid. */
#include "fuzz.h"
#include "lockfile.h"

static void
parse_for(const uint8_t *data, size_t size, const char *system)
{
  cleanup_lockfile struct frc_lockfile l = { 0 };
  frc_error_t err = NULL;

  if (frc_lockfile_parse((const char *) data, size, system, &l, &err) == 0)
    {
      size_t nsys = 0, npaths = 0;
      FUZZ_ASSERT(l.npkgs <= FRC_LOCK_PACKAGES_MAX && l.nvars <= FRC_LOCK_VARS_MAX);
      FUZZ_ASSERT(size <= FRC_LOCKFILE_MAX_BYTES);
      FUZZ_ASSERT(l.manifest_version >= 0); /* 0: schema-version */
      for (size_t i = 0; i < l.npkgs; i++)
        {
          size_t n = 0;
          FUZZ_ASSERT(l.pkgs[i].install_id && l.pkgs[i].label && l.pkgs[i].store_paths);
          for (char **p = l.pkgs[i].store_paths; *p; p++, n++)
            FUZZ_ASSERT(frc_store_path_valid(*p));
          FUZZ_ASSERT(n <= FRC_LOCK_OUTPUTS_MAX);
          npaths += n;
        }
      for (size_t i = 0; i < l.nvars; i++)
        FUZZ_ASSERT(l.var_names[i] && l.var_values[i]);
      for (char **s = l.systems; s && *s; s++)
        nsys++;
      FUZZ_ASSERT(nsys <= FRC_LOCK_SYSTEMS_MAX && npaths <= FRC_LOCK_STORE_PATHS_MAX);
    }
  fuzz_check_error(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  parse_for(data, size, "x86_64-linux");
  parse_for(data, size, "aarch64-darwin");
  return 0;
}
