/* dl.h - libraries loaded on first use.
 *
 * Owns: dlopen()ing libcurl, zlib and libcrypto when a code path first needs
 * them (and libmount, libcap-ng, and libsqlite3 for Nix's database), and the typed tables of the functions flox-runc calls.  Linking them
 * would cost every passthrough call milliseconds and megabytes (docs/design.md);
 * their headers still come from pkg-config, so each pointer has the exact type
 * of the library's prototype.  A table is loaded once per process and never
 * changes after; frc_dl_reset() forgets them (tests).
 */
#ifndef FRC_DL_H
#define FRC_DL_H

#define CURL_DISABLE_TYPECHECK 1 /* the calls go through function pointers */
#include <stdbool.h>
#include <curl/curl.h>
#include <cap-ng.h>
#include <libmount.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <zlib.h>

#include "error.h"

#define FRC_DL_FN(name) __typeof__(name) *name

struct frc_curl_api
{
  FRC_DL_FN(curl_global_init);
  FRC_DL_FN(curl_easy_init);
  FRC_DL_FN(curl_easy_setopt);
  FRC_DL_FN(curl_easy_perform);
  FRC_DL_FN(curl_easy_getinfo);
  FRC_DL_FN(curl_easy_cleanup);
  FRC_DL_FN(curl_easy_reset);
  FRC_DL_FN(curl_easy_strerror);
  FRC_DL_FN(curl_slist_append);
  FRC_DL_FN(curl_slist_free_all);
};

struct frc_zlib_api
{
  FRC_DL_FN(inflateInit_);
  FRC_DL_FN(inflate);
  FRC_DL_FN(inflateEnd);
  FRC_DL_FN(inflateReset);
};

struct frc_crypto_api
{
  FRC_DL_FN(EVP_Digest);
  FRC_DL_FN(EVP_sha1);
  FRC_DL_FN(EVP_sha256);
  FRC_DL_FN(EVP_MD_CTX_new);
  FRC_DL_FN(EVP_MD_CTX_free);
  FRC_DL_FN(EVP_DigestInit_ex);
  FRC_DL_FN(EVP_DigestUpdate);
  FRC_DL_FN(EVP_DigestFinal_ex);
};

struct frc_mount_api
{
  FRC_DL_FN(mnt_new_context);
  FRC_DL_FN(mnt_free_context);
  FRC_DL_FN(mnt_context_set_fstype);
  FRC_DL_FN(mnt_context_set_source);
  FRC_DL_FN(mnt_context_set_target);
  FRC_DL_FN(mnt_context_set_options);
  FRC_DL_FN(mnt_context_mount);
  FRC_DL_FN(mnt_context_umount);
  FRC_DL_FN(mnt_context_enable_lazy);
  FRC_DL_FN(mnt_context_disable_mtab);
  FRC_DL_FN(mnt_context_get_syscall_errno);
  FRC_DL_FN(mnt_new_table_from_file);
  FRC_DL_FN(mnt_table_find_target);
  FRC_DL_FN(mnt_unref_table);
};

struct frc_capng_api
{
  FRC_DL_FN(capng_get_caps_process);
  FRC_DL_FN(capng_have_capability);
  FRC_DL_FN(capng_have_capabilities);
  FRC_DL_FN(capng_clear);
  FRC_DL_FN(capng_apply);
  FRC_DL_FN(capng_change_id);
};

struct frc_sqlite_api
{
  FRC_DL_FN(sqlite3_open_v2);
  FRC_DL_FN(sqlite3_close);
  FRC_DL_FN(sqlite3_prepare_v2);
  FRC_DL_FN(sqlite3_step);
  FRC_DL_FN(sqlite3_finalize);
  FRC_DL_FN(sqlite3_column_text);
  FRC_DL_FN(sqlite3_errmsg);
  FRC_DL_FN(sqlite3_busy_timeout);
};

/* The tables, loaded on first call; NULL with *err set when the library or a
 * symbol is missing (the message names the Debian package to install). */
const struct frc_curl_api *frc_dl_curl(frc_error_t *err);
const struct frc_zlib_api *frc_dl_zlib(frc_error_t *err);
const struct frc_crypto_api *frc_dl_crypto(frc_error_t *err);
const struct frc_mount_api *frc_dl_mount(frc_error_t *err);
const struct frc_capng_api *frc_dl_capng(frc_error_t *err);
const struct frc_sqlite_api *frc_dl_sqlite(frc_error_t *err);

/* Whether this process has capability cap (CAP_SYS_ADMIN, ...) in its
 * effective set, through libcap-ng; false when that cannot be told. */
bool frc_have_capability(int cap);
void frc_dl_reset(void);

/* SHA-1 through libcrypto (git objects); SHA-256 in-tree (lib/sha256.c), so
 * that cache keys never load libcrypto.  out holds 20 / 32 bytes. */
int frc_sha1(const void *data, size_t len, unsigned char out[20], frc_error_t *err);
int frc_sha256(const void *data, size_t len, unsigned char out[32], frc_error_t *err);
/* The same without the CPU's SHA instructions (what frc_sha256 does on a CPU
 * without them; the tests compare the two). */
void frc_sha256_portable(const void *data, size_t len, unsigned char out[32]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void frc_hex(const unsigned char *in, size_t n, char *out);

#endif
