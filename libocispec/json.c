/* The one generic JSON parser and serialiser for the OCI model. It walks
 * the field tables gen.py emits, so no field has hand-written code.
 *
 * Parsing happens in two steps: yajl's event parser builds a small
 * document tree (so that every mistake can be reported, with its path,
 * instead of stopping at the first one), then the tree is converted into
 * the typed structs by walking the tables. Numbers are kept as their
 * source text so that range checks are exact (uint64 above INT64_MAX,
 * "1.0" for an integer, "-1" for an unsigned type). */
#define _GNU_SOURCE
#define OCISPEC_INTERNAL 1
#include "ocispec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

/* Real configs nest less than ten levels; the limit keeps the recursive
 * conversion and free well away from the end of the stack. */
#define MAX_DEPTH 1000

/* How much of an offending value an error message quotes. */
#define MAX_QUOTE 64

/* Running out of memory is not something the runtime can recover from;
 * crun does the same. */
static void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

static void *
xcalloc (size_t n, size_t size)
{
  void *p = calloc (n ? n : 1, size ? size : 1);
  if (p == NULL)
    abort ();
  return p;
}

static void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

static char *
xstrndup (const char *s, size_t n)
{
  char *r = xmalloc (n + 1);
  memcpy (r, s, n);
  r[n] = '\0';
  return r;
}

/* ---- a growable byte buffer, always NUL-terminated ---- */

struct buf
{
  char *s;
  size_t len;
  size_t cap;
};

static void
buf_grow (struct buf *b, size_t extra)
{
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1)
    cap *= 2;
  b->s = xrealloc (b->s, cap);
  b->cap = cap;
}

