/* libFuzzer target for libocispec: parses the input as a config (and as
 * the runtime's other root documents); whatever parses must serialise,
 * parse back, and serialise to the very same text, in both the compact
 * and the pretty form. A failed parse must explain itself. */
#include "ocispec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
fail (const char *what, const char *detail)
{
  fprintf (stderr, "fuzz-config: %s\n%s\n", what, detail ? detail : "");
  abort ();
}

static void
check_errors (const ocispec_errors *errs, bool parsed)
{
  if (parsed && errs->len != 0)
    fail ("a parse that succeeded reported errors", errs->msgs[0]);
  if (!parsed && errs->len == 0)
    fail ("a parse failed without saying why", NULL);
  for (size_t i = 0; i < errs->len; i++)
    {
      const char *m = errs->msgs[i];
      if (m == NULL || strchr (m, '\n') != NULL || strstr (m, ": ") == NULL)
        fail ("an error message is not one `<path>: <problem>` line", m);
    }
}

#define ROUND_TRIP(T)                                                                                                  \
  static void round_trip_##T (const char *data, size_t size)                                                           \
  {                                                                                                                    \
    ocispec_errors errs = { 0 };                                                                                       \
    oci_##T *v = oci_##T##_parse_data (data, size, &errs);                                                             \
    check_errors (&errs, v != NULL);                                                                                   \
    ocispec_errors_free (&errs);                                                                                       \
    if (v == NULL)                                                                                                     \
      return;                                                                                                          \
    for (unsigned flags = 0; flags <= OCISPEC_JSON_PRETTY; flags++)                                                    \
      {                                                                                                                \
        size_t len1 = 0, len2 = 0;                                                                                     \
        char *json1 = oci_##T##_to_json (v, flags, &len1);                                                             \
        if (json1 == NULL || strlen (json1) != len1)                                                                   \
          fail (#T ": to_json failed or gave a bad length", json1);                                                    \
        oci_##T *v2 = oci_##T##_parse_data (json1, len1, &errs);                                                       \
        if (v2 == NULL)                                                                                                \
          fail (#T ": the serialised document does not parse back", errs.len ? errs.msgs[0] : json1);                  \
        char *json2 = oci_##T##_to_json (v2, flags, &len2);                                                            \
        if (json2 == NULL || len1 != len2 || memcmp (json1, json2, len1) != 0)                                         \
          fail (#T ": the round trip changed the document", json1);                                                    \
        free (json1);                                                                                                  \
        free (json2);                                                                                                  \
        oci_##T##_free (v2);                                                                                           \
      }                                                                                                                \
    oci_##T##_free (v);                                                                                                \
  }

ROUND_TRIP (config)
ROUND_TRIP (process)
ROUND_TRIP (container_status)
ROUND_TRIP (features)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *d = (const char *)data;

  round_trip_config (d, size);
  round_trip_process (d, size);
  round_trip_container_status (d, size);
  round_trip_features (d, size);
  return 0;
}
