#include <stdio.h>
#include <string.h>

#include "annotations.h"
#include "util.h"

#define ENV_FORM                                                                                   \
  "expected owner/name or owner/name:N (owner and name of letters, digits, '.', '_' and '-', "     \
  "not starting with '.'; N a generation number from 1)"
#define LIST_FORM                                                                                  \
  "expected container names separated by commas (lowercase letters, digits and '-', at most 63 " \
  "characters each, e.g. \"istio-proxy, vault-agent\")"

static int
invalid(frc_error_t *err, const char *key, const char *value, const char *form)
{
  cleanup_free char *esc = escape_for_message(value, strlen(value), 64);
  return frc_error(err, "invalid annotation %s=\"%s\": %s; fix the pod's annotation", key, esc, form);
}

static bool
is_name_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
         || c == '_' || c == '-';
}

/* Owner and environment names: FloxHub's character set, and nothing that git
 * refuses as a branch name or that could walk a path. */
static bool
valid_env_part(const char *s, size_t len, size_t max)
{
  if (len == 0 || len > max || s[0] == '.' || s[len - 1] == '.')
    return false;
  for (size_t i = 0; i < len; i++)
    {
      if (!is_name_char(s[i]))
        return false;
      if (s[i] == '.' && i + 1 < len && s[i + 1] == '.')
        return false;
    }
  if (len >= 5 && strncmp(s + len - 5, ".lock", 5) == 0)
    return false;
  return true;
}

int
frc_envref_parse(const char *value, struct frc_envref *out, frc_error_t *err)
{
  size_t len = strlen(value);
  const char *slash = memchr(value, '/', len);
  const char *colon;
  size_t owner_len, name_len;

  memset(out, 0, sizeof(*out));
  if (len > FRC_OWNER_MAX + FRC_ENVNAME_MAX + 12 || slash == NULL)
    return invalid(err, FRC_ANN_ENVIRONMENT, value, ENV_FORM);
  colon = strchr(slash, ':');
  owner_len = (size_t) (slash - value);
  name_len = colon ? (size_t) (colon - slash - 1) : len - owner_len - 1;
  if (!valid_env_part(value, owner_len, FRC_OWNER_MAX)
      || !valid_env_part(slash + 1, name_len, FRC_ENVNAME_MAX))
    return invalid(err, FRC_ANN_ENVIRONMENT, value, ENV_FORM);
  if (colon)
    {
      const char *n = colon + 1;
      unsigned long g = 0;
      size_t digits = strlen(n);
      if (digits == 0 || digits > 9 || n[0] == '0')
        return invalid(err, FRC_ANN_ENVIRONMENT, value, ENV_FORM);
      for (size_t i = 0; i < digits; i++)
        {
          if (n[i] < '0' || n[i] > '9')
            return invalid(err, FRC_ANN_ENVIRONMENT, value, ENV_FORM);
          g = g * 10 + (unsigned long) (n[i] - '0');
        }
      out->generation = (unsigned) g;
    }
  memcpy(out->owner, value, owner_len);
  memcpy(out->name, slash + 1, name_len);
  return 0;
}

const char *
frc_envref_format(const struct frc_envref *r, char *buf, size_t size)
{
  if (r->generation)
    snprintf(buf, size, "%s/%s:%u", r->owner, r->name, r->generation);
  else
    snprintf(buf, size, "%s/%s", r->owner, r->name);
  return buf;
}

/* Kubernetes container names are DNS-1123 labels. */
bool
frc_is_container_name(const char *s, size_t len)
{
  if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
    return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
      return false;
  return true;
}

bool
frc_name_list_contains(char *const *list, const char *name)
{
  if (name == NULL)
    return false;
  for (; list && *list; list++)
    if (strcmp(*list, name) == 0)
      return true;
  return false;
}

const char *
frc_mode_name(enum frc_mode m)
{
  return m == FRC_MODE_DEV ? "dev" : "run";
}

/* The value of key when it is present: a bounded string without control
 * characters.  *value is NULL when the key is absent. */