static void
buf_add (struct buf *b, const char *s, size_t n)
{
  buf_grow (b, n);
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void
buf_puts (struct buf *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

static void
buf_putc (struct buf *b, char c)
{
  buf_add (b, &c, 1);
}

static void __attribute__ ((format (printf, 2, 3))) buf_printf (struct buf *b, const char *fmt, ...)
{
  va_list ap;
  char tmp[64];
  int n;

  va_start (ap, fmt);
  n = vsnprintf (tmp, sizeof tmp, fmt, ap);
  va_end (ap);
  if (n < 0)
    abort ();
  if ((size_t)n < sizeof tmp)
    {
      buf_add (b, tmp, n);
      return;
    }
  buf_grow (b, n);
  va_start (ap, fmt);
  vsnprintf (b->s + b->len, n + 1, fmt, ap);
  va_end (ap);
  b->len += n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if the
 * bytes there are not one. Strict: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static size_t
utf8_seq_len (const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef)
    {
      len = 3;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    }
  else if (c >= 0xf0 && c <= 0xf4)
    {
      len = 4;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    }
  else
    return 0;
  if (n < len)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

/* How many bytes at the start of s (n bytes) are valid UTF-8; ASCII, what
 * configs are made of, without a call per byte. */
static size_t
utf8_valid_prefix (const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, l;

  while (i < n)
    {
      if (s[i] < 0x80)
        {
          i++;
          continue;
        }
      l = utf8_seq_len (s + i, n - i);
      if (l == 0)
        break;
      i += l;
    }
  return i;
}

/* U+FFFD in UTF-8.  */
#define REPLACEMENT "\xef\xbf\xbd"

/* A copy of s (n bytes, of which the first `valid` are valid UTF-8) in
 * which every byte that is not part of a valid UTF-8 sequence is U+FFFD, as
 * Go's decoder (runc) does. yajl checks only the shape of multi-byte
 * sequences, so overlong forms, surrogates ("\udc00" too) and code points
 * above U+10FFFF get through it. */
static char *
utf8_sanitize (const char *str, size_t n, size_t valid, size_t *out_len)
{
  const unsigned char *s = (const unsigned char *)str;
  struct buf b = { 0 };
  size_t i = valid, l = 0;

  buf_add (&b, str, i);
  while (i < n)
    {
      l = utf8_seq_len (s + i, n - i);
      if (l == 0)
        {
          buf_puts (&b, REPLACEMENT);
          i++;
        }
      else
        {
          buf_add (&b, str + i, l);
          i += l;
        }
    }
  *out_len = b.len;
  return b.s;
}

/* Appends s as a JSON string. Bytes that are not valid UTF-8 become
 * U+FFFD, as when parsing, so the output is always valid JSON. */
static void
buf_put_json_string (struct buf *b, const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  buf_putc (b, '"');
  while (i < n)
    {
      size_t start = i;
      /* Copy the longest run that needs no escaping in one go.  */
      while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
      if (i > start)
        buf_add (b, str + start, i - start);
      if (i >= n)
        break;
      unsigned char c = s[i];
      if (c >= 0x80)
        {
          size_t l = utf8_seq_len (s + i, n - i);
          if (l == 0)
            {
              buf_puts (b, REPLACEMENT);
              i++;
            }
          else
            {
              buf_add (b, str + i, l);
              i += l;
            }
          continue;
        }
      switch (c)
        {
        case '"':
          buf_puts (b, "\\\"");
          break;
        case '\\':
          buf_puts (b, "\\\\");
          break;
        case '\b':
          buf_puts (b, "\\b");
          break;
        case '\f':
          buf_puts (b, "\\f");
          break;
        case '\n':
          buf_puts (b, "\\n");
          break;
        case '\r':
          buf_puts (b, "\\r");
          break;
        case '\t':
          buf_puts (b, "\\t");
          break;
        default:
          buf_printf (b, "\\u%04x", c);
          break;
        }
      i++;
    }
  buf_putc (b, '"');
}

/* ---- errors ---- */

void
ocispec_errors_free (ocispec_errors *errs)
{
  if (errs == NULL)
    return;
  for (size_t i = 0; i < errs->len; i++)
    free (errs->msgs[i]);
  free (errs->msgs);
  errs->msgs = NULL;
  errs->len = 0;
}

static void
errors_add (ocispec_errors *errs, char *msg)
{
  errs->msgs = xrealloc (errs->msgs, (errs->len + 2) * sizeof (char *));
  errs->msgs[errs->len++] = msg;
  errs->msgs[errs->len] = NULL;
}

/* ---- an arena: the document tree is freed all at once ---- */

struct arena_chunk
{
  struct arena_chunk *next;
  max_align_t data[];
};

struct arena
{
  struct arena_chunk *head;
  char *p;
  size_t left;
  size_t next_size; /* the size of the next chunk's data */
};

static void *
arena_alloc (struct arena *a, size_t n)
{
  void *r;

  n = (n + sizeof (max_align_t) - 1) & ~(sizeof (max_align_t) - 1);
  if (n > a->left)
    {
      size_t size = a->next_size > n ? a->next_size : n;
      struct arena_chunk *c = xmalloc (sizeof (*c) + size);
      c->next = a->head;
      a->head = c;
      a->p = (char *)c->data;
      a->left = size;
      if (a->next_size < 64 * 1024)
        a->next_size = a->next_size ? a->next_size * 2 : 4096;
    }
  r = a->p;
  a->p += n;
  a->left -= n;
  return r;
}

static void *
arena_zalloc (struct arena *a, size_t n)
{
  return memset (arena_alloc (a, n), 0, n);
}

/* A copy of what old held (old_n bytes) in a new block of new_n bytes; the
 * old block stays until the arena goes. */
static void *
arena_grow (struct arena *a, void *old, size_t old_n, size_t new_n)
{
  void *r = arena_alloc (a, new_n);
  if (old_n)
    memcpy (r, old, old_n);
  return r;
}

static char *
arena_strndup (struct arena *a, const char *s, size_t n)
{
  char *r = arena_alloc (a, n + 1);
  memcpy (r, s, n);
  r[n] = '\0';
  return r;
}

static void
arena_free (struct arena *a)
{
  while (a->head)
    {
      struct arena_chunk *next = a->head->next;
      free (a->head);
      a->head = next;
    }
  a->p = NULL;
  a->left = 0;
}

/* s (n bytes) in the arena, with every byte that is not valid UTF-8
 * replaced (utf8_sanitize). */
static char *
arena_utf8 (struct arena *a, const char *s, size_t n, size_t *out_len)
{
  size_t valid = utf8_valid_prefix (s, n);
  char *tmp, *r;

  if (valid == n)
    {
      *out_len = n;
      return arena_strndup (a, s, n);
    }
  tmp = utf8_sanitize (s, n, valid, out_len);
  r = arena_strndup (a, tmp, *out_len);
  free (tmp);
  return r;
}

/* ---- the document tree ---- */

enum jtype
{
  J_NULL,
  J_BOOL,
  J_NUMBER,
  J_STRING,
  J_OBJECT,
  J_ARRAY,
};

struct jnode
{
  enum jtype type;
  bool b;
  /* J_STRING: the string; J_NUMBER: the number's source text.  */
  char *s;
  size_t slen;
  /* J_OBJECT and J_ARRAY. Objects keep their keys in document order.  */
  struct jnode **items;
  char **keys;
  size_t *key_lens;
  size_t len;
  size_t cap;
};

/* Every node, string and array of the tree lives in the arena. */
struct builder
{
  struct arena *arena;
  struct jnode *root;
  struct jnode **stack;
  size_t depth, cap;
  bool too_deep;
};

static int
builder_add (struct builder *bd, struct jnode *n)
{
  if (bd->depth == 0)
    {
      /* yajl allows a single top-level value; anything else is an error
         it reports itself.  */
      bd->root = n;
      return 1;
    }
  struct jnode *top = bd->stack[bd->depth - 1];
  if (top->type == J_ARRAY)
    {
      if (top->len == top->cap)
        {
          size_t cap = top->cap ? top->cap * 2 : 4;
          top->items = arena_grow (bd->arena, top->items, top->len * sizeof (*top->items), cap * sizeof (*top->items));
          top->cap = cap;
        }
    }
  /* For objects, the key callback made room and stored the key.  */
  top->items[top->len++] = n;
  return 1;
}

static struct jnode *
jnode_new (struct builder *bd, enum jtype type)
{
  struct jnode *n = arena_zalloc (bd->arena, sizeof (*n));
  n->type = type;
  return n;
}

static int
cb_null (void *ctx)
{
  return builder_add (ctx, jnode_new (ctx, J_NULL));
}

static int
cb_boolean (void *ctx, int v)
{
  struct jnode *n = jnode_new (ctx, J_BOOL);
  n->b = v != 0;
  return builder_add (ctx, n);
}

static int
cb_number (void *ctx, const char *s, size_t len)
{
  struct builder *bd = ctx;
  struct jnode *n = jnode_new (bd, J_NUMBER);
  n->s = arena_strndup (bd->arena, s, len);
  n->slen = len;
  return builder_add (bd, n);
}

static int
cb_string (void *ctx, const unsigned char *s, size_t len)
{
  struct builder *bd = ctx;
  struct jnode *n = jnode_new (bd, J_STRING);
  n->s = arena_utf8 (bd->arena, (const char *)s, len, &n->slen);
  return builder_add (bd, n);
}

static int
open_container (struct builder *bd, enum jtype type)
{
  if (bd->depth >= MAX_DEPTH)
    {
      bd->too_deep = true;
      return 0;
    }
  /* Grown on demand: configs nest a few levels, and a stack sized for
   * MAX_DEPTH up front was zeroed on every parse. */
  if (bd->depth == bd->cap)
    {
      bd->cap = bd->cap ? bd->cap * 2 : 16;
      bd->stack = xrealloc (bd->stack, bd->cap * sizeof (*bd->stack));
    }
  struct jnode *n = jnode_new (bd, type);
  builder_add (bd, n);
  bd->stack[bd->depth++] = n;
  return 1;
}

static int
cb_start_map (void *ctx)
{
  return open_container (ctx, J_OBJECT);
}

static int
cb_map_key (void *ctx, const unsigned char *key, size_t len)
{
  struct builder *bd = ctx;
  struct jnode *top = bd->stack[bd->depth - 1];
  if (top->len == top->cap)
    {
      struct arena *a = bd->arena;
      size_t cap = top->cap ? top->cap * 2 : 4;
      top->items = arena_grow (a, top->items, top->len * sizeof (*top->items), cap * sizeof (*top->items));
      top->keys = arena_grow (a, top->keys, top->len * sizeof (*top->keys), cap * sizeof (*top->keys));
      top->key_lens = arena_grow (a, top->key_lens, top->len * sizeof (*top->key_lens), cap * sizeof (*top->key_lens));
      top->cap = cap;
    }
  top->keys[top->len] = arena_utf8 (bd->arena, (const char *)key, len, &top->key_lens[top->len]);
  return 1;
}

static int
cb_end (void *ctx)
{
  struct builder *bd = ctx;
  bd->depth--;
  return 1;
}

static int
cb_start_array (void *ctx)
{
  return open_container (ctx, J_ARRAY);
}

static const yajl_callbacks callbacks = {
  .yajl_null = cb_null,
  .yajl_boolean = cb_boolean,
  .yajl_number = cb_number,
  .yajl_string = cb_string,
  .yajl_start_map = cb_start_map,
  .yajl_map_key = cb_map_key,
  .yajl_end_map = cb_end,
  .yajl_start_array = cb_start_array,
  .yajl_end_array = cb_end,
};

/* Returns the document, in the arena, or NULL after recording "invalid
 * JSON: ...".  */
static struct jnode *
parse_tree (struct arena *arena, const char *data, size_t len, ocispec_errors *errs)
{
  struct builder bd = { .arena = arena };
  yajl_handle h;
  yajl_status st;

  h = yajl_alloc (&callbacks, NULL, &bd);
  if (h == NULL)
    abort ();
  size_t offset;

  st = yajl_parse (h, (const unsigned char *)data, len);
  offset = yajl_get_bytes_consumed (h);
  if (st == yajl_status_ok)
    {
      /* The error, if any, is at the end of the input.  */
      st = yajl_complete_parse (h);
      offset = len;
    }
  if (st != yajl_status_ok)
    {
      struct buf msg = { 0 };
      buf_puts (&msg, "invalid JSON: ");
      if (bd.too_deep)
        buf_printf (&msg, "nested deeper than %d levels", MAX_DEPTH);
      else
        {
          unsigned char *e = yajl_get_error (h, 0, NULL, 0);
          const char *m = (const char *)e;
          if (m && strncmp (m, "parse error: ", 13) == 0)
            m += 13;
          for (; m && *m; m++)
            if (*m != '\n' && *m != '\r')
              buf_putc (&msg, *m);
          yajl_free_error (h, e);
        }
      buf_printf (&msg, " (at byte %zu)", offset);
      errors_add (errs, msg.s);
      bd.root = NULL;
    }
  yajl_free (h);
  free (bd.stack);
  return bd.root;
}

/* ---- tree to typed structs ---- */

struct pctx
{
  ocispec_errors *errs;
  struct buf path;
};

static bool
is_plain_key (const char *s, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = s[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        return false;
    }
  return true;
}

static size_t
path_push_field (struct pctx *c, const char *name)
{
  size_t old = c->path.len;
  if (old)
    buf_putc (&c->path, '.');
  buf_puts (&c->path, name);
  return old;
}

static size_t
path_push_key (struct pctx *c, const char *key, size_t n)
{
  size_t old = c->path.len;
  if (is_plain_key (key, n))
    {
      if (old)
        buf_putc (&c->path, '.');
      buf_add (&c->path, key, n);
    }
  else
    {
      buf_putc (&c->path, '[');
      buf_put_json_string (&c->path, key, n);
      buf_putc (&c->path, ']');
    }
  return old;
}

static size_t
path_push_index (struct pctx *c, size_t i)
{
  size_t old = c->path.len;
  buf_printf (&c->path, "[%zu]", i);
  return old;
}

static void
path_pop (struct pctx *c, size_t old)
{
  c->path.len = old;
  if (c->path.s)
    c->path.s[old] = '\0';
}

static void __attribute__ ((format (printf, 2, 3))) report (struct pctx *c, const char *fmt, ...)
{
  struct buf msg = { 0 };
  va_list ap;
  char *tail = NULL;

  buf_puts (&msg, c->path.len ? c->path.s : "(root)");
  buf_puts (&msg, ": ");
  va_start (ap, fmt);
  if (vasprintf (&tail, fmt, ap) < 0)
    abort ();
  va_end (ap);
  buf_puts (&msg, tail);
  free (tail);
  errors_add (c->errs, msg.s);
}

/* What a mistaken value was, for "expected X, got Y".  */
static char *
describe (const struct jnode *n)
{
  struct buf b = { 0 };
  size_t cut;

  switch (n->type)
    {
    case J_NULL:
      buf_puts (&b, "null");
      break;
    case J_BOOL:
      buf_puts (&b, n->b ? "true" : "false");
      break;
    case J_NUMBER:
      buf_add (&b, n->s, n->slen > MAX_QUOTE ? MAX_QUOTE : n->slen);
      if (n->slen > MAX_QUOTE)
        buf_puts (&b, "...");
      break;
    case J_STRING:
      cut = n->slen;
      if (cut > MAX_QUOTE)
        {
          cut = MAX_QUOTE;
          /* Do not cut a UTF-8 sequence in half.  */
          while (cut > 0 && ((unsigned char)n->s[cut] & 0xc0) == 0x80)
            cut--;
        }
      buf_put_json_string (&b, n->s, cut);
      if (cut < n->slen)
        {
          b.len--;
          buf_puts (&b, "...\"");
        }
      break;
    case J_OBJECT:
      buf_puts (&b, "an object");
      break;
    case J_ARRAY:
      buf_puts (&b, "an array");
      break;
    }
  return b.s;
}

static const char *
kind_expected (enum ocispec_kind k)
{
  switch (k)
    {
    case OCISPEC_KIND_BOOL:
      return "a boolean";
    case OCISPEC_KIND_STRING:
      return "a string";
    case OCISPEC_KIND_INT32:
      return "a 32-bit integer";
    case OCISPEC_KIND_UINT32:
      return "an unsigned 32-bit integer";
    case OCISPEC_KIND_INT64:
      return "a 64-bit integer";
    case OCISPEC_KIND_UINT64:
      return "an unsigned 64-bit integer";
    case OCISPEC_KIND_UINT16:
      return "an unsigned 16-bit integer";
    case OCISPEC_KIND_UINT8:
      return "an unsigned 8-bit integer";
    case OCISPEC_KIND_DOUBLE:
      return "a number";
    case OCISPEC_KIND_OBJECT:
    case OCISPEC_KIND_MAP:
      return "an object";
    case OCISPEC_KIND_ARRAY:
      return "an array";
    }
  return "a value";
}

static void
report_type (struct pctx *c, enum ocispec_kind expected, const struct jnode *got)
{
  char *d = describe (got);
  report (c, "expected %s, got %s", kind_expected (expected), d);
  free (d);
}

static size_t
kind_size (enum ocispec_kind k)
{
  switch (k)
    {
    case OCISPEC_KIND_BOOL:
      return sizeof (bool);
    case OCISPEC_KIND_INT32:
    case OCISPEC_KIND_UINT32:
      return sizeof (uint32_t);
    case OCISPEC_KIND_INT64:
    case OCISPEC_KIND_UINT64:
      return sizeof (uint64_t);
    case OCISPEC_KIND_UINT16:
      return sizeof (uint16_t);
    case OCISPEC_KIND_UINT8:
      return sizeof (uint8_t);
    case OCISPEC_KIND_DOUBLE:
      return sizeof (double);
    case OCISPEC_KIND_STRING:
    case OCISPEC_KIND_OBJECT:
    case OCISPEC_KIND_ARRAY:
    case OCISPEC_KIND_MAP:
      return sizeof (void *);
    }
  return sizeof (void *);
}

/* Parses a JSON number's text as an integer: *neg and the magnitude.
 * False for fractions, exponents and magnitudes beyond 2^64-1. */
static bool
number_to_integer (const char *s, size_t n, bool *neg, uint64_t *mag)
{
  size_t i = 0;
  uint64_t v = 0;

  *neg = false;
  if (i < n && s[i] == '-')
    {
      *neg = true;
      i++;
    }
  if (i == n)
    return false;
  for (; i < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return false;
      unsigned d = s[i] - '0';
      if (v > (UINT64_MAX - d) / 10)
        return false;
      v = v * 10 + d;
    }
  *mag = v;
  return true;
}

static bool
parse_integer (const struct jnode *n, enum ocispec_kind k, void *dst)
{
  bool neg;
  uint64_t mag;
  int64_t sv;

  if (n->type != J_NUMBER || !number_to_integer (n->s, n->slen, &neg, &mag))
    return false;

  switch (k)
    {
    case OCISPEC_KIND_UINT8:
    case OCISPEC_KIND_UINT16:
    case OCISPEC_KIND_UINT32:
    case OCISPEC_KIND_UINT64:
      /* Even "-0": Go's decoder refuses it for unsigned types too.  */
      if (neg)
        return false;
      if (k == OCISPEC_KIND_UINT8)
        {
          if (mag > UINT8_MAX)
            return false;
          *(uint8_t *)dst = mag;
        }
      else if (k == OCISPEC_KIND_UINT16)
        {
          if (mag > UINT16_MAX)
            return false;
          *(uint16_t *)dst = mag;
        }
      else if (k == OCISPEC_KIND_UINT32)
        {
          if (mag > UINT32_MAX)
            return false;
          *(uint32_t *)dst = mag;
        }
      else
        *(uint64_t *)dst = mag;
      return true;

    case OCISPEC_KIND_INT32:
    case OCISPEC_KIND_INT64:
      if (neg)
        {
          if (mag > (uint64_t)INT64_MAX + 1)
            return false;
          sv = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        }
      else
        {
          if (mag > INT64_MAX)
            return false;
          sv = (int64_t)mag;
        }
      if (k == OCISPEC_KIND_INT32)
        {
          if (sv < INT32_MIN || sv > INT32_MAX)
            return false;
          *(int32_t *)dst = sv;
        }
      else
        *(int64_t *)dst = sv;
      return true;

    default:
      return false;
    }
}

static bool
parse_double (const struct jnode *n, double *dst)
{
  char *end;
  double d;

  if (n->type != J_NUMBER)
    return false;
  errno = 0;
  d = strtod (n->s, &end);
  if (*end != '\0' || errno == ERANGE || !isfinite (d))
    return false;
  *dst = d;
  return true;
}

/* Stores a scalar (or a string) of kind k at dst; false after reporting. */
static bool
parse_scalar (struct pctx *c, enum ocispec_kind k, const struct jnode *n, void *dst)
{
  switch (k)
    {
    case OCISPEC_KIND_BOOL:
      if (n->type != J_BOOL)
        break;
      *(bool *)dst = n->b;
      return true;
    case OCISPEC_KIND_STRING:
      if (n->type != J_STRING)
        break;
      if (memchr (n->s, '\0', n->slen) != NULL)
        {
          /* C strings would silently cut it short.  */
          report (c, "string contains a NUL character");
          return false;
        }
      *(char **)dst = xstrndup (n->s, n->slen);
      return true;
    case OCISPEC_KIND_DOUBLE:
      if (!parse_double (n, dst))
        break;
      return true;
    case OCISPEC_KIND_INT32:
    case OCISPEC_KIND_UINT32:
    case OCISPEC_KIND_INT64:
    case OCISPEC_KIND_UINT64:
    case OCISPEC_KIND_UINT16:
    case OCISPEC_KIND_UINT8:
      if (!parse_integer (n, k, dst))
        break;
      return true;
    case OCISPEC_KIND_OBJECT:
    case OCISPEC_KIND_ARRAY:
    case OCISPEC_KIND_MAP:
      break;
    }
  report_type (c, k, n);
  return false;
}

static void free_field (const struct ocispec_field *f, char *base);
static void *parse_object (struct pctx *c, const struct ocispec_type *t, const struct jnode *n);

struct generic_map
{
  char **keys;
  void **values;
  size_t len;
};

static void
parse_array (struct pctx *c, const struct ocispec_field *f, const struct jnode *n, char *base)
{
  size_t esize = kind_size (f->elem_kind);
  bool pointers = f->elem_kind == OCISPEC_KIND_STRING || f->elem_kind == OCISPEC_KIND_OBJECT;
  char *arr;

  if (n->type != J_ARRAY)
    {
      report_type (c, OCISPEC_KIND_ARRAY, n);
      return;
    }
  /* Pointer arrays get a NULL terminator (string arrays go to execve).  */
  arr = xcalloc (n->len + (pointers ? 1 : 0), esize);
  for (size_t i = 0; i < n->len; i++)
    {
      size_t old = path_push_index (c, i);
      if (f->elem_kind == OCISPEC_KIND_OBJECT)
        ((void **)arr)[i] = parse_object (c, f->type, n->items[i]);
      else
        parse_scalar (c, f->elem_kind, n->items[i], arr + i * esize);
      path_pop (c, old);
    }
  *(void **)(base + f->offset) = arr;
  *(size_t *)(base + f->len_offset) = n->len;
  *(bool *)(base + f->has_offset) = true;
}

static void
parse_map (struct pctx *c, const struct ocispec_field *f, const struct jnode *n, char *base)
{
  struct generic_map *m;

  if (n->type != J_OBJECT)
    {
      report_type (c, OCISPEC_KIND_MAP, n);
      return;
    }
  m = xcalloc (1, sizeof (*m));
  m->keys = xcalloc (n->len + 1, sizeof (char *));
  m->values = xcalloc (n->len + 1, sizeof (void *));
  for (size_t i = 0; i < n->len; i++)
    {
      size_t old = path_push_key (c, n->keys[i], n->key_lens[i]);
      void *value = NULL;
      size_t j;

      if (memchr (n->keys[i], '\0', n->key_lens[i]) != NULL)
        {
          report (c, "key contains a NUL character");
          path_pop (c, old);
          continue;
        }
      if (f->elem_kind == OCISPEC_KIND_OBJECT)
        value = parse_object (c, f->type, n->items[i]);
      else
        parse_scalar (c, OCISPEC_KIND_STRING, n->items[i], &value);
      path_pop (c, old);

      /* A repeated key replaces the earlier value but keeps its place.  */
      for (j = 0; j < m->len; j++)
        if (strcmp (m->keys[j], n->keys[i]) == 0)
          break;
      if (j < m->len)
        {
          if (f->elem_kind == OCISPEC_KIND_OBJECT)
            ocispec_free_object (f->type, m->values[j]);
          else
            free (m->values[j]);
          m->values[j] = value;
        }
      else
        {
          m->keys[m->len] = xstrndup (n->keys[i], n->key_lens[i]);
          m->values[m->len] = value;
          m->len++;
        }
    }
  *(void **)(base + f->offset) = m;
}

static void
parse_field (struct pctx *c, const struct ocispec_field *f, const struct jnode *n, char *base)
{
  /* A repeated key: the last one wins, as in Go's decoder.  */
  free_field (f, base);

  switch (f->kind)
    {
    case OCISPEC_KIND_OBJECT:
      *(void **)(base + f->offset) = parse_object (c, f->type, n);
      return;
    case OCISPEC_KIND_ARRAY:
      parse_array (c, f, n, base);
      return;
    case OCISPEC_KIND_MAP:
      parse_map (c, f, n, base);
      return;
    default:
      if (parse_scalar (c, f->kind, n, base + f->offset) && f->has_offset != OCISPEC_NO_OFFSET)
        *(bool *)(base + f->has_offset) = true;
      return;
    }
}

static void *
parse_object (struct pctx *c, const struct ocispec_type *t, const struct jnode *n)
{
  char *obj;
  bool *seen;

  if (n->type != J_OBJECT)
    {
      report_type (c, OCISPEC_KIND_OBJECT, n);
      return NULL;
    }
  obj = xcalloc (1, t->size);
  seen = xcalloc (t->n_fields, sizeof (bool));
  for (size_t i = 0; i < n->len; i++)
    {
      const struct jnode *v = n->items[i];
      size_t j;

      for (j = 0; j < t->n_fields; j++)
        if (strlen (t->fields[j].json_name) == n->key_lens[i] && strcmp (t->fields[j].json_name, n->keys[i]) == 0)
          break;
      if (j == t->n_fields)
        continue; /* unknown fields are ignored, as the spec asks */

      const struct ocispec_field *f = &t->fields[j];
      seen[j] = true;
      if (v->type == J_NULL && !f->required)
        {
          /* null is "absent", also when it repeats an earlier key.  */
          free_field (f, obj);
          continue;
        }
      size_t old = path_push_field (c, f->json_name);
      parse_field (c, f, v, obj);
      path_pop (c, old);
    }
  for (size_t j = 0; j < t->n_fields; j++)
    if (t->fields[j].required && !seen[j])
      {
        size_t old = path_push_field (c, t->fields[j].json_name);
        report (c, "required field is missing");
        path_pop (c, old);
      }
  free (seen);
  return obj;
}

void *
ocispec_parse_data (const struct ocispec_type *type, const char *data, size_t len, ocispec_errors *errs)
{
  ocispec_errors local = { 0 };
  struct pctx c = { 0 };
  struct arena arena = { 0 };
  struct jnode *tree;
  size_t before;
  void *obj = NULL;

  if (errs == NULL)
    errs = &local;
  before = errs->len;
  c.errs = errs;

  if (data == NULL)
    data = "";
  /* Sized for the tree of a document of this length in one or two chunks. */
  arena.next_size = len * 2 + 1024;
  tree = parse_tree (&arena, data, len, errs);
  if (tree)
    obj = parse_object (&c, type, tree);
  arena_free (&arena);
  free (c.path.s);

  if (errs->len != before)
    {
      ocispec_free_object (type, obj);
      obj = NULL;
      errno = EINVAL;
    }
  ocispec_errors_free (&local);
  return obj;
}

void *
ocispec_parse_file (const struct ocispec_type *type, const char *path, ocispec_errors *errs)
{
  ocispec_errors local = { 0 };
  struct buf b = { 0 };
  void *obj;
  int fd, saved;

  if (errs == NULL)
    errs = &local;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      saved = errno;
      struct buf msg = { 0 };
      buf_printf (&msg, "open `%s`: %s", path, strerror (saved));
      errors_add (errs, msg.s);
      ocispec_errors_free (&local);
      errno = saved;
      return NULL;
    }
  for (;;)
    {
      ssize_t r;
      buf_grow (&b, 65536);
      r = read (fd, b.s + b.len, b.cap - b.len - 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          saved = errno;
          struct buf msg = { 0 };
          buf_printf (&msg, "read `%s`: %s", path, strerror (saved));
          errors_add (errs, msg.s);
          close (fd);
          free (b.s);
          ocispec_errors_free (&local);
          errno = saved;
          return NULL;
        }
      if (r == 0)
        break;
      b.len += r;
    }
  close (fd);

  obj = ocispec_parse_data (type, b.s, b.len, errs);
  saved = errno;
  free (b.s);
  ocispec_errors_free (&local);
  errno = saved;
  return obj;
}

/* ---- typed structs to JSON ---- */

struct out
{
  struct buf b;
  bool pretty;
};

static void
newline (struct out *o, int depth)
{
  if (!o->pretty)
    return;
  buf_putc (&o->b, '\n');
  for (int i = 0; i < depth; i++)
    buf_putc (&o->b, '\t');
}

static void
put_key (struct out *o, const char *key, size_t n)
{
  buf_put_json_string (&o->b, key, n);
  buf_puts (&o->b, o->pretty ? ": " : ":");
}

static void
put_double (struct out *o, double d)
{
  char tmp[64];

  if (!isfinite (d))
    {
      /* JSON has no such numbers; null reads back as absent.  */
      buf_puts (&o->b, "null");
      return;
    }
  /* The shortest form that reads back as the same double.  */
  for (int prec = 15; prec <= 17; prec++)
    {
      snprintf (tmp, sizeof tmp, "%.*g", prec, d);
      if (strtod (tmp, NULL) == d)
        break;
    }
  buf_puts (&o->b, tmp);
}

static void
put_scalar (struct out *o, enum ocispec_kind k, const void *p)
{
  switch (k)
    {
    case OCISPEC_KIND_BOOL:
      buf_puts (&o->b, *(const bool *)p ? "true" : "false");
      break;
    case OCISPEC_KIND_STRING:
      {
        const char *s = *(char *const *)p;
        buf_put_json_string (&o->b, s, strlen (s));
      }
      break;
    case OCISPEC_KIND_INT32:
      buf_printf (&o->b, "%" PRId32, *(const int32_t *)p);
      break;
    case OCISPEC_KIND_UINT32:
      buf_printf (&o->b, "%" PRIu32, *(const uint32_t *)p);
      break;
    case OCISPEC_KIND_INT64:
      buf_printf (&o->b, "%" PRId64, *(const int64_t *)p);
      break;
    case OCISPEC_KIND_UINT64:
      buf_printf (&o->b, "%" PRIu64, *(const uint64_t *)p);
      break;
    case OCISPEC_KIND_UINT16:
      buf_printf (&o->b, "%" PRIu16, *(const uint16_t *)p);
      break;
    case OCISPEC_KIND_UINT8:
      buf_printf (&o->b, "%" PRIu8, *(const uint8_t *)p);
      break;
    case OCISPEC_KIND_DOUBLE:
      put_double (o, *(const double *)p);
      break;
    case OCISPEC_KIND_OBJECT:
    case OCISPEC_KIND_ARRAY:
    case OCISPEC_KIND_MAP:
      break;
    }
}

static bool
scalar_is_zero (enum ocispec_kind k, const void *p)
{
  switch (k)
    {
    case OCISPEC_KIND_BOOL:
      return !*(const bool *)p;
    case OCISPEC_KIND_INT32:
    case OCISPEC_KIND_UINT32:
      return *(const uint32_t *)p == 0;
    case OCISPEC_KIND_INT64:
    case OCISPEC_KIND_UINT64:
      return *(const uint64_t *)p == 0;
    case OCISPEC_KIND_UINT16:
      return *(const uint16_t *)p == 0;
    case OCISPEC_KIND_UINT8:
      return *(const uint8_t *)p == 0;
    case OCISPEC_KIND_DOUBLE:
      return *(const double *)p == 0;
    default:
      return false;
    }
}

/* Whether a field goes into the JSON: has_x for scalars and arrays,
 * non-NULL for strings, objects and maps. A scalar someone set in code
 * without has_x is emitted when it is not zero, and a required one always
 * (a document missing it would not parse back). */
static bool
field_present (const struct ocispec_field *f, const char *base)
{
  const void *p = base + f->offset;

  switch (f->kind)
    {
    case OCISPEC_KIND_STRING:
    case OCISPEC_KIND_OBJECT:
    case OCISPEC_KIND_MAP:
      return *(void *const *)p != NULL;
    case OCISPEC_KIND_ARRAY:
      return *(const bool *)(base + f->has_offset) || *(void *const *)p != NULL;
    default:
      return *(const bool *)(base + f->has_offset) || f->required || !scalar_is_zero (f->kind, p);
    }
}

static void put_object (struct out *o, const struct ocispec_type *t, const char *obj, int depth);

static void
put_array (struct out *o, const struct ocispec_field *f, const char *base, int depth)
{
  const char *arr = *(char *const *)(base + f->offset);
  size_t len = arr ? *(const size_t *)(base + f->len_offset) : 0;
  size_t esize = kind_size (f->elem_kind);
  bool first = true;

  buf_putc (&o->b, '[');
  for (size_t i = 0; i < len; i++)
    {
      const void *p = arr + i * esize;
      /* NULL holes cannot be written: skip them.  */
      if ((f->elem_kind == OCISPEC_KIND_STRING || f->elem_kind == OCISPEC_KIND_OBJECT) && *(void *const *)p == NULL)
        continue;
      if (!first)
        buf_putc (&o->b, ',');
      first = false;
      newline (o, depth + 1);
      if (f->elem_kind == OCISPEC_KIND_OBJECT)
        put_object (o, f->type, *(char *const *)p, depth + 1);
      else
        put_scalar (o, f->elem_kind, p);
    }
  if (!first)
    newline (o, depth);
  buf_putc (&o->b, ']');
}

static void
put_map (struct out *o, const struct ocispec_field *f, const struct generic_map *m, int depth)
{
  bool first = true;

  buf_putc (&o->b, '{');
  for (size_t i = 0; i < m->len; i++)
    {
      if (m->keys[i] == NULL || m->values[i] == NULL)
        continue;
      if (!first)
        buf_putc (&o->b, ',');
      first = false;
      newline (o, depth + 1);
      put_key (o, m->keys[i], strlen (m->keys[i]));
      if (f->elem_kind == OCISPEC_KIND_OBJECT)
        put_object (o, f->type, m->values[i], depth + 1);
      else
        buf_put_json_string (&o->b, m->values[i], strlen (m->values[i]));
    }
  if (!first)
    newline (o, depth);
  buf_putc (&o->b, '}');
}

static void
put_object (struct out *o, const struct ocispec_type *t, const char *obj, int depth)
{
  bool first = true;

  buf_putc (&o->b, '{');
  for (size_t i = 0; i < t->n_fields; i++)
    {
      const struct ocispec_field *f = &t->fields[i];
      if (!field_present (f, obj))
        continue;
      if (!first)
        buf_putc (&o->b, ',');
      first = false;
      newline (o, depth + 1);
      put_key (o, f->json_name, strlen (f->json_name));
      switch (f->kind)
        {
        case OCISPEC_KIND_OBJECT:
          put_object (o, f->type, *(char *const *)(obj + f->offset), depth + 1);
          break;
        case OCISPEC_KIND_ARRAY:
          put_array (o, f, obj, depth + 1);
          break;
        case OCISPEC_KIND_MAP:
          put_map (o, f, *(struct generic_map *const *)(obj + f->offset), depth + 1);
          break;
        default:
          put_scalar (o, f->kind, obj + f->offset);
          break;
        }
    }
  if (!first)
    newline (o, depth);
  buf_putc (&o->b, '}');
}

char *
ocispec_to_json (const struct ocispec_type *type, const void *v, unsigned flags, size_t *len)
{
  struct out o = { .pretty = (flags & OCISPEC_JSON_PRETTY) != 0 };

  if (v == NULL)
    {
      errno = EINVAL;
      return NULL;
    }
  put_object (&o, type, v, 0);
  if (len)
    *len = o.b.len;
  return o.b.s;
}

/* ---- freeing ---- */

static void
free_field (const struct ocispec_field *f, char *base)
{
  void **p = (void **)(base + f->offset);

  switch (f->kind)
    {
    case OCISPEC_KIND_STRING:
      free (*p);
      *p = NULL;
      break;
    case OCISPEC_KIND_OBJECT:
      ocispec_free_object (f->type, *p);
      *p = NULL;
      break;
    case OCISPEC_KIND_MAP:
      ocispec_free_map (f->elem_kind == OCISPEC_KIND_OBJECT ? f->type : NULL, *p);
      *p = NULL;
      break;
    case OCISPEC_KIND_ARRAY:
      if (*p)
        {
          size_t len = *(size_t *)(base + f->len_offset);
          if (f->elem_kind == OCISPEC_KIND_STRING)
            for (size_t i = 0; i < len; i++)
              free (((void **)*p)[i]);
          else if (f->elem_kind == OCISPEC_KIND_OBJECT)
            for (size_t i = 0; i < len; i++)
              ocispec_free_object (f->type, ((void **)*p)[i]);
          free (*p);
        }
      *p = NULL;
      *(size_t *)(base + f->len_offset) = 0;
      *(bool *)(base + f->has_offset) = false;
      break;
    default:
      memset (p, 0, kind_size (f->kind));
      *(bool *)(base + f->has_offset) = false;
      break;
    }
}

void
ocispec_free_object (const struct ocispec_type *type, void *v)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < type->n_fields; i++)
    free_field (&type->fields[i], v);
  free (v);
}

