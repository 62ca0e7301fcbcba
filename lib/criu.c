/* criu.c - CRIU's configuration for the hook's binds, and the image's
 * record of the environment (criu.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activate.h"
#include "bindrun.h"
#include "criu.h"
#include "environment.h"
#include "json.h"
#include "lockfile.h"
#include "mounts.h"
#include "proc.h"
#include "record.h"
#include "runtime.h"
#include "util.h"

/* The node's runc.conf is an administrator's file: bounded all the same. */
#define RUNC_CONF_MAX (64u * 1024)
/* {"environment": "owner/name:N"}, with room to spare. */
#define IMAGE_RECORD_MAX 4096u

char *
frc_criu_config_path(const struct frc_config *c, const char *env_key)
{
  cleanup_free char *view = frc_view_dir(c, env_key);
  return xasprintf("%s.criu.conf", view);
}

/* flox-runc's value: a file of its views directory. */
static bool
is_own(const struct frc_config *c, const char *value)
{
  cleanup_free char *prefix = xasprintf("%s/views/", c->state_dir);
  size_t n = value ? strlen(value) : 0;
  return value && str_has_prefix(value, prefix) && n > 10
         && strcmp(value + n - 10, ".criu.conf") == 0 && strchr(value + strlen(prefix), '/') == NULL;
}

bool
frc_criu_annotation_foreign(const struct frc_spec *s, const struct frc_config *c)
{
  bool present = false;
  const char *v = frc_spec_annotation(s, FRC_CRIU_ANNOTATION, &present);
  return present && !is_own(c, v);
}

void
frc_criu_annotate(struct frc_spec *s, const struct frc_config *c, const char *env_key)
{
  cleanup_free char *path = frc_criu_config_path(c, env_key);
  frc_spec_set_annotation(s, FRC_CRIU_ANNOTATION, path);
}

void
frc_criu_unannotate(struct frc_spec *s, const struct frc_config *c)
{
  if (is_own(c, frc_spec_annotation(s, FRC_CRIU_ANNOTATION, NULL)))
    frc_json_remove(frc_json_get(s->doc.root, "annotations"), FRC_CRIU_ANNOTATION);
}

bool
frc_criu_screen(struct frc_spec *s, const struct frc_config *c, const struct frc_logger *log)
{
  const char *v;
  cleanup_free char *esc = NULL;

  if (!frc_criu_annotation_foreign(s, c))
    return false;
  v = frc_spec_annotation(s, FRC_CRIU_ANNOTATION, NULL);
  esc = escape_for_message(v ? v : "", v ? strlen(v) : 0, 128);
  if (c->allow_criu_config_annotation)
    {
      frc_log(log, FRC_LOG_DEBUG,
              "flox-runc: kept the spec's " FRC_CRIU_ANNOTATION " `%s` "
              "(allow_criu_config_annotation): its closure goes by spec mounts",
              esc);
      return false;
    }
  frc_json_remove(frc_json_get(s->doc.root, "annotations"), FRC_CRIU_ANNOTATION);
  frc_log(log, FRC_LOG_WARNING,
          "flox-runc: removed the spec's " FRC_CRIU_ANNOTATION " `%s` (a CRIU configuration can "
          "run scripts as root): set allow_criu_config_annotation to true in the node config "
          "to let specs choose it",
          esc);
  return true;
}

/* The first of node_confs that exists, opened once and read bounded
 * through that descriptor (no access() then open of the same name); *text
 * NULL when none exists. */
