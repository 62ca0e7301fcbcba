#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "json.h"
#include "lockfile.h"
#include "nodebash.h"
#include "util.h"

#define BASH_RECORD_MAX (64u << 10)
#define BASH_MAX (64u << 20)
#define BASH_NAME "flox-runc-bash"

/* ------------------------------------------------ the path Nix gives it */

/* Nix's archive string: length (u64 little endian), bytes, zeros to 8. */
static void
nar_str(struct frc_buf *w, const void *p, size_t n)
{
  static const unsigned char zero[8] = { 0 };
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char) ((uint64_t) n >> (8 * i));
  frc_buf_add(w, len, 8);
  frc_buf_add(w, p, n);
  if (n % 8)
    frc_buf_add(w, zero, 8 - n % 8);
}

static void
nar_s(struct frc_buf *w, const char *s)
{
  nar_str(w, s, strlen(s));
}

/* Nix's base-32 (printHash32) of a 20-byte hash: 32 characters. */
static void
nix32(const unsigned char h[20], char out[33])
{
  int k = 0;
  for (int n = 31; n >= 0; n--, k++)
    {
      unsigned b = (unsigned) n * 5, i = b / 8, j = b % 8;
      unsigned c = (unsigned) (h[i] >> j) | (i >= 19 ? 0u : (unsigned) h[i + 1] << (8 - j));
      out[k] = FRC_NIX32_CHARS[c & 0x1f];
    }
  out[32] = '\0';
}

int
frc_node_bash_store_path(const void *data, size_t n, const char *name, char *out, size_t out_len,
                         frc_error_t *err)
{
  cleanup_buf struct frc_buf w = { 0 };
  unsigned char nar_hash[32], h[32], h20[20] = { 0 };
  char hex[65];
  cleanup_free char *fp = NULL;

  /* dumpPath of NAME/: a directory "bin" holding the executable "bash" */
  static const char *const head[] = { "nix-archive-1", "(", "type", "directory", "entry", "(",
                                      "name", "bin", "node", "(", "type", "directory", "entry",
                                      "(", "name", "bash", "node", "(", "type", "regular",
                                      "executable", "", "contents", NULL };
  for (const char *const *t = head; *t; t++)
    nar_s(&w, *t);
  nar_str(&w, data, n);
  for (int i = 0; i < 5; i++) /* the file, its entry, bin, its entry, NAME */
    nar_s(&w, ")");
  if (frc_sha256(w.data, w.len, nar_hash, err) < 0)
    return -1;
  /* makeFixedOutputPath(recursive, sha256): makeStorePath("source", ...),
   * the fingerprint's SHA-256 folded to 20 bytes */
  frc_hex(nar_hash, 32, hex);
  fp = xasprintf("source:sha256:%s:/nix/store:%s", hex, name);
  if (frc_sha256(fp, strlen(fp), h, err) < 0)
    return -1;
  for (int i = 0; i < 32; i++)
    h20[i % 20] ^= h[i];
  {
    char b32[33];
    nix32(h20, b32);
    if ((size_t) snprintf(out, out_len, "/nix/store/%s-%s", b32, name) >= out_len)
      return frc_error(err, "store path name `%s` too long", name);
  }
  return 0;
}

/* ------------------------------------------------------------ the node */