static int
get_value(yajl_val annotations, const char *key, const char **value, frc_error_t *err)
{
  yajl_val v = NULL;

  *value = NULL;
  if (annotations && annotations->type == yajl_t_object)
    for (size_t i = annotations->u.object.len; i > 0 && v == NULL; i--)
      if (strcmp(annotations->u.object.keys[i - 1], key) == 0)
        v = annotations->u.object.values[i - 1];
  if (v == NULL)
    return 0;
  if (v->type != yajl_t_string)
    return frc_error(err, "invalid annotation %s: its value must be a string; fix the pod's "
                          "annotation",
                     key);
  if (strlen(v->u.string) > FRC_ANN_VALUE_MAX)
    return invalid(err, key, v->u.string, "the value is longer than 4096 bytes");
  for (const char *p = v->u.string; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return invalid(err, key, v->u.string, "the value contains control characters");
  *value = v->u.string;
  return 0;
}

int
frc_annotations_parse_skip(yajl_val annotations, const char *key, char ***out, frc_error_t *err)
{
  const char *value;
  char **list;
  size_t n = 0;

  *out = NULL;
  if (get_value(annotations, key, &value, err) < 0)
    return -1;
  list = xmalloc0((FRC_SKIP_MAX_ENTRIES + 1) * sizeof(char *));
  for (const char *p = value; p && *p;)
    {
      const char *end = strchr(p, ',');
      const char *s = p, *e = end ? end : p + strlen(p);
      while (s < e && (*s == ' ' || *s == '\t'))
        s++;
      while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      if (e > s)
        {
          if (!frc_is_container_name(s, (size_t) (e - s)) || n == FRC_SKIP_MAX_ENTRIES)
            {
              frc_strv_freep(&list);
              return invalid(err, key, value,
                             n == FRC_SKIP_MAX_ENTRIES ? "at most 64 container names" : LIST_FORM);
            }
          list[n++] = xstrndup(s, (size_t) (e - s));
        }
      p = end ? end + 1 : e;
      if (end == NULL)
        break;
    }
  *out = list;
  return 0;
}

static int
parse_bool(yajl_val annotations, const char *key, bool *out, frc_error_t *err)
{
  const char *v;
  *out = false;
  if (get_value(annotations, key, &v, err) < 0)
    return -1;
  if (v == NULL || strcmp(v, "false") == 0)
    return 0;
  if (strcmp(v, "true") == 0)
    {
      *out = true;
      return 0;
    }
  return invalid(err, key, v, "expected \"true\" or \"false\"");
}

int
frc_annotations_parse(yajl_val annotations, struct frc_annotations *out, frc_error_t *err)
{
  const char *v;

  memset(out, 0, sizeof(*out));
  if (frc_annotations_parse_skip(annotations, FRC_ANN_SKIP_CONTAINERS, &out->skip_containers, err) < 0
      || frc_annotations_parse_skip(annotations, FRC_ANN_SKIP_CONTAINERS_EXEC,
                                    &out->skip_containers_exec, err)
             < 0)
    return -1;

  if (get_value(annotations, FRC_ANN_ENVIRONMENT, &v, err) < 0)
    return -1;
  if (v != NULL)
    {
      if (frc_envref_parse(v, &out->env, err) < 0)
        return -1;
      out->has_environment = true;
    }

  if (get_value(annotations, FRC_ANN_ACTIVATE_MODE, &v, err) < 0)
    return -1;
  out->has_mode = v != NULL;
  if (v == NULL || strcmp(v, "run") == 0)
    out->mode = FRC_MODE_RUN;
  else if (strcmp(v, "dev") == 0)
    out->mode = FRC_MODE_DEV;
  else
    return invalid(err, FRC_ANN_ACTIVATE_MODE, v, "expected \"run\" or \"dev\"");

  if (parse_bool(annotations, FRC_ANN_NIX_MUTABLE, &out->nix_mutable, err) < 0
      || parse_bool(annotations, FRC_ANN_DISABLE_METRICS, &out->disable_metrics, err) < 0)
    return -1;
  return 0;
}

void
frc_annotations_release(struct frc_annotations *a)
{
  frc_strv_freep(&a->skip_containers);
  frc_strv_freep(&a->skip_containers_exec);
}