static int
read_node_conf(const char *const *node_confs, char **text, frc_error_t *err)
{
  *text = NULL;
  for (const char *const *p = node_confs; p && *p; p++)
    {
      /* O_NONBLOCK: a FIFO there is refused below, never waited on */
      cleanup_close int fd = open(*p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
      struct stat st;
      if (fd < 0 && errno == ENOENT)
        continue;
      if (fd < 0 || fstat(fd, &st) < 0)
        return frc_error_errno(err, errno, "cannot open the node's CRIU configuration `%s`", *p);
      if (!S_ISREG(st.st_mode))
        return frc_error(err, "the node's CRIU configuration `%s` is not a regular file: make it "
                              "one, or remove it",
                         *p);
      if (read_fd_bounded(fd, *p, RUNC_CONF_MAX, text, NULL, err) < 0)
        return frc_error_wrap(err, "cannot read the node's CRIU configuration");
      return 0;
    }
  return 0;
}

/* one closure path's line: the same key as runc gives a spec mount */
static int
add_ext_mount(const char *name, void *data, frc_error_t *err __attribute__((unused)))
{
  frc_buf_addf(data, "ext-mount-map /nix/store/%s:/nix/store/%s\n", name, name);
  return 0;
}

int
frc_criu_write_config(const struct frc_config *c, const char *env_key,
                      const char *const *node_confs, frc_error_t *err)
{
  cleanup_free char *view = frc_view_dir(c, env_key);
  cleanup_free char *store = xasprintf("%s/store", view);
  cleanup_free char *path = frc_criu_config_path(c, env_key);
  cleanup_free char *node = NULL;
  cleanup_buf struct frc_buf text = { 0 };

  if (access(store, F_OK) < 0)
    return frc_error_errno(err, errno,
                           "cannot list the environment's view `%s` to tell CRIU its closure "
                           "binds: recreate the container (flox-runc gc removed its view?)",
                           store);
  if (read_node_conf(node_confs, &node, err) < 0)
    return -1;
  frc_buf_addf(&text,
               "# flox-runc: CRIU's configuration for containers of the environment %s whose\n"
               "# closure flox-runc's createContainer hook binds (docs/troubleshooting.md,\n"
               "# \"Checkpoint and restore\"); rewritten at each checkpoint.\n"
               "%s%s",
               env_key, node ? node : "", node && node[0] && node[strlen(node) - 1] != '\n' ? "\n" : "");
  if (frc_view_each_bind(store, add_ext_mount, &text, err) < 0)
    return -1;
  /* the hook's other binds (lib/container.c): the environment's tree,
   * FLOX_ENV_CACHE and the node's CA bundle (a key of a mount the
   * container lacks is unused) */
  frc_buf_addf(&text,
               "ext-mount-map %s/%s:%s/%s\n"
               "ext-mount-map %s:%s\n"
               "ext-mount-map %s:%s\n",
               FRC_ENVS_DIR, env_key, FRC_ENVS_DIR, env_key, FRC_ENV_CACHE_DIR, FRC_ENV_CACHE_DIR,
               FRC_NODE_CA_BUNDLE, FRC_NODE_CA_BUNDLE);
  if (write_file_atomic(path, text.data, text.len, 0600, err) < 0)
    return frc_error_wrap(err, "cannot write CRIU's configuration for the closure binds");
  return 0;
}

int
frc_criu_image_write(const char *image_dir, const char *reference, frc_error_t *err)
{
  cleanup_free char *path = xasprintf("%s/" FRC_CRIU_IMAGE_RECORD, image_dir);
  yajl_val doc __attribute__((cleanup(frc_json_freep))) = frc_json_new_object();
  cleanup_free char *text = NULL;
  size_t len = 0;

  /* with its missing parents, as runc's MkdirAll makes --image-path */
  if (frc_mkdir_p(image_dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot make the checkpoint directory `%s`", image_dir);
  frc_json_set(doc, "environment", frc_json_new_string(reference));
  text = frc_json_serialize(doc, &len);
  if (write_file_atomic(path, text, len, 0600, err) < 0)
    return frc_error_wrap(err, "cannot record the environment in the checkpoint");
  return 0;
}

int
frc_criu_image_read(const char *image_dir, const struct frc_envref *annotated,
                    unsigned *generation, bool *found, frc_error_t *err)
{
  cleanup_free char *path = xasprintf("%s/" FRC_CRIU_IMAGE_RECORD, image_dir);
  cleanup_free char *text = NULL;
  size_t len = 0;
  yajl_val doc __attribute__((cleanup(frc_json_freep))) = NULL;
  struct frc_envref rec = { 0 };
  const char *ref;
  char want[256], got[256];
  /* O_PATH: nothing but a regular file is ever opened for reading (a
   * device node of a hostile archive would act at its open); the reopen
   * (lib/util.h) reads that very inode */
  cleanup_close int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int fd = -1;
  struct stat st;

  *found = false;
  *generation = 0;
  if (pfd < 0 && errno == ENOENT)
    return 0;
  if (pfd < 0)
    return frc_error_errno(err, errno, "cannot open the checkpoint's `%s`", path);
  fd = frc_reopen_regular(pfd, &st);
  if (fd == -2)
    return frc_error(err, "the checkpoint's `%s` is not a regular file (it is a %s)", path,
                     frc_file_kind(st.st_mode));
  if (fd < 0)
    return frc_error_errno(err, errno, "cannot open the checkpoint's `%s` (is /proc mounted?)", path);
  if (read_fd_bounded(fd, path, IMAGE_RECORD_MAX, &text, &len, err) < 0)
    return frc_error_wrap(err, "the checkpoint's `%s`", path);
  if (frc_json_parse(text, len, &doc, err) < 0 || doc == NULL || doc->type != yajl_t_object
      || (ref = frc_json_get_string(doc, "environment")) == NULL)
    {
      frc_error_release(err);
      return frc_error(err, "the checkpoint's `%s` is not flox-runc's record of an environment "
                            "(expected {\"environment\": \"owner/name:N\"})",
                       path);
    }
  if (frc_envref_parse(ref, &rec, err) < 0 || rec.generation == 0)
    {
      frc_error_release(err);
      cleanup_free char *esc = escape_for_message(ref, strlen(ref), 64);
      return frc_error(err, "the checkpoint's `%s` names `%s`, not owner/name:N", path, esc);
    }
  frc_envref_format(annotated, want, sizeof(want));
  frc_envref_format(&rec, got, sizeof(got));
  if (strcmp(rec.owner, annotated->owner) != 0 || strcmp(rec.name, annotated->name) != 0
      || (annotated->generation != 0 && annotated->generation != rec.generation))
    return frc_error(err,
                     "the checkpoint was taken of a container of %s, but the flox.dev/environment "
                     "annotation names %s: restore it with flox.dev/environment: %s",
                     got, want, got);
  *generation = rec.generation;
  *found = true;
  return 0;
}

bool
frc_criu_runtime_reads_config(const char *version_line, char *name, size_t size)
{
  unsigned major = 0, minor = 0;
  snprintf(name, size, "%s", version_line ? version_line : "");
  name[strcspn(name, "\n")] = '\0';
  /* crun hands CRIU the annotation's file from 1.26 on (and needs libcriu
   * 4.2 for it); runc from 1.0 on. */
  if (version_line && sscanf(version_line, "crun version %u.%u", &major, &minor) == 2)
    return major > 1 || (major == 1 && minor >= 26);
  return true;
}

/* The runtime's first line of --version, NULL when it does not answer. */
static char *
runtime_version(const struct frc_config *c)
{
  cleanup_runtime struct frc_runtime rt = { 0 };
  cleanup_proc_result struct frc_proc_result res = { 0 };
  frc_error_t ignored = NULL;
  const char *argv[3] = { NULL, "--version", NULL };
  struct frc_proc p = { .argv = argv, .deadline_ns = frc_now_ns() + 10000000000LL,
                        .capture_stdout = 1 };

  if (frc_runtime_locate(c->runtime, &rt, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return NULL;
    }
  argv[0] = rt.path;
  if (frc_proc_run(&p, &res, &ignored) < 0 || res.status != 0 || res.out == NULL)
    {
      frc_error_release(&ignored);
      return NULL;
    }
  res.out[strcspn(res.out, "\n")] = '\0';
  return xstrdup(res.out);
}

int
frc_criu_checkpoint(const struct frc_config *c, const char *root, const char *id,
                    const char *image_dir, bool *flox, frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  cleanup_spec struct frc_spec spec = { 0 };
  frc_error_t ignored = NULL;
  bool found = false, hook = true;

  *flox = false;
  if (!frc_container_id_valid(id))
    return 0;
  if (frc_record_load(c, root, id, &rec, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  *flox = true;
  if (rec.env_key == NULL || rec.reference == NULL)
    return frc_error(err, "container %s: its record names no environment: recreate it", id);
  /* The spec as create left it tells whether the hook binds the closure
   * (the annotation); one that cannot be read is taken to.  A hook without
   * the annotation: a create by a flox-runc before checkpoints were
   * handled, whose runtime state names no CRIU configuration. */
  if (rec.bundle && frc_spec_load(&spec, rec.bundle, &ignored) == 0)
    {
      hook = is_own(c, frc_spec_annotation(&spec, FRC_CRIU_ANNOTATION, NULL));
      if (!hook && frc_bindhook_remove(&spec) > 0) /* (the copy in memory only) */
        return frc_error(err,
                         "container %s: flox-runc's createContainer hook binds its closure and "
                         "its spec names no CRIU configuration (created by an older flox-runc): "
                         "recreate the container to checkpoint it",
                         id);
    }
  frc_error_release(&ignored);
  if (hook)
    {
      cleanup_free char *version = runtime_version(c);
      static const char *const runc_confs[] = { FRC_CRIU_RUNC_CONF, NULL };
      static const char *const crun_confs[] = { FRC_CRIU_CRUN_CONF, FRC_CRIU_RUNC_CONF, NULL };
      char name[128];
      if (version && !frc_criu_runtime_reads_config(version, name, sizeof(name)))
        return frc_error(err,
                         "container %s: %s cannot checkpoint it: flox-runc's createContainer hook "
                         "binds its closure, and crun before 1.26 reads no org.criu.config to "
                         "tell CRIU those binds; set closure_hook_min_paths to 1000000 in the "
                         "node config (spec mounts) and recreate the container, or use runc",
                         id, name);
      if (frc_criu_write_config(c, rec.env_key,
                                version && str_has_prefix(version, "crun ") ? crun_confs : runc_confs,
                                err)
          < 0)
        return frc_error_wrap(err, "container %s", id);
    }
  if (frc_criu_image_write(image_dir, rec.reference, err) < 0)
    return frc_error_wrap(err, "container %s", id);
  return 0;
}
