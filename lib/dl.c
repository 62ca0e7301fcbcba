#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dl.h"

struct sym
{
  const char *name;
  size_t offset;
};

struct lib
{
  const char *soname;
  const char *package;
  const struct sym *syms;
  void *table;
  size_t table_size;
  void *handle;
  int loaded;
};

#define S(api, fn) { #fn, offsetof(struct api, fn) }

#define api frc_curl_api
static const struct sym curl_syms[] = {
  S(api, curl_global_init), S(api, curl_easy_init),      S(api, curl_easy_setopt),
  S(api, curl_easy_perform), S(api, curl_easy_getinfo),  S(api, curl_easy_cleanup),
  S(api, curl_easy_reset),   S(api, curl_easy_strerror), S(api, curl_slist_append),
  S(api, curl_slist_free_all), { NULL, 0 },
};
#undef api
#define api frc_zlib_api
static const struct sym zlib_syms[] = {
  S(api, inflateInit_), S(api, inflate), S(api, inflateEnd), S(api, inflateReset), { NULL, 0 },
};
#undef api
#define api frc_crypto_api
static const struct sym crypto_syms[] = {
  S(api, EVP_Digest),        S(api, EVP_sha1),          S(api, EVP_sha256),
  S(api, EVP_MD_CTX_new),    S(api, EVP_MD_CTX_free),   S(api, EVP_DigestInit_ex),
  S(api, EVP_DigestUpdate),  S(api, EVP_DigestFinal_ex), { NULL, 0 },
};
#undef api

#define api frc_mount_api
static const struct sym mount_syms[] = {
  S(api, mnt_new_context),         S(api, mnt_free_context),        S(api, mnt_context_set_fstype),
  S(api, mnt_context_set_source),  S(api, mnt_context_set_target),  S(api, mnt_context_set_options),
  S(api, mnt_context_mount),       S(api, mnt_context_umount),      S(api, mnt_context_enable_lazy),
  S(api, mnt_context_disable_mtab), S(api, mnt_context_get_syscall_errno),
  S(api, mnt_new_table_from_file), S(api, mnt_table_find_target),   S(api, mnt_unref_table),
  { NULL, 0 },
};
#undef api

#define api frc_capng_api
static const struct sym capng_syms[] = {
  S(api, capng_get_caps_process), S(api, capng_have_capability),
  S(api, capng_have_capabilities), S(api, capng_clear), S(api, capng_apply),
  S(api, capng_change_id), { NULL, 0 },
};
#undef api

#define api frc_sqlite_api
static const struct sym sqlite_syms[] = {
  S(api, sqlite3_open_v2), S(api, sqlite3_close),     S(api, sqlite3_prepare_v2),
  S(api, sqlite3_step),    S(api, sqlite3_finalize),  S(api, sqlite3_column_text),
  S(api, sqlite3_errmsg),  S(api, sqlite3_busy_timeout), { NULL, 0 },
};
#undef api

/* Loaded tables: written once on first use, read-only afterwards. */
static struct frc_curl_api curl_table;
static struct frc_zlib_api zlib_table;
static struct frc_crypto_api crypto_table;
static struct frc_mount_api mount_table;
static struct frc_capng_api capng_table;
static struct frc_sqlite_api sqlite_table;

static struct lib libs[] = {
  { "libcurl.so.4", "libcurl4", curl_syms, &curl_table, sizeof(curl_table), NULL, 0 },
  { "libz.so.1", "zlib1g", zlib_syms, &zlib_table, sizeof(zlib_table), NULL, 0 },
  { "libcrypto.so.3", "libssl3", crypto_syms, &crypto_table, sizeof(crypto_table), NULL, 0 },
  { "libmount.so.1", "libmount1", mount_syms, &mount_table, sizeof(mount_table), NULL, 0 },
  { "libcap-ng.so.0", "libcap-ng0", capng_syms, &capng_table, sizeof(capng_table), NULL, 0 },
  { "libsqlite3.so.0", "libsqlite3-0", sqlite_syms, &sqlite_table, sizeof(sqlite_table), NULL, 0 },
};

static const void *
load(struct lib *l, frc_error_t *err)
{
  if (l->loaded)
    return l->table;
  l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
  if (l->handle == NULL)
    {
      frc_error(err, "cannot load %s (%s): install the Debian package %s", l->soname, dlerror(),
                l->package);
      return NULL;
    }
  for (const struct sym *s = l->syms; s->name; s++)
    {
      void *p = dlsym(l->handle, s->name);
      if (p == NULL)
        {
          frc_error(err, "%s lacks %s: install a current %s", l->soname, s->name, l->package);
          dlclose(l->handle);
          l->handle = NULL;
          return NULL;
        }
      memcpy((char *) l->table + s->offset, &p, sizeof(p));
    }
  l->loaded = 1;
  if (l->table == &curl_table)
    curl_table.curl_global_init(CURL_GLOBAL_DEFAULT);
  return l->table;
}

const struct frc_curl_api *
frc_dl_curl(frc_error_t *err)
{
  return load(&libs[0], err);
}

const struct frc_zlib_api *
frc_dl_zlib(frc_error_t *err)
{
  return load(&libs[1], err);
}

const struct frc_crypto_api *
frc_dl_crypto(frc_error_t *err)
{
  return load(&libs[2], err);
}

const struct frc_mount_api *
frc_dl_mount(frc_error_t *err)
{
  return load(&libs[3], err);
}

const struct frc_capng_api *
frc_dl_capng(frc_error_t *err)
{
  return load(&libs[4], err);
}

const struct frc_sqlite_api *
frc_dl_sqlite(frc_error_t *err)
{
  return load(&libs[5], err);
}

bool
frc_have_capability(int cap)
{
  frc_error_t ignored = NULL;
  const struct frc_capng_api *c = frc_dl_capng(&ignored);
  if (c == NULL)
    {
      frc_error_release(&ignored);
      return false;
    }
  return c->capng_get_caps_process() == 0 && c->capng_have_capability(CAPNG_EFFECTIVE, (unsigned) cap);
}

void
frc_dl_reset(void)
{
  for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
    {
      libs[i].loaded = 0;
      memset(libs[i].table, 0, libs[i].table_size);
    }
}

int
frc_sha1(const void *data, size_t len, unsigned char out[20], frc_error_t *err)
{
  const struct frc_crypto_api *c = frc_dl_crypto(err);
  unsigned int n = 0;
  if (c == NULL)
    return -1;
  if (!c->EVP_Digest(data, len, out, &n, c->EVP_sha1(), NULL))
    return frc_error(err, "libcrypto failed to compute a digest");
  return 0;
}

void
frc_hex(const unsigned char *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++)
    {
      out[2 * i] = digits[in[i] >> 4];
      out[2 * i + 1] = digits[in[i] & 15];
    }
  out[2 * n] = '\0';
}
