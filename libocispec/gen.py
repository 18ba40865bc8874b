#!/usr/bin/env python3
"""Turn spec.schema into ocispec-types.h (the typed C model) and
ocispec-tables.c (the field tables json.c walks, plus the thin typed
wrappers around the generic parse/serialise/free code).

Usage: gen.py SCHEMA OUTDIR   (python3 standard library only)
"""

import os
import re
import sys

SCALARS = {
    # schema type: (C type, kind)
    "bool": ("bool", "BOOL"),
    "string": ("char *", "STRING"),
    "int32": ("int32_t", "INT32"),
    "uint32": ("uint32_t", "UINT32"),
    "int64": ("int64_t", "INT64"),
    "uint64": ("uint64_t", "UINT64"),
    "uint16": ("uint16_t", "UINT16"),
    "uint8": ("uint8_t", "UINT8"),
    "double": ("double", "DOUBLE"),
}

C_KEYWORDS = set(
    """auto break case char const continue default do double else enum extern
    float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
    _Static_assert _Thread_local bool true false""".split()
)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
JSON_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaError(Exception):
    pass


def snake_case(name):
    """camelCase to snake_case, keeping runs of capitals (acronyms) whole:
    throttleReadIOPSDevice -> throttle_read_iops_device, classID -> class_id,
    l3CacheSchema -> l3_cache_schema."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = s.lower()
    if s in C_KEYWORDS:
        s += "_"
    return s


class Field:
    def __init__(self, json_name, type_str, required, cname, lineno):
        self.json_name = json_name
        self.type_str = type_str
        self.required = required
        self.cname = cname
        self.lineno = lineno
        # Filled by resolve():
        self.kind = None  # BOOL..DOUBLE, OBJECT, ARRAY, MAP
        self.elem_kind = None  # for ARRAY / MAP
        self.ref = None  # object type name (OBJECT, array/map of objects)


class Type:
    def __init__(self, name, root, lineno):
        self.name = name
        self.root = root
        self.lineno = lineno
        self.fields = []


def parse_schema(text):
    types = []
    cur = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        words = line.split()
        if not raw[0].isspace():
            if words[0] != "type" or len(words) not in (2, 3):
                raise SchemaError("%d: expected `type NAME [root]`" % lineno)
            if len(words) == 3 and words[2] != "root":
                raise SchemaError("%d: unknown type flag `%s`" % (lineno, words[2]))
            if not NAME_RE.match(words[1]):
                raise SchemaError("%d: bad type name `%s`" % (lineno, words[1]))
            cur = Type(words[1], len(words) == 3, lineno)
            types.append(cur)
            continue
        if cur is None:
            raise SchemaError("%d: field outside of a type" % lineno)
        if len(words) not in (2, 3):
            raise SchemaError("%d: expected `jsonKey TYPE[!] [=cname]`" % lineno)
        json_name, type_str = words[0], words[1]
        if not JSON_KEY_RE.match(json_name):
            raise SchemaError("%d: bad JSON key `%s`" % (lineno, json_name))
        required = type_str.endswith("!")
        if required:
            type_str = type_str[:-1]
        cname = snake_case(json_name)
        if len(words) == 3:
            if not words[2].startswith("=") or not NAME_RE.match(words[2][1:]):
                raise SchemaError("%d: bad C name override `%s`" % (lineno, words[2]))
            cname = words[2][1:]
        cur.fields.append(Field(json_name, type_str, required, cname, lineno))
    return types


def resolve(types):
    by_name = {}
    for t in types:
        if t.name in by_name:
            raise SchemaError("%d: type `%s` defined twice" % (t.lineno, t.name))
        if t.name in SCALARS or t.name.startswith("map_"):
            raise SchemaError("%d: type name `%s` is reserved" % (t.lineno, t.name))
        by_name[t.name] = t

    def element(f, s):
        if s in SCALARS:
            return SCALARS[s][1], None
        if s in by_name:
            return "OBJECT", s
        raise SchemaError("%d: unknown type `%s`" % (f.lineno, s))

    for t in types:
        json_seen = set()
        c_seen = {}
        for f in t.fields:
            if f.json_name in json_seen:
                raise SchemaError("%d: field `%s` defined twice" % (f.lineno, f.json_name))
            json_seen.add(f.json_name)
            s = f.type_str
            if s.startswith("[]"):
                f.kind = "ARRAY"
                f.elem_kind, f.ref = element(f, s[2:])
            elif s.startswith("map<") and s.endswith(">"):
                f.kind = "MAP"
                inner = s[4:-1]
                if inner == "string":
                    f.elem_kind = "STRING"
                elif inner in by_name:
                    f.elem_kind, f.ref = "OBJECT", inner
                else:
                    raise SchemaError("%d: maps hold strings or objects, not `%s`" % (f.lineno, inner))
            else:
                f.kind, f.ref = element(f, s)
            names = [f.cname]
            if f.kind not in ("STRING", "OBJECT", "MAP"):
                names.append("has_" + f.cname)
            if f.kind == "ARRAY":
                names.append(f.cname + "_len")
            for n in names:
                if n in c_seen:
                    raise SchemaError("%d: C member `%s` clashes with line %d" % (f.lineno, n, c_seen[n]))
                c_seen[n] = f.lineno
    return by_name


def map_types(types):
    """The object types used as map values, in schema order."""
    seen = []
    for t in types:
        for f in t.fields:
            if f.kind == "MAP" and f.ref and f.ref not in seen:
                seen.append(f.ref)
    return seen


def c_member(f):
    """The C declarations for one field."""
    out = []
    if f.kind == "OBJECT":
        out.append("oci_%s *%s;" % (f.ref, f.cname))
    elif f.kind == "MAP":
        out.append("oci_map_%s *%s;" % (f.ref or "string", f.cname))
    elif f.kind == "ARRAY":
        if f.elem_kind == "OBJECT":
            out.append("oci_%s **%s;" % (f.ref, f.cname))
        else:
            ctype = SCALARS[f.type_str[2:]][0]
            out.append("%s%s*%s;" % (ctype, "" if ctype.endswith("*") else " ", f.cname))
        out.append("size_t %s_len;" % f.cname)
        out.append("bool has_%s;" % f.cname)
    else:
        ctype = SCALARS[f.type_str][0]
        out.append("%s%s%s;" % (ctype, "" if ctype.endswith("*") else " ", f.cname))
        if f.kind != "STRING":
            out.append("bool has_%s;" % f.cname)
    return out


def gen_header(types, schema_name):
    o = []
    w = o.append
    w("/* Generated by gen.py from %s; do not edit. Include \"ocispec.h\", not this. */" % schema_name)
    w("#ifndef OCISPEC_TYPES_H")
    w("#define OCISPEC_TYPES_H")
    w("")
    w("#ifndef OCISPEC_H")
    w("#error \"include ocispec.h instead of ocispec-types.h\"")
    w("#endif")
    w("")
    for t in types:
        w("typedef struct oci_%s oci_%s;" % (t.name, t.name))
    w("")
    for m in map_types(types):
        w("typedef struct")
        w("{")
        w("  char **keys;")
        w("  oci_%s **values;" % m)
        w("  size_t len;")
        w("} oci_map_%s;" % m)
        w("")
    for t in types:
        w("struct oci_%s" % t.name)
        w("{")
        for f in t.fields:
            req = "  /* required */" if f.required else ""
            decls = c_member(f)
            for i, d in enumerate(decls):
                w("  %s%s" % (d, req if i == 0 else ""))
        if not t.fields:
            w("  char unused_;")
        w("};")
        w("")
    for t in types:
        w("void oci_%s_free (oci_%s *v);" % (t.name, t.name))
        w("static inline void")
        w("oci_%s_freep (oci_%s **v)" % (t.name, t.name))
        w("{")
        w("  oci_%s_free (*v);" % t.name)
        w("}")
        if t.root:
            w("oci_%s *oci_%s_parse_data (const char *data, size_t len, ocispec_errors *errs);" % (t.name, t.name))
            w("oci_%s *oci_%s_parse_file (const char *path, ocispec_errors *errs);" % (t.name, t.name))
            w("char *oci_%s_to_json (const oci_%s *v, unsigned flags, size_t *len);" % (t.name, t.name))
        w("")
    for m in map_types(types):
        w("void oci_map_%s_free (oci_map_%s *m);" % (m, m))
        w("/* Looks up key; NULL when absent. */")
        w("oci_%s *oci_map_%s_get (const oci_map_%s *m, const char *key);" % (m, m, m))
        w("")
    w("#ifdef OCISPEC_INTERNAL")
    w("/* The tables json.c walks; only libocispec sees these. */")
    w("enum ocispec_kind")
    w("{")
    for k in ["BOOL", "STRING", "INT32", "UINT32", "INT64", "UINT64", "UINT16", "UINT8", "DOUBLE", "OBJECT", "ARRAY", "MAP"]:
        w("  OCISPEC_KIND_%s," % k)
    w("};")
    w("")
    w("#define OCISPEC_NO_OFFSET ((size_t) -1)")
    w("")
    w("struct ocispec_type;")
    w("")
    w("struct ocispec_field")
    w("{")
    w("  const char *json_name;")
    w("  enum ocispec_kind kind;")
    w("  /* ARRAY: the element kind; MAP: STRING or OBJECT.  */")
    w("  enum ocispec_kind elem_kind;")
    w("  bool required;")
    w("  size_t offset;")
    w("  /* has_x and x_len, OCISPEC_NO_OFFSET when the field has none.  */")
    w("  size_t has_offset;")
    w("  size_t len_offset;")
    w("  /* OBJECT, array of OBJECT, map of OBJECT: the object's table.  */")
    w("  const struct ocispec_type *type;")
    w("};")
    w("")
    w("struct ocispec_type")
    w("{")
    w("  const char *name;")
    w("  size_t size;")
    w("  const struct ocispec_field *fields;")
    w("  size_t n_fields;")
    w("};")
    w("")
    for t in types:
        w("extern const struct ocispec_type ocispec_type_%s;" % t.name)
    w("")
    w("void *ocispec_parse_data (const struct ocispec_type *type, const char *data, size_t len, ocispec_errors *errs);")
    w("void *ocispec_parse_file (const struct ocispec_type *type, const char *path, ocispec_errors *errs);")
    w("char *ocispec_to_json (const struct ocispec_type *type, const void *v, unsigned flags, size_t *len);")
    w("void ocispec_free_object (const struct ocispec_type *type, void *v);")
    w("/* type is NULL for map<string>.  */")
    w("void ocispec_free_map (const struct ocispec_type *type, void *m);")
    w("void *ocispec_map_get (const void *m, const char *key);")
    w("#endif /* OCISPEC_INTERNAL */")
    w("")
    w("#endif")
    return "\n".join(o) + "\n"


def gen_tables(types, schema_name):
    o = []
    w = o.append
    w("/* Generated by gen.py from %s; do not edit. */" % schema_name)
    w("#define OCISPEC_INTERNAL 1")
    w("#include \"ocispec.h\"")
    w("")
    w("#include <stddef.h>")
    w("")
    for t in types:
        st = "oci_%s" % t.name
        if t.fields:
            w("static const struct ocispec_field ocispec_fields_%s[] = {" % t.name)
            for f in t.fields:
                has = "OCISPEC_NO_OFFSET"
                ln = "OCISPEC_NO_OFFSET"
                if f.kind not in ("STRING", "OBJECT", "MAP"):
                    has = "offsetof (%s, has_%s)" % (st, f.cname)
                if f.kind == "ARRAY":
                    ln = "offsetof (%s, %s_len)" % (st, f.cname)
                elem = "OCISPEC_KIND_%s" % (f.elem_kind or f.kind)
                ref = "&ocispec_type_%s" % f.ref if f.ref else "NULL"
                w("  { .json_name = \"%s\"," % f.json_name)
                w("    .kind = OCISPEC_KIND_%s," % f.kind)
                w("    .elem_kind = %s," % elem)
                w("    .required = %s," % ("true" if f.required else "false"))
                w("    .offset = offsetof (%s, %s)," % (st, f.cname))
                w("    .has_offset = %s," % has)
                w("    .len_offset = %s," % ln)
                w("    .type = %s }," % ref)
            w("};")
            w("")
        w("const struct ocispec_type ocispec_type_%s = {" % t.name)
        w("  .name = \"%s\"," % t.name)
        w("  .size = sizeof (%s)," % st)
        if t.fields:
            w("  .fields = ocispec_fields_%s," % t.name)
            w("  .n_fields = sizeof (ocispec_fields_%s) / sizeof (ocispec_fields_%s[0])," % (t.name, t.name))
        else:
            w("  .fields = NULL,")
            w("  .n_fields = 0,")
        w("};")
        w("")
    for t in types:
        n = t.name
        w("void")
        w("oci_%s_free (oci_%s *v)" % (n, n))
        w("{")
        w("  ocispec_free_object (&ocispec_type_%s, v);" % n)
        w("}")
        w("")
        if t.root:
            w("oci_%s *" % n)
            w("oci_%s_parse_data (const char *data, size_t len, ocispec_errors *errs)" % n)
            w("{")
            w("  return ocispec_parse_data (&ocispec_type_%s, data, len, errs);" % n)
            w("}")
            w("")
            w("oci_%s *" % n)
            w("oci_%s_parse_file (const char *path, ocispec_errors *errs)" % n)
            w("{")
            w("  return ocispec_parse_file (&ocispec_type_%s, path, errs);" % n)
            w("}")
            w("")
            w("char *")
            w("oci_%s_to_json (const oci_%s *v, unsigned flags, size_t *len)" % (n, n))
            w("{")
            w("  return ocispec_to_json (&ocispec_type_%s, v, flags, len);" % n)
            w("}")
            w("")
    for m in map_types(types):
        w("void")
        w("oci_map_%s_free (oci_map_%s *m)" % (m, m))
        w("{")
        w("  ocispec_free_map (&ocispec_type_%s, m);" % m)
        w("}")
        w("")
        w("oci_%s *" % m)
        w("oci_map_%s_get (const oci_map_%s *m, const char *key)" % (m, m))
        w("{")
        w("  return ocispec_map_get (m, key);")
        w("}")
        w("")
    return "\n".join(o).rstrip("\n") + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: %s SCHEMA OUTDIR\n" % argv[0])
        return 2
    schema, outdir = argv[1], argv[2]
    with open(schema, encoding="utf-8") as f:
        text = f.read()
    try:
        types = parse_schema(text)
        resolve(types)
    except SchemaError as e:
        sys.stderr.write("%s:%s\n" % (schema, e))
        return 1
    name = os.path.basename(schema)
    # Always rewrite (make compares timestamps against the schema and gen.py).
    for fname, text in (("ocispec-types.h", gen_header(types, name)), ("ocispec-tables.c", gen_tables(types, name))):
        path = os.path.join(outdir, fname)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
