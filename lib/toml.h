/* toml.h - the TOML that engine configs are written in, read closely enough
 * to edit them.
 *
 * Owns: a small reader (tables, array tables, dotted keys, quoted segments,
 * strings, booleans, numbers, arrays over several lines, inline comments;
 * multi-line strings are refused) that flattens a file into
 * (table, key, raw value) with each key's file and lines, so that
 * lib/engineconf.c can judge configs and lib/install.c can edit one without
 * moving anything else in it.
 */
#ifndef FRC_TOML_H
#define FRC_TOML_H

#include <stddef.h>

#include "error.h"

struct frc_toml_kv
{
  char *table; /* normalised header path: quotes dropped ("plugins.io.containerd.grpc.v1.cri") */
  char *key; /* normalised (dotted) key */
  char *value; /* raw value text, comments stripped, lines of an array joined */
  int line, end_line; /* 1-based lines of the key and of its value's end */
  int table_line; /* line of its table's header, 0 at the top level */
  const char *file; /* the name given to frc_toml_parse (not a copy) */
};

struct frc_toml
{
  struct frc_toml_kv *kv;
  size_t n;
  int first_table_line; /* line of the first [table] header, 0 when none */
  int nlines;
};

/* Parses text (name is used in messages and stored as every key's file). */
int frc_toml_parse(const char *text, const char *name, struct frc_toml *t, frc_error_t *err);
void frc_toml_release(struct frc_toml *t);
/* The last kv of key in table (exact, normalised), NULL when absent. */
const struct frc_toml_kv *frc_toml_find(const struct frc_toml *t, const char *table,
                                        const char *key);
/* The content of a TOML string value (malloc'd), NULL when it is not one. */
char *frc_toml_string(const char *value);
/* The strings of a TOML array of strings (NULL-terminated, malloc'd), NULL
 * when the value is not an array of strings. */
char **frc_toml_string_array(const char *value);

#endif
