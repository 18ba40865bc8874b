/* The OCI data model: typed structs generated from spec.schema (see
 * README.md here for the naming rules) and their JSON parse/serialise
 * functions. This header does not expose yajl. */
#ifndef OCISPEC_H
#define OCISPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parsing (oci_T_parse_data / oci_T_parse_file):
 * - unknown keys are ignored; `null` for an optional field means absent;
 * - wrong types, out-of-range or non-integer numbers, missing required
 *   fields are all reported, each as "<json path>: <problem>", e.g.
 *   `mounts[2].destination: required field is missing`; paths look like
 *   `linux.sysctl["net.ipv4.ip_forward"]` for map keys that are not plain
 *   words and `(root)` for the document itself; syntax errors are one
 *   `invalid JSON: <yajl's message> (at byte N)`;
 * - messages are appended to errs (which may be NULL); the result is NULL
 *   when this call added any, with errno EINVAL (or the open/read errno);
 * - bytes that are not valid UTF-8 become U+FFFD (as runc's Go decoder
 *   does); a string containing a NUL character ("\u0000") is an error.
 * Serialising (oci_T_to_json) writes fields in schema order, `runc spec`
 * style (tabs) with OCISPEC_JSON_PRETTY, no trailing newline; it never
 * fails for a non-NULL value. A field is written when present: strings,
 * objects and maps when non-NULL, arrays when has_x or non-NULL (x_len
 * elements), numbers and booleans when has_x, when non-zero (set in code
 * without has_x) or when required. The result is malloc'd, the caller
 * frees it. Every oci_T_free and map free accepts NULL. */

/* Every problem a parse found, each "<json path>: <what is wrong>". */
typedef struct
{
  char **msgs;
  size_t len;
} ocispec_errors;

/* Frees the messages (not errs itself) and leaves errs empty. */
void ocispec_errors_free (ocispec_errors *errs);

typedef struct
{
  char **keys;
  char **values;
  size_t len;
} oci_map_string; /* keys and values are NULL-terminated too */

void oci_map_string_free (oci_map_string *m);
/* Looks up key; NULL when absent. */
const char *oci_map_string_get (const oci_map_string *m, const char *key);

#define OCISPEC_JSON_PRETTY 1u

/* A document that is a JSON array of strings (runc's descriptors.json in a
 * checkpoint image). Parsing follows the rules above ("[1]: expected a
 * string, got a number"); the result is NULL-terminated, *len elements,
 * each string and the array malloc'd. Serialising writes it on one line. */
char **ocispec_strings_parse_data (const char *data, size_t len, size_t *out_len, ocispec_errors *errs);
char *ocispec_strings_to_json (char *const *strv, size_t len);

/* GNU C predefines `linux` (and `unix`) as 1, which would turn the
 * `linux` member of oci_config into a syntax error. Use __linux__. */
#ifdef linux
#undef linux
#endif

#include "ocispec-types.h"

#endif
