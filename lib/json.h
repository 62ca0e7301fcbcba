/* json.h - a JSON document tree that keeps what flox-runc does not know.
 *
 * Owns: parsing with yajl into a yajl_val tree (object key order, duplicate
 * keys and every number's original text are kept), building and editing
 * nodes, serialising back with yajl_gen, and loading/saving a whole document
 * file atomically (frc_json_doc).  Two parses from yajl's events spare the
 * tree what a warm create never reads: named arrays of strings collected as
 * vectors (frc_json_parse_strv, an environment record's paths) and one
 * value kept as its text (frc_json_parse_opaque, a spec's seccomp profile).
 * Input is bounded: a size limit per file and a nesting limit
 * (FRC_JSON_MAX_DEPTH) checked before yajl sees the text or as it parses; a
 * string holding U+0000 is refused because the tree cannot represent it.
 * Lookups follow Go's encoding/json, which runc uses: the last of duplicate
 * keys wins.
 */
#ifndef FRC_JSON_H
#define FRC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "error.h"

#define FRC_JSON_MAX_DEPTH 128

int frc_json_parse(const char *text, size_t len, yajl_val *out, frc_error_t *err);
/* Returns a malloc'd compact serialisation, NUL-terminated; *len optional. */
char *frc_json_serialize(yajl_val v, size_t *len);

/* A key of a document's top-level object whose value, an array of
 * strings, frc_json_parse_strv collects as a vector instead of tree nodes
 * (a list of hundreds of paths: no node per element, each string checked
 * while it is read, none copied again). */
struct frc_json_strv
{
  const char *key;
  bool (*valid)(const char *s); /* each string must pass (NULL: any) */
  bool found; /* out: the key is there (its last occurrence decides) */
  char **strv; /* out: NULL-terminated, malloc'd; NULL when absent or not
                * an array of strings that all pass valid */
};
/* frc_json_parse, with fields' keys taken out of the top-level object
 * (they are not in *out) into their vectors.  Numbers are integers as the
 * text says (flags YAJL_NUMBER_INT_VALID when it is one in range, else 0
 * and i 0): for flox-runc's own files, not for documents of others. */
int frc_json_parse_strv(const char *text, size_t len, struct frc_json_strv *fields, size_t nfields,
                        yajl_val *out, frc_error_t *err);
void frc_json_strv_release(struct frc_json_strv *fields, size_t nfields);

/* frc_json_parse (the same texts accepted, the same nodes, numbers as
 * yajl_tree makes them), with the value of key inner in the top-level
 * object's member outer kept as its text: one node of type yajl_t_number,
 * flags FRC_JSON_OPAQUE, whose u.number.r is that text, serialised
 * verbatim.  For a large value flox-runc never reads (a spec's
 * linux.seccomp, hundreds of syscall names): no tree node each.  A value
 * with a '/' (a comment may be there) becomes a tree as usual. */
#define FRC_JSON_OPAQUE 0x100u
int frc_json_parse_opaque(const char *text, size_t len, const char *outer, const char *inner,
                          yajl_val *out, frc_error_t *err);

void frc_json_freep(yajl_val *v);
#define cleanup_json __attribute__((cleanup(frc_json_freep)))

yajl_val frc_json_new_string(const char *s);
yajl_val frc_json_new_object(void);
yajl_val frc_json_new_array(void);
yajl_val frc_json_new_bool(bool b);
yajl_val frc_json_new_int(long long n);

/* The value of key in obj (last occurrence), NULL if obj is not an object or
 * has no such key. */
yajl_val frc_json_get(yajl_val obj, const char *key);
/* The string value of key, NULL if absent or not a string. */
const char *frc_json_get_string(yajl_val obj, const char *key);
/* Sets key to v (taking ownership): replaces every existing occurrence (the
 * first keeps its position, later duplicates are dropped) or appends. */
void frc_json_set(yajl_val obj, const char *key, yajl_val v);
/* Removes every occurrence of key; returns whether one existed. */
bool frc_json_remove(yajl_val obj, const char *key);
void frc_json_append(yajl_val arr, yajl_val v);
/* Frees and removes the elements of arr (an array; anything else: none)
 * for which drop(element, data) says true, keeping the others' order;
 * returns how many. */
size_t frc_json_array_remove_if(yajl_val arr, bool (*drop)(yajl_val v, const void *data),
                                const void *data);
/* Semantic equality: objects compare as maps (last duplicate wins), numbers by
 * their text. */
bool frc_json_equal(yajl_val a, yajl_val b);

/* A JSON file loaded for editing. */
struct frc_json_doc
{
  char *path;
  yajl_val root;
};

int frc_json_doc_load(struct frc_json_doc *doc, const char *path, size_t max, frc_error_t *err);
/* The same by frc_json_parse_opaque. */
int frc_json_doc_load_opaque(struct frc_json_doc *doc, const char *path, size_t max, const char *outer,
                             const char *inner, frc_error_t *err);
/* Atomic replacement keeping the file's mode, not synced (util.h
 * write_file_replace): a reader sees the old file or the new one, never a
 * half-written one.  Its users, a bundle's config.json and an exec process
 * file, are read by the runtime at once and worthless after a crash (the
 * container is gone with it); a file that must outlive one uses
 * write_file_atomic. */
int frc_json_doc_save(struct frc_json_doc *doc, frc_error_t *err);
void frc_json_doc_release(struct frc_json_doc *doc);
#define cleanup_json_doc __attribute__((cleanup(frc_json_doc_release)))

#endif
