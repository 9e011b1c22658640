/* lurl.core HTTP/1.1: llhttp-based message parser and the request/response
 * head encoder. The parser collects a whole head in C and hands it to Lua in
 * one call; body bytes of one execute() come back as one string. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "rt.h"

#define H1_MT "lurl.h1_parser"
#define H1_MAX_HEADERS 1000

typedef struct {
    size_t name, name_len, value, value_len;
} h1_field;

typedef struct {
    llhttp_t p;
    lua_State *L;
    size_t max_line, max_field;
    /* head (or trailer) bytes: names and values back to back */
    char *buf;
    size_t buf_len, buf_cap;
    h1_field *fields;
    int nfields, fields_cap;
    size_t line_len;
    int in_field, in_value, ntrailer_start;
    size_t target, target_len, reason, reason_len;
    /* per execute() call */
    const char **spans;
    size_t *span_lens;
    int nspans, spans_cap;
    int head_ready, done, started, no_body, informational;
    int continued; /* a 100 (Continue) went by since the last look */
    char err[160];
} h1_parser;

static int fail(h1_parser *h, const char *fmt, size_t a, size_t b) {
    snprintf(h->err, sizeof h->err, fmt, a, b);
    llhttp_set_error_reason(&h->p, h->err);
    return HPE_USER;
}

static int buf_add(h1_parser *h, const char *at, size_t len) {
    if (h->buf_len + len > h->buf_cap) {
        size_t cap = h->buf_cap ? h->buf_cap : 1024;
        while (cap < h->buf_len + len)
            cap *= 2;
        char *nb = realloc(h->buf, cap);
        if (!nb) return fail(h, "out of memory%.0zu%.0zu", 0, 0);
        h->buf = nb;
        h->buf_cap = cap;
    }
    memcpy(h->buf + h->buf_len, at, len);
    h->buf_len += len;
    return 0;
}

/* ---- llhttp callbacks ---- */

static int on_message_begin(llhttp_t *p) {
    h1_parser *h = p->data;
    h->buf_len = 0;
    h->nfields = 0;
    h->line_len = 0;
    h->in_field = h->in_value = 0;
    h->started = 1;
    h->reason = h->reason_len = h->target = h->target_len = 0;
    return 0;
}

static int on_line_part(h1_parser *h, const char *at, size_t len, size_t *off, size_t *n) {
    h->line_len += len;
    if (h->line_len > h->max_line)
        return fail(h, "status or request line longer than max_line_size (%zu > %zu)", h->line_len,
                    h->max_line);
    if (*n == 0) *off = h->buf_len;
    *n += len;
    return buf_add(h, at, len);
}