/* The node file's identity, for the cache of its store path. */
static char *
source_id(const struct stat *st)
{
  return xasprintf("%llu:%llu:%lld:%lld.%09ld", (unsigned long long) st->st_dev,
                   (unsigned long long) st->st_ino, (long long) st->st_size,
                   (long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec);
}

/* Whether the ELF file in data (n bytes) of this machine's class runs
 * without a dynamic loader (no PT_INTERP): a container with an empty image
 * has no libc for anything else. */
static bool
elf_is_static(const unsigned char *data, size_t n)
{
  ElfW(Ehdr) eh;
  if (n < sizeof(eh) || memcmp(data, ELFMAG, SELFMAG) != 0)
    return false;
  memcpy(&eh, data, sizeof(eh));
  if (eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
      || eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phoff > n
      || (size_t) eh.e_phnum * sizeof(ElfW(Phdr)) > n - eh.e_phoff)
    return false;
  for (size_t i = 0; i < eh.e_phnum; i++)
    {
      ElfW(Phdr) ph;
      memcpy(&ph, data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
      if (ph.p_type == PT_INTERP)
        return false;
    }
  return true;
}

/* Whether the node's root names path (its one link). */
static bool
rooted(const struct frc_config *c, const char *path)
{
  cleanup_free char *link = frc_gcroot_dir(c, "node", "bash/0");
  char target[256];
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n <= 0)
    return false;
  target[n] = '\0';
  return strcmp(target, path) == 0;
}

/* bash.json names the store path of this very node file, rooted and there. */
static char *
cached(const struct frc_config *c, const char *cache, const char *id)
{
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  frc_error_t ignored = NULL;
  const char *src, *sid, *path;

  if (frc_json_doc_load(&doc, cache, BASH_RECORD_MAX, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return NULL;
    }
  src = frc_json_get_string(doc.root, "source");
  sid = frc_json_get_string(doc.root, "id");
  path = frc_json_get_string(doc.root, "path");
  if (src && sid && path && strcmp(src, c->bash) == 0 && strcmp(sid, id) == 0
      && frc_store_path_valid(path) && rooted(c, path))
    {
      char *const one[] = { (char *) path, NULL };
      if (frc_store_all_present(c, one))
        return xstrdup(path);
    }
  return NULL;
}

/* Adds data as NAME/bin/bash, rooted first at the node's root. */
static int
add(const struct frc_store *s, const char *data, size_t n, char **pkg, frc_error_t *err)
{
  const struct frc_config *c = s->config;
  char want[128];
  char *const roots[] = { want, NULL };
  cleanup_free char *tmp = xasprintf("%s/tmp/bash.%d", c->state_dir, (int) getpid());
  cleanup_free char *dir = xasprintf("%s/" BASH_NAME, tmp);
  cleanup_free char *bin = xasprintf("%s/bin", dir);
  cleanup_free char *dst = xasprintf("%s/bash", bin);
  cleanup_free char *got = NULL;
  frc_error_t ignored = NULL;
  int rc;

  if (frc_node_bash_store_path(data, n, BASH_NAME, want, sizeof(want), err) < 0)
    return -1;
  /* Rooted before it exists (Nix ignores a root to a path it does not
   * have): from the moment nix-store --add makes it valid it is pinned,
   * and while nix-store runs its temporary root holds it. */
  if (frc_gcroot_set(c, "node", "bash", roots, err) < 0)
    return frc_error_wrap(err, "cannot root the node's bash");
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  if (frc_mkdir_p(bin, 0755, err) < 0 || write_file_replace(dst, data, n, 0555, err) < 0)
    {
      frc_rm_rf(tmp, &ignored);
      frc_error_release(&ignored);
      return frc_error_wrap(err, "cannot copy `%s` (the node config's `bash`)", c->bash);
    }
  frc_log(s->log, FRC_LOG_INFO, "flox-runc: adding %s to the node's store as %s", c->bash, want);
  rc = frc_store_add(s, dir, &got, err);
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  if (rc < 0)
    return -1;
  if (strcmp(got, want) != 0)
    {
      /* Not what Nix names such a path: root what it printed (the old
       * order, rooted after the add) and say so. */
      char *const printed[] = { got, NULL };
      frc_log(s->log, FRC_LOG_WARNING,
              "flox-runc: nix-store --add named the node's bash %s, not %s as computed: rooted "
              "after the add",
              got, want);
      if (frc_gcroot_set(c, "node", "bash", printed, err) < 0)
        return frc_error_wrap(err, "cannot root the node's bash");
    }
  *pkg = steal_pointer(&got);
  return 0;
}

int
frc_node_bash(const struct frc_store *s, char **pkg, bool *added, frc_error_t *err)
{
  const struct frc_config *c = s->config;
  cleanup_free char *cache = xasprintf("%s/bash.json", c->state_dir);
  cleanup_free char *lock = xasprintf("%s/bash.lock", c->state_dir);
  cleanup_free char *id = NULL;
  cleanup_free char *data = NULL;
  cleanup_free char *text = NULL;
  cleanup_json yajl_val o = NULL;
  cleanup_close int lock_fd = -1;
  frc_error_t ignored = NULL;
  struct stat st;
  size_t n = 0, len;

  *added = false;
  if (stat(c->bash, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
    return frc_error(err, "the environment needs bash for its vars or hook, and `%s` (the node "
                          "config's `bash`) is not an executable file: install Debian's "
                          "bash-static on the node or set `bash` to a static bash",
                     c->bash);
  id = source_id(&st);
  if ((*pkg = cached(c, cache, id)) != NULL)
    return 0;
  /* One add at a time on the node (the root is replaced under this lock);
   * a create that waited finds it done. */
  if (frc_mkdir_p(c->state_dir, 0700, err) < 0
      || frc_lock_file(lock, s->deadline_ns, "another create adding the node's bash", &lock_fd, err) < 0)
    return -1;
  if ((*pkg = cached(c, cache, id)) != NULL)
    return 0;
  if (read_file_bounded(c->bash, BASH_MAX, &data, &n, err) < 0)
    return frc_error_wrap(err, "cannot read `%s` (the node config's `bash`)", c->bash);
  if (!elf_is_static((const unsigned char *) data, n))
    return frc_error(err, "`%s` (the node config's `bash`) is not a statically linked program "
                          "of this machine: containers on an empty image could not run it; "
                          "install Debian's bash-static and set `bash` to /bin/bash-static",
                     c->bash);
  if (add(s, data, n, pkg, err) < 0)
    return -1;
  *added = true;
  o = frc_json_new_object();
  frc_json_set(o, "source", frc_json_new_string(c->bash));
  frc_json_set(o, "id", frc_json_new_string(id));
  frc_json_set(o, "path", frc_json_new_string(*pkg));
  text = frc_json_serialize(o, &len);
  if (write_file_replace(cache, text, len, 0600, &ignored) < 0) /* only a cache */
    frc_error_release(&ignored);
  return 0;
}

int
frc_node_bash_release(const struct frc_config *c, frc_error_t *err)
{
  cleanup_free char *cache = xasprintf("%s/bash.json", c->state_dir);
  if (unlink(cache) < 0 && errno != ENOENT)
    return frc_error_errno(err, errno, "cannot remove `%s`", cache);
  return frc_gcroot_release(c, "node", "bash", err);
}