void
ocispec_free_map (const struct ocispec_type *type, void *mp)
{
  struct generic_map *m = mp;

  if (m == NULL)
    return;
  for (size_t i = 0; i < m->len; i++)
    {
      if (m->keys)
        free (m->keys[i]);
      if (m->values)
        {
          if (type)
            ocispec_free_object (type, m->values[i]);
          else
            free (m->values[i]);
        }
    }
  free (m->keys);
  free (m->values);
  free (m);
}

void *
ocispec_map_get (const void *mp, const char *key)
{
  const struct generic_map *m = mp;

  if (m == NULL || key == NULL)
    return NULL;
  for (size_t i = 0; i < m->len; i++)
    if (m->keys[i] && strcmp (m->keys[i], key) == 0)
      return m->values[i];
  return NULL;
}

void
oci_map_string_free (oci_map_string *m)
{
  ocispec_free_map (NULL, m);
}

const char *
oci_map_string_get (const oci_map_string *m, const char *key)
{
  return ocispec_map_get (m, key);
}

/* ---- a document that is an array of strings ---- */

char **
ocispec_strings_parse_data (const char *data, size_t len, size_t *out_len, ocispec_errors *errs)
{
  ocispec_errors local = { 0 };
  struct pctx c = { 0 };
  struct arena arena = { 0 };
  struct jnode *tree;
  size_t before;
  char **v = NULL;

  if (errs == NULL)
    errs = &local;
  before = errs->len;
  c.errs = errs;
  *out_len = 0;

  arena.next_size = len * 2 + 1024;
  tree = parse_tree (&arena, data ? data : "", data ? len : 0, errs);
  if (tree && tree->type != J_ARRAY)
    report_type (&c, OCISPEC_KIND_ARRAY, tree);
  else if (tree)
    {
      v = xcalloc (tree->len + 1, sizeof (char *));
      for (size_t i = 0; i < tree->len; i++)
        {
          size_t old = path_push_index (&c, i);
          parse_scalar (&c, OCISPEC_KIND_STRING, tree->items[i], &v[i]);
          path_pop (&c, old);
        }
      *out_len = tree->len;
    }
  arena_free (&arena);
  free (c.path.s);

  if (errs->len != before)
    {
      for (size_t i = 0; v && i < *out_len; i++)
        free (v[i]);
      free (v);
      v = NULL;
      *out_len = 0;
      errno = EINVAL;
    }
  ocispec_errors_free (&local);
  return v;
}

char *
ocispec_strings_to_json (char *const *strv, size_t len)
{
  struct buf b = { 0 };

  buf_putc (&b, '[');
  for (size_t i = 0; i < len; i++)
    {
      if (i)
        buf_putc (&b, ',');
      buf_put_json_string (&b, strv[i], strlen (strv[i]));
    }
  buf_putc (&b, ']');
  return b.s;
}