static int on_status(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    return on_line_part(h, at, len, &h->reason, &h->reason_len);
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    return on_line_part(h, at, len, &h->target, &h->target_len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    if (!h->in_field) {
        if (h->nfields >= H1_MAX_HEADERS)
            return fail(h, "more than %zu header fields%.0zu", H1_MAX_HEADERS, 0);
        if (h->nfields >= h->fields_cap) {
            int cap = h->fields_cap ? h->fields_cap * 2 : 32;
            h1_field *nf = realloc(h->fields, (size_t)cap * sizeof *nf);
            if (!nf) return fail(h, "out of memory%.0zu%.0zu", 0, 0);
            h->fields = nf;
            h->fields_cap = cap;
        }
        h1_field *f = &h->fields[h->nfields];
        memset(f, 0, sizeof *f);
        f->name = h->buf_len;
        h->in_field = 1;
    }
    h1_field *f = &h->fields[h->nfields];
    f->name_len += len;
    if (f->name_len > h->max_field)
        return fail(h, "header name longer than max_field_size (%zu > %zu)", f->name_len,
                    h->max_field);
    return buf_add(h, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    h1_field *f = &h->fields[h->nfields];
    if (!h->in_value) {
        h->in_value = 1;
        f->value = h->buf_len;
    }
    f->value_len += len;
    if (f->name_len + f->value_len > h->max_field)
        return fail(h, "header field longer than max_field_size (%zu > %zu)",
                    f->name_len + f->value_len, h->max_field);
    return buf_add(h, at, len);
}

static int on_header_value_complete(llhttp_t *p) {
    h1_parser *h = p->data;
    if (!h->in_value) h->fields[h->nfields].value = h->buf_len;
    h->nfields++;
    h->in_field = h->in_value = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    h1_parser *h = p->data;
    int status = p->type == HTTP_RESPONSE ? p->status_code : 0;
    /* RFC 9110 15.2: interim responses are skipped; 101 ends the exchange. */
    h->informational = status >= 100 && status < 200 && status != 101;
    if (!h->informational) h->head_ready = 1;
    h->ntrailer_start = h->nfields;
    return h->no_body || h->informational ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    if (h->nspans == h->spans_cap) {
        int cap = h->spans_cap ? h->spans_cap * 2 : 8;
        const char **ns = realloc(h->spans, (size_t)cap * sizeof *ns);
        if (!ns) return fail(h, "out of memory%.0zu%.0zu", 0, 0);
        h->spans = ns;
        size_t *nl = realloc(h->span_lens, (size_t)cap * sizeof *nl);
        if (!nl) return fail(h, "out of memory%.0zu%.0zu", 0, 0);
        h->span_lens = nl;
        h->spans_cap = cap;
    }
    h->spans[h->nspans] = at;
    h->span_lens[h->nspans++] = len;
    return 0;
}

static int on_message_complete(llhttp_t *p) {
    h1_parser *h = p->data;
    if (h->informational) {
        h->informational = 0;
        h->started = 0;
        if (p->status_code == 100) h->continued = 1;
        return 0;
    }
    h->done = 1;
    return HPE_PAUSED;
}

/* Shared by every parser of every runtime: constant, so threads never race. */
static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- Lua API ---- */

static h1_parser *check_parser(lua_State *L) {
    return luaL_checkudata(L, 1, H1_MT);
}

/* h1_parser(kind, max_line, max_field): kind is "response" or "request". */
static int l_parser_new(lua_State *L) {
    const char *kind = luaL_checkstring(L, 1);
    int is_response = strcmp(kind, "response") == 0;
    luaL_argcheck(L, is_response || strcmp(kind, "request") == 0, 1,
                  "must be 'request' or 'response'");
    lua_Integer max_line = luaL_optinteger(L, 2, 8190);
    lua_Integer max_field = luaL_optinteger(L, 3, 8190);
    luaL_argcheck(L, max_line > 0, 2, "max_line_size must be > 0");
    luaL_argcheck(L, max_field > 0, 3, "max_field_size must be > 0");
    h1_parser *h = lua_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    luaL_getmetatable(L, H1_MT);
    lua_setmetatable(L, -2);
    h->max_line = (size_t)max_line;
    h->max_field = (size_t)max_field;
    llhttp_init(&h->p, is_response ? HTTP_RESPONSE : HTTP_REQUEST, &settings);
    h->p.data = h;
    return 1;
}

static void free_buffers(h1_parser *h) {
    free(h->buf);
    free(h->fields);
    free(h->spans);
    free(h->span_lens);
    h->buf = NULL;
    h->fields = NULL;
    h->spans = NULL;
    h->span_lens = NULL;
    h->buf_len = h->buf_cap = 0;
    h->nfields = h->fields_cap = h->nspans = h->spans_cap = 0;
}

static int parser_gc(lua_State *L) {
    free_buffers(check_parser(L));
    return 0;
}

/* parser:shrink(): give back the head and span buffers between messages
 * (a pooled connection keeps its parser; thousands of idle ones add up).
 * Only after the message was taken in full: head() and trailers() read them. */
static int parser_shrink(lua_State *L) {
    free_buffers(check_parser(L));
    return 0;
}

/* The body bytes of this execute() call. When they are the whole input
 * string (a large body arrives read after read), that string itself is
 * returned instead of a copy. */
static void push_body(lua_State *L, h1_parser *h, const char *whole, size_t whole_len) {
    if (h->nspans == 0) {
        lua_pushnil(L);
    } else if (h->nspans == 1 && h->spans[0] == whole && h->span_lens[0] == whole_len) {
        lua_pushvalue(L, 2);
    } else if (h->nspans == 1) {
        lua_pushlstring(L, h->spans[0], h->span_lens[0]);
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; i < h->nspans; i++)
            luaL_addlstring(&b, h->spans[i], h->span_lens[i]);
        luaL_pushresult(&b);
    }
    h->nspans = 0;
}

static int push_error(lua_State *L, h1_parser *h, llhttp_errno_t err) {
    lua_pushnil(L);
    lua_pushstring(L, llhttp_get_error_reason(&h->p));
    lua_pushstring(L, err == HPE_USER ? "HPE_LIMIT" : llhttp_errno_name(err));
    return 3;
}

/*
 * parser:execute(data[, pos]) -> consumed, head_ready, body, done
 * Feeds data from byte pos (1-based). Stops after a complete message so the
 * caller can decide what the following bytes mean. head_ready is true once
 * per message, when its head is available from parser:head(); body is the
 * body bytes seen in this call (or nil); done is true at the message end.
 * On a protocol error: nil, reason, "HPE_NAME" ("HPE_LIMIT" for size limits).
 */
static int parser_execute(lua_State *L) {
    h1_parser *h = check_parser(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    const char *whole = data;
    size_t whole_len = len;
    lua_Integer pos = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, pos >= 1 && (size_t)pos <= len + 1, 3, "out of range");
    data += pos - 1;
    len -= (size_t)(pos - 1);
    if (llhttp_get_errno(&h->p) == HPE_PAUSED) llhttp_resume(&h->p);
    h->head_ready = h->done = 0;
    h->nspans = 0;
    llhttp_errno_t err = llhttp_execute(&h->p, data, len);
    size_t consumed = len;
    if (err != HPE_OK) {
        /* A head or body bytes before the error are delivered first; llhttp
         * repeats the error on the next call, which gets the rest. */
        if (err != HPE_PAUSED && !h->head_ready && h->nspans == 0) return push_error(L, h, err);
        consumed = (size_t)(llhttp_get_error_pos(&h->p) - data);
    }
    lua_pushinteger(L, (lua_Integer)consumed);
    lua_pushboolean(L, h->head_ready);
    push_body(L, h, whole, whole_len);
    lua_pushboolean(L, h->done);
    if (h->done) h->started = 0;
    return 4;
}

/* parser:finish(): the peer closed. Returns true when that ended a message
 * (read-until-close body), false when no message was in progress, or nil,
 * reason, name when a message was cut short. */
static int parser_finish(lua_State *L) {
    h1_parser *h = check_parser(L);
    int started = h->started;
    h->done = 0;
    llhttp_errno_t err = llhttp_finish(&h->p);
    if (err != HPE_OK && err != HPE_PAUSED) return push_error(L, h, err);
    lua_pushboolean(L, started && h->done);
    return 1;
}

/* Two lists, names and values, in wire order (the shape lurl.headers keeps). */
static void push_fields(lua_State *L, h1_parser *h, int from, int to) {
    lua_createtable(L, to - from, 0);
    lua_createtable(L, to - from, 0);
    for (int i = from, n = 1; i < to; i++, n++) {
        h1_field *f = &h->fields[i];
        lua_pushlstring(L, h->buf + f->name, f->name_len);
        lua_rawseti(L, -3, n);
        lua_pushlstring(L, h->buf + f->value, f->value_len);
        lua_rawseti(L, -2, n);
    }
}

/* The start line's values: status, reason for a response; method, target for
 * a request; then major, minor. */
static void push_start(lua_State *L, h1_parser *h) {
    llhttp_t *p = &h->p;
    if (p->type == HTTP_RESPONSE) {
        lua_pushinteger(L, p->status_code);
        lua_pushlstring(L, h->buf + h->reason, h->reason_len);
    } else {
        lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->method));
        lua_pushlstring(L, h->buf + h->target, h->target_len);
    }
    lua_pushinteger(L, p->http_major);
    lua_pushinteger(L, p->http_minor);
}

