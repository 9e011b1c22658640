/* A header block of core.h2, field by field (h2_head.h). */
#include <string.h>

#include "h2_head.h"

static int is(const uint8_t *name, size_t namelen, const char *lit) {
    size_t n = strlen(lit);
    return namelen == n && memcmp(name, lit, n) == 0;
}

void h2_head_begin(h2_head *b) {
    b->buf.len = 0;
    b->codings.len = 0;
    b->size = 0;
    b->count = 0;
    b->status = 0;
    b->cookies = 0;
    b->long_size = 0;
}

/* A client keeps the fields as field lines, with :status (RFC 9113 8.3.2),
 * the Content-Encoding values (one list, RFC 9110 5.3) and Set-Cookie's
 * presence apart, so that the head reaches Lua as one string. nghttp2 has
 * checked the fields (8.2: lowercase names, no pseudo-header after a
 * regular one, a :status of three digits). */
static int add_line(h2_head *b, const uint8_t *name, size_t namelen, const uint8_t *value,
                    size_t valuelen) {
    if (namelen && name[0] == ':') return 0;
    size_t line = namelen + valuelen + 2; /* as HTTP/1.1's max_field_size counts it */
    if (b->max_field && line > b->max_field && !b->long_size) {
        b->long_off = b->buf.len;
        b->long_name = namelen;
        b->long_size = line;
    }
    if (rt_buf_append(&b->buf, name, namelen) || rt_buf_append(&b->buf, ": ", 2) ||
        rt_buf_append(&b->buf, value, valuelen) || rt_buf_append(&b->buf, "\r\n", 2))
        return -1;
    if (is(name, namelen, "content-encoding") &&
        ((b->codings.len && rt_buf_append(&b->codings, ", ", 2)) ||
         rt_buf_append(&b->codings, value, valuelen)))
        return -1;
    if (is(name, namelen, "set-cookie")) b->cookies = 1;
    return 0;
}

/* A server keeps each field's two lengths, its name and its value. */
static int add_field(h2_head *b, const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen) {
    size_t lens[2] = {namelen, valuelen};
    return rt_buf_append(&b->buf, lens, sizeof lens) || rt_buf_append(&b->buf, name, namelen) ||
                   rt_buf_append(&b->buf, value, valuelen)
               ? -1
               : 0;
}

int h2_head_add(h2_head *b, const uint8_t *name, size_t namelen, const uint8_t *value,
                size_t valuelen) {
    b->size += namelen + valuelen + H2_FIELD_OVERHEAD;
    b->count++;
    if (is(name, namelen, ":status"))
        for (size_t i = 0; i < valuelen; i++)
            b->status = b->status * 10 + (value[i] - '0');
    return b->client ? add_line(b, name, namelen, value, valuelen)
                     : add_field(b, name, namelen, value, valuelen);
}

static void set_number(lua_State *L, int i, lua_Number v) {
    lua_pushnumber(L, v);
    lua_rawseti(L, -2, i);
}

static void push_fields(h2_head *b, lua_State *L) {
    lua_createtable(L, b->count, 0);
    lua_createtable(L, b->count, 0);
    const char *p = b->buf.p;
    for (int i = 1; i <= b->count; i++) {
        size_t lens[2];
        memcpy(lens, p, sizeof lens);
        p += sizeof lens;
        lua_pushlstring(L, p, lens[0]);
        lua_rawseti(L, -3, i);
        lua_pushlstring(L, p + lens[0], lens[1]);
        lua_rawseti(L, -2, i);
        p += lens[0] + lens[1];
    }
    lua_rawseti(L, -3, 4);
    lua_rawseti(L, -2, 3);
}

static void push_lines(h2_head *b, lua_State *L) {
    lua_pushlstring(L, b->buf.p ? b->buf.p : "", b->buf.len);
    lua_rawseti(L, -2, 3);
    if (b->status) set_number(L, 4, b->status);
    if (b->codings.len)
        lua_pushlstring(L, b->codings.p, b->codings.len);
    else
        lua_pushboolean(L, 0);
    lua_rawseti(L, -2, 7);
    lua_pushboolean(L, b->cookies);
    lua_rawseti(L, -2, 8);
    if (b->long_size) {
        lua_pushlstring(L, b->buf.p + b->long_off, b->long_name);
        lua_rawseti(L, -2, 9);
        set_number(L, 10, (lua_Number)b->long_size);
    }
}

void h2_head_push(h2_head *b, lua_State *L, size_t keep) {
    if (b->client)
        push_lines(b, L);
    else
        push_fields(b, L);
    rt_buf_release(&b->buf, keep);
    rt_buf_release(&b->codings, keep);
}

void h2_head_free(h2_head *b) {
    rt_buf_release(&b->buf, 0);
    rt_buf_release(&b->codings, 0);
}
