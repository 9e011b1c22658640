/* A header block of core.h2 (l_h2.c) as nghttp2 hands it over field by
 * field, kept until the block ends and then given to Lua in the layout of
 * its side: a server gets names and values, a client the field lines lurl
 * parses for HTTP/1.1 responses, with what the exchange needs at once set
 * apart. */
#ifndef LURL_H2_HEAD_H
#define LURL_H2_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "rt.h"

/* RFC 9113 6.5.2: a field's size is its name's, its value's and 32. */
#define H2_FIELD_OVERHEAD 32

typedef struct {
    int client;
    size_t max_field;                      /* client: the limit on one field's line (0: none) */
    rt_buf buf;                            /* server: sizes, names, values; client: field lines */
    size_t size;                           /* the block's size as RFC 9113 6.5.2 counts it */
    int count;                             /* its fields */
    int status;                            /* its :status, or 0 */
    int cookies;                           /* client: it has Set-Cookie */
    rt_buf codings;                        /* client: its Content-Encoding values, joined */
    size_t long_off, long_name, long_size; /* client: the first field over max_field */
} h2_head;

/* A new block begins (the limits stay). */
void h2_head_begin(h2_head *b);

/* One field of the block; -1 when memory ran out. */
int h2_head_add(h2_head *b, const uint8_t *name, size_t namelen, const uint8_t *value,
                size_t valuelen);

/* Into the event table on top of L's stack: a server's names (3) and
 * values (4); a client's field lines (3), status (4), codings or false
 * (7), whether it sets cookies (8) and, when a field is over max_field,
 * that field's name (9) and size (10). What exceeds keep is freed. */
void h2_head_push(h2_head *b, lua_State *L, size_t keep);

void h2_head_free(h2_head *b);

#endif