/* parser:head() -> status, reason, major, minor, names, values, keep_alive
 * for a response; method, target, major, minor, names, values, keep_alive for
 * a request. names and values are lists in wire order. */
static int parser_head(lua_State *L) {
    h1_parser *h = check_parser(L);
    push_start(L, h);
    push_fields(L, h, 0, h->ntrailer_start);
    lua_pushboolean(L, llhttp_should_keep_alive(&h->p));
    return 7;
}

static int is_field(const h1_parser *h, const h1_field *f, const char *name, size_t len) {
    return f->name_len == len && strncasecmp(h->buf + f->name, name, len) == 0;
}

/* The Content-Encoding fields as one list ("gzip, br"), or nil. */
static void push_content_encoding(lua_State *L, const h1_parser *h) {
    luaL_Buffer b;
    int n = 0;
    luaL_buffinit(L, &b);
    for (int i = 0; i < h->ntrailer_start; i++) {
        const h1_field *f = &h->fields[i];
        if (!is_field(h, f, "content-encoding", 16)) continue;
        if (n++) luaL_addlstring(&b, ", ", 2);
        luaL_addlstring(&b, h->buf + f->value, f->value_len);
    }
    luaL_pushresult(&b);
    if (!n) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* parser:head_block() -> the same as head() but the fields come as one
 * string "Name: value\r\n..." (in place of names, values): one string to
 * make instead of two per field, for callers that may never look at them;
 * then keep_alive, whether a Set-Cookie field is among them, and the
 * Content-Encoding (so that neither the cookie jar nor the decoders need
 * the fields of every response). */
static int parser_head_block(lua_State *L) {
    h1_parser *h = check_parser(L);
    push_start(L, h);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int cookies = 0;
    for (int i = 0; i < h->ntrailer_start; i++) {
        h1_field *f = &h->fields[i];
        cookies |= is_field(h, f, "set-cookie", 10);
        luaL_addlstring(&b, h->buf + f->name, f->name_len);
        luaL_addlstring(&b, ": ", 2);
        luaL_addlstring(&b, h->buf + f->value, f->value_len);
        luaL_addlstring(&b, "\r\n", 2);
    }
    luaL_pushresult(&b);
    lua_pushboolean(L, llhttp_should_keep_alive(&h->p));
    lua_pushboolean(L, cookies);
    push_content_encoding(L, h);
    return 8;
}

/* parser:trailers() -> names, values of the trailer fields (empty lists
 * when none). */
static int parser_trailers(lua_State *L) {
    h1_parser *h = check_parser(L);
    push_fields(L, h, h->ntrailer_start, h->nfields);
    return 2;
}

/* parser:reset([no_body]): ready for the next message; no_body is true when
 * the request was HEAD (RFC 9110 9.3.2: the response has no content). */
static int parser_reset(lua_State *L) {
    h1_parser *h = check_parser(L);
    llhttp_reset(&h->p);
    h->no_body = lua_toboolean(L, 2);
    h->started = h->done = h->head_ready = h->continued = 0;
    return 0;
}

/* parser:continued() -> whether a 100 (Continue) was skipped since the last
 * call: what a request sent with Expect: 100-continue waits for (RFC 9110
 * section 10.1.1). */
static int parser_continued(lua_State *L) {
    h1_parser *h = check_parser(L);
    lua_pushboolean(L, h->continued);
    h->continued = 0;
    return 1;
}

/* parser:started(): whether any byte of the current message was seen. */
static int parser_started(lua_State *L) {
    lua_pushboolean(L, check_parser(L)->started);
    return 1;
}

/* ---- head encoder ---- */

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *bad_token(const char *s, size_t n) {
    if (n == 0) return "is empty";
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return "has a character not allowed in a token";
    return NULL;
}

static const char *bad_value(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') return "contains CR or LF";
        if (c == 0) return "contains a NUL byte";
    }
    return NULL;
}

