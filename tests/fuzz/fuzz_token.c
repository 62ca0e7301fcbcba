/* The token check (lib/token.c frc_token_check): characters, and a JWT's
 * payload decoded and its `exp` compared with now.
 *
 * Input: a mode byte, then bytes.  Mode 'J': the bytes are a JWT payload,
 * which the harness base64url-encodes between a fixed header and signature
 * (so mutations reach the JSON and the expiry); any other mode: the bytes
 * are the token.  Property: an expired `exp` is refused as FRC_ECODE_AUTH
 * and the message never quotes the token. */
#include "fuzz.h"
#include "json.h"
#include "token.h"

#define NOW 1800000000LL

static char *
jwt_of(const uint8_t *payload, size_t n)
{
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  static const char head[] = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.";
  char *out = xmalloc0(sizeof(head) + n * 4 / 3 + 16), *o;
  unsigned val = 0;
  int bits = 0;
  memcpy(out, head, sizeof(head) - 1);
  o = out + sizeof(head) - 1;
  for (size_t i = 0; i < n; i++)
    {
      val = (val << 8) | payload[i];
      bits += 8;
      while (bits >= 6)
        {
          *o++ = abc[(val >> (bits - 6)) & 63];
          bits -= 6;
        }
    }
  if (bits > 0)
    *o++ = abc[(val << (6 - bits)) & 63];
  memcpy(o, ".c2lnbmF0dXJl", 13);
  return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_free char *token = NULL;
  frc_error_t err = NULL;
  int rc;

  if (size < 1)
    return 0;
  if (data[0] == 'J')
    token = jwt_of(data + 1, size - 1);
  else
    token = fuzz_cstr(data + 1, size - 1);

  rc = frc_token_check(token, NOW, &err);
  if (data[0] == 'J' && size - 1 < 4096)
    {
      /* Decide expiry independently from the payload itself. */
      cleanup_json yajl_val claims = NULL;
      frc_error_t perr = NULL;
      if (memchr(data + 1, '\0', size - 1) == NULL
          && frc_json_parse((const char *) data + 1, size - 1, &claims, &perr) == 0)
        {
          yajl_val exp = frc_json_get(claims, "exp");
          bool expired = exp && exp->type == yajl_t_number && exp->u.number.d > 0
                         && exp->u.number.d <= (double) NOW;
          FUZZ_ASSERT(expired == (rc < 0));
          if (expired)
            FUZZ_ASSERT(frc_error_get_code(err) == FRC_ECODE_AUTH);
        }
      frc_error_release(&perr);
    }
  if (err && strlen(token) >= 8)
    FUZZ_ASSERT(strstr(err->msg, token) == NULL);
  fuzz_check_error(&err);
  return 0;
}
