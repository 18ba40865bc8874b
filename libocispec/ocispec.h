/* The OCI data model: typed structs generated from spec.schema (see
 * README.md here for the naming rules) and their JSON parse/serialise
 * functions. This header does not expose yajl. */
#ifndef OCISPEC_H
#define OCISPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every problem a parse found, each "<json path>: <what is wrong>". */
typedef struct
{
  char **msgs;
  size_t len;
} ocispec_errors;

void ocispec_errors_free (ocispec_errors *errs);

typedef struct
{
  char **keys;
  char **values;
  size_t len;
} oci_map_string;

void oci_map_string_free (oci_map_string *m);
/* Looks up key; NULL when absent. */
const char *oci_map_string_get (const oci_map_string *m, const char *key);

#define OCISPEC_JSON_PRETTY 1u

/* GNU C predefines `linux` (and `unix`) as 1, which would turn the
 * `linux` member of oci_config into a syntax error. Use __linux__. */
#ifdef linux
#undef linux
#endif

#include "ocispec-types.h"

#endif