/* The first problem with the fields list, as "header NAME: why", or NULL. */
static const char *check_fields(lua_State *L, int n) {
    for (int i = 1; i + 1 <= n; i += 2) {
        lua_rawgeti(L, 2, i);
        lua_rawgeti(L, 2, i + 1);
        size_t nl, vl;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nl) : NULL;
        const char *value = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &vl) : NULL;
        const char *why = NULL;
        if (!name || !value)
            why = "name and value must be strings";
        else if ((why = bad_token(name, nl)) != NULL)
            why = lua_pushfstring(L, "name %s", why);
        else if ((why = bad_value(value, vl)) != NULL)
            why = lua_pushfstring(L, "value %s", why);
        if (why) return lua_pushfstring(L, "header %s: %s", name ? name : "?", why);
        lua_pop(L, 2);
    }
    return NULL;
}

/*
 * h1_encode(line, fields[, body]) -> bytes, or nil and a message naming the
 * culprit. line is the start line without CRLF; fields a flat name/value list.
 * Names must be tokens and values free of CR, LF and NUL (RFC 9110 5.1, 5.5),
 * so no caller can smuggle a header or a second message.
 */
static int l_h1_encode(lua_State *L) {
    size_t llen;
    const char *line = luaL_checklstring(L, 1, &llen);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)lua_objlen(L, 2);
    const char *why =
        bad_value(line, llen) ? "start line contains CR, LF or NUL" : check_fields(L, n);
    if (why) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, line, llen);
    luaL_addlstring(&b, "\r\n", 2);
    for (int i = 1; i + 1 <= n; i += 2) {
        size_t nl, vl;
        /* Strings stay referenced by the list, so their pointers outlive the
         * pop that keeps the buffer at the top of the stack. */
        lua_rawgeti(L, 2, i);
        const char *name = lua_tolstring(L, -1, &nl);
        lua_pop(L, 1);
        lua_rawgeti(L, 2, i + 1);
        const char *value = lua_tolstring(L, -1, &vl);
        lua_pop(L, 1);
        luaL_addlstring(&b, name, nl);
        luaL_addlstring(&b, ": ", 2);
        luaL_addlstring(&b, value, vl);
        luaL_addlstring(&b, "\r\n", 2);
    }
    luaL_addlstring(&b, "\r\n", 2);
    if (lua_type(L, 3) == LUA_TSTRING) {
        size_t bl;
        const char *body = lua_tolstring(L, 3, &bl);
        luaL_addlstring(&b, body, bl);
    }
    luaL_pushresult(&b);
    return 1;
}

int rt_open_h1(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"execute", parser_execute},     {"finish", parser_finish},
        {"head", parser_head},           {"trailers", parser_trailers},
        {"reset", parser_reset},         {"head_block", parser_head_block},
        {"shrink", parser_shrink},       {"started", parser_started},
        {"continued", parser_continued}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", parser_gc}, {NULL, NULL}};
    rt_new_class(L, H1_MT, methods, meta);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, l_parser_new);
    lua_setfield(L, -2, "parser");
    lua_pushcfunction(L, l_h1_encode);
    lua_setfield(L, -2, "encode");
    return 1;
}
