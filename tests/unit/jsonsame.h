/* jsonsame.h - one JSON tree compared with another, every field of a node.
 *
 * Owns: json_same_tree, the strict comparison of test_json and fuzz_json
 * (frc_json_parse_strv and frc_json_parse_opaque against frc_json_parse):
 * keys in order, numbers by their text, integer, flags and double (bit for
 * bit), a's opaque nodes (FRC_JSON_OPAQUE) read as the text they keep.
 * frc_json_equal (lib/json.h) compares values as JSON means them.
 */
#ifndef FRC_JSONSAME_H
#define FRC_JSONSAME_H

#include <stdbool.h>
#include <string.h>

#include "json.h"
#include "util.h"

static inline bool
json_same_tree(yajl_val a, yajl_val b)
{
  if (a->type == yajl_t_number && (a->u.number.flags & FRC_JSON_OPAQUE))
    {
      cleanup_json yajl_val t = NULL;
      frc_error_t err = NULL;
      if (frc_json_parse(a->u.number.r, strlen(a->u.number.r), &t, &err) < 0)
        {
          frc_error_release(&err);
          return false;
        }
      return json_same_tree(t, b);
    }
  if (a->type != b->type)
    return false;
  switch (a->type)
    {
    case yajl_t_string:
      return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
      return strcmp(a->u.number.r, b->u.number.r) == 0 && a->u.number.i == b->u.number.i
             && a->u.number.flags == b->u.number.flags
             && memcmp(&a->u.number.d, &b->u.number.d, sizeof(double)) == 0;
    case yajl_t_object:
      if (a->u.object.len != b->u.object.len)
        return false;
      for (size_t i = 0; i < a->u.object.len; i++)
        if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0
            || !json_same_tree(a->u.object.values[i], b->u.object.values[i]))
          return false;
      return true;
    case yajl_t_array:
      if (a->u.array.len != b->u.array.len)
        return false;
      for (size_t i = 0; i < a->u.array.len; i++)
        if (!json_same_tree(a->u.array.values[i], b->u.array.values[i]))
          return false;
      return true;
    default:
      return true;
    }
}

#endif
