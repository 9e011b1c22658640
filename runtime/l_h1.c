/* lurl.core HTTP/1.1: llhttp-based message parser and the request/response
 * head encoder. The parser collects a whole head in C and hands it to Lua in
 * one call; body bytes of one execute() come back as one string.
 *
 * llhttp 8.1 (Debian 12) lets some malformed heads through: a status code of
 * one or four digits, a bare CR, a NUL, a space in a header name, an empty
 * name, transfer codings a client cannot undo. A response parser refuses those
 * here, as curl does, so that no caller is handed a wrong answer. */
#include <stdint.h>
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

/* The raw bytes of a head, checked as they go to llhttp (RFC 9112 section
 * 2.2: a bare CR is invalid; section 4: a status code is three digits). */
enum {
    SCAN_LEAD,
    SCAN_VERSION,
    SCAN_STATUS,
    SCAN_START_REST,
    SCAN_FIRST_FIELD,
    SCAN_LINE,
    SCAN_LINE_START,
    SCAN_DONE
};

typedef struct {
    int state, digits, cr;
} head_scan;

typedef struct {
    llhttp_t p;
    head_scan scan;
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
    int upgrade;    /* the request asked for an upgrade: a 101 ends the HTTP/1.1 part */
    int continued;  /* a 100 (Continue) went by since the last look */
    int interim;    /* an interim (1xx) response just ended: scan the next head */
    int keep_alive; /* as the head said: trailers do not change it (RFC 9110 6.5.1) */
    int in_trailers;
    const char *bad_head; /* why the head was refused (sticky), or NULL */
    const char *err_name; /* the error name of an HPE_USER */
    char err[160];
} h1_parser;

static int fail(h1_parser *h, const char *fmt, size_t a, size_t b) {
    snprintf(h->err, sizeof h->err, fmt, a, b);
    llhttp_set_error_reason(&h->p, h->err);
    h->err_name = "HPE_LIMIT";
    return HPE_USER;
}

/* A head llhttp accepted but a client must not: llhttp replaces a
 * callback's reason with its own, so the reason stays here. */
static int refuse(h1_parser *h, const char *why) {
    h->bad_head = why;
    return -1;
}

static int buf_add(h1_parser *h, const char *at, size_t len) {
    if (len == 0) return 0;
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

/* RFC 9110 section 5.6.2: tchar is !#$%&'*+-.^_`|~, digits and letters;
 * as a bitmap of the ASCII codes, since every field name goes through it. */
static int is_tchar(unsigned char c) {
    static const uint64_t map[2] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL};
    return c < 128 && (map[c >> 6] >> (c & 63) & 1);
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

/* Bytes of the head at off: buf is NULL while nothing was kept, and even a
 * zero offset from NULL is undefined behaviour. */
static const char *at(const h1_parser *h, size_t off) {
    return h->buf ? h->buf + off : "";
}

static int is_field(const h1_parser *h, const h1_field *f, const char *name, size_t len) {
    return f->name_len == len && strncasecmp(at(h, f->name), name, len) == 0;
}

/* ---- checks llhttp 8.1 leaves out ---- */

/* Feed head bytes to the scanner until the head's empty line; returns the
 * reason a response head is malformed, or NULL. */
static const char *scan_head(h1_parser *h, const char *p, size_t n) {
    head_scan *s = &h->scan;
    int response = h->p.type == HTTP_RESPONSE;
    for (size_t i = 0; i < n && s->state != SCAN_DONE; i++) {
        /* most head bytes are printable text inside a line: skip them fast */
        if ((s->state == SCAN_LINE || s->state == SCAN_START_REST) && !s->cr)
            while (i < n && (unsigned char)p[i] > '\r')
                i++;
        if (i == n) break;
        unsigned char c = (unsigned char)p[i];
        if (s->cr && c != '\n') return "bare CR in the response head";
        if (c == 0) return "NUL byte in the response head"; /* RFC 9110 section 5.5 */
        s->cr = c == '\r';
        if (s->cr) continue;
        switch (s->state) {
        case SCAN_LEAD: /* RFC 9112 section 2.2: empty lines before a message */
            if (c != '\n') s->state = response ? SCAN_VERSION : SCAN_START_REST;
            break;
        case SCAN_VERSION:
            if (c == ' ') s->state = SCAN_STATUS;
            if (c == '\n') s->state = SCAN_FIRST_FIELD;
            break;
        case SCAN_STATUS:
            if (c >= '0' && c <= '9' && ++s->digits <= 3) break;
            if (s->digits != 3 || (c != ' ' && c != '\n'))
                return "the status code is not three digits";
            s->state = c == '\n' ? SCAN_FIRST_FIELD : SCAN_START_REST;
            break;
        case SCAN_START_REST:
            if (c == '\n') s->state = SCAN_FIRST_FIELD;
            break;
        case SCAN_FIRST_FIELD: /* RFC 9112 section 2.2: no whitespace before it */
            if (c == ' ' || c == '\t')
                return "whitespace between the start line and the first field";
            s->state = c == '\n' ? SCAN_DONE : SCAN_LINE;
            break;
        case SCAN_LINE:
            if (c == '\n') s->state = SCAN_LINE_START;
            break;
        case SCAN_LINE_START:
            s->state = c == '\n' ? SCAN_DONE : SCAN_LINE;
            break;
        }
    }
    return NULL;
}

static void scan_reset(h1_parser *h) {
    memset(&h->scan, 0, sizeof h->scan);
}

/* RFC 9112 section 6.1: a client undoes no transfer coding but chunked,
 * which comes once and last; with anything else the body's length and
 * meaning are unknown (curl refuses these too). */
static const char *bad_transfer_coding(h1_parser *h) {
    int chunked = 0;
    for (int i = 0; i < h->nfields; i++) {
        const h1_field *f = &h->fields[i];
        if (!is_field(h, f, "transfer-encoding", 17)) continue;
        const char *v = at(h, f->value), *end = v + f->value_len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *a = v, *b = comma ? comma : end;
            v = b + 1;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            if (a == b) continue; /* RFC 9110 section 5.6.1: empty list elements */
            if (chunked) return "a transfer coding follows chunked";
            if (b - a != 7 || strncasecmp(a, "chunked", 7) != 0) {
                snprintf(h->err, sizeof h->err,
                         "transfer coding '%.*s' is not supported (only chunked)",
                         (int)(b - a > 40 ? 40 : b - a), a);
                return h->err;
            }
            chunked = 1;
        }
    }
    return NULL;
}

/* ---- llhttp callbacks ---- */

static int on_message_begin(llhttp_t *p) {
    h1_parser *h = p->data;
    h->buf_len = 0;
    h->nfields = 0;
    h->line_len = 0;
    h->in_field = h->in_value = h->in_trailers = 0;
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

/* RFC 9110 section 5.1: a field name is a token; RFC 9112 section 5.1: no
 * whitespace before the colon. */
static int on_header_field_complete(llhttp_t *p) {
    h1_parser *h = p->data;
    if (!h->in_field) return refuse(h, "empty header name");
    h1_field *f = &h->fields[h->nfields];
    const char *why = bad_token(at(h, f->name), f->name_len);
    if (!why) return 0;
    char name[61];
    size_t n = f->name_len < sizeof name - 1 ? f->name_len : sizeof name - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h->buf[f->name + i];
        name[i] = c < 0x20 || c > 0x7e ? '?' : (char)c;
    }
    name[n] = 0;
    snprintf(h->err, sizeof h->err, "header name '%s' %s", name, why);
    return refuse(h, h->err);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    h1_parser *h = p->data;
    if (!h->in_field) return refuse(h, "empty header name");
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
    if (!h->in_field) return refuse(h, "empty header name");
    h1_field *f = &h->fields[h->nfields];
    if (!h->in_value) f->value = h->buf_len;
    /* RFC 9110 section 5.5: no CR or NUL in a value; the scanner sees a
     * head's bytes, not the trailers' */
    if (h->in_trailers && bad_value(at(h, f->value), f->value_len))
        return refuse(h, "a trailer field value holds CR, LF or NUL");
    h->nfields++;
    h->in_field = h->in_value = 0;
    return 0;
}

/* RFC 9110 sections 6.4.1, 15.3.5 and 15.4.5: no body after HEAD, 1xx, 204
 * and 304, whatever Content-Length or Transfer-Encoding say. */
static int has_no_body(const h1_parser *h, int status) {
    return h->no_body || h->informational || status == 204 || status == 304;
}

static int on_headers_complete(llhttp_t *p) {
    h1_parser *h = p->data;
    h->ntrailer_start = h->nfields;
    h->in_trailers = 1;
    h->keep_alive = llhttp_should_keep_alive(p);
    if (p->type == HTTP_REQUEST) {
        h->head_ready = 1;
        return h->no_body;
    }
    int status = p->status_code;
    /* RFC 9110 section 15.2.2: a switch is only ever an answer to an Upgrade
     * the client sent; what follows is not HTTP/1.1, so it is not read */
    if (status == 101) {
        if (!h->upgrade)
            return refuse(h, "101 Switching Protocols to a request that asked for no upgrade");
        h->head_ready = 1;
        return 1;
    }
    /* RFC 9110 section 15: the first digit is the class, 1 to 5 defined */
    if (status < 100) return refuse(h, "the status code is below 100");
    const char *why = bad_transfer_coding(h);
    if (why) return refuse(h, why);
    /* RFC 9110 section 15.2: interim responses are skipped */
    h->informational = status < 200;
    if (!h->informational) h->head_ready = 1;
    return has_no_body(h, status);
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
    /* both pause, so that execute() scans the next head from where it starts */
    scan_reset(h);
    if (h->informational) {
        h->informational = 0;
        h->started = 0;
        h->interim = 1;
        if (p->status_code == 100) h->continued = 1;
        return HPE_PAUSED;
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
    .on_header_field_complete = on_header_field_complete,
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
    /* RFC 9112 section 2.2: a recipient may take a bare LF as a line end,
     * as aiohttp and curl do; llhttp 8.1 allows it only in its lenient
     * header mode, whose other leniencies (CR, NUL) the scanner refuses. */
    if (is_response) llhttp_set_lenient_headers(&h->p, 1);
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
    lua_pushstring(L, err == HPE_USER ? h->err_name : llhttp_errno_name(err));
    return 3;
}

static int push_bad_head(lua_State *L, h1_parser *h) {
    lua_pushnil(L);
    lua_pushstring(L, h->bad_head);
    lua_pushstring(L, "HPE_INVALID_HEADER");
    return 3;
}

/* llhttp over data, the scanner first over each head's bytes: an interim
 * response pauses llhttp, so the next head is scanned from its start.
 * *consumed: the bytes taken, up to the end of a complete message. */
static llhttp_errno_t run(h1_parser *h, const char *data, size_t len, size_t *consumed) {
    size_t off = 0;
    llhttp_errno_t err;
    for (;;) {
        if (h->scan.state != SCAN_DONE) h->bad_head = scan_head(h, data + off, len - off);
        if (h->bad_head) {
            *consumed = off;
            return HPE_USER;
        }
        err = llhttp_execute(&h->p, data + off, len - off);
        if (err != HPE_PAUSED || !h->interim) break;
        h->interim = 0;
        off = (size_t)(llhttp_get_error_pos(&h->p) - data);
        llhttp_resume(&h->p);
    }
    *consumed = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&h->p) - data);
    return err;
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
    if (h->bad_head) return push_bad_head(L, h);
    if (llhttp_get_errno(&h->p) == HPE_PAUSED) llhttp_resume(&h->p);
    h->head_ready = h->done = 0;
    h->nspans = 0;
    size_t consumed;
    llhttp_errno_t err = run(h, data, len, &consumed);
    /* A head or body bytes before an error are delivered first; the error
     * comes again on the next call (or finish()), which gets the rest. */
    int delivered = h->head_ready || h->nspans;
    if (h->bad_head && !delivered) return push_bad_head(L, h);
    if (err != HPE_OK && err != HPE_PAUSED && !delivered) return push_error(L, h, err);
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
    if (h->bad_head) return push_bad_head(L, h);
    /* an error execute() held back while it delivered what came before */
    llhttp_errno_t pending = llhttp_get_errno(&h->p);
    if (pending != HPE_OK && pending != HPE_PAUSED) return push_error(L, h, pending);
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
        lua_pushlstring(L, at(h, f->name), f->name_len);
        lua_rawseti(L, -3, n);
        lua_pushlstring(L, at(h, f->value), f->value_len);
        lua_rawseti(L, -2, n);
    }
}

/* The start line's values: status, reason for a response; method, target for
 * a request; then major, minor. */
static void push_start(lua_State *L, h1_parser *h) {
    llhttp_t *p = &h->p;
    if (p->type == HTTP_RESPONSE) {
        lua_pushinteger(L, p->status_code);
        lua_pushlstring(L, at(h, h->reason), h->reason_len);
    } else {
        lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->method));
        lua_pushlstring(L, at(h, h->target), h->target_len);
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
    lua_pushboolean(L, h->keep_alive);
    return 7;
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
        luaL_addlstring(&b, at(h, f->value), f->value_len);
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
        luaL_addlstring(&b, at(h, f->name), f->name_len);
        luaL_addlstring(&b, ": ", 2);
        luaL_addlstring(&b, at(h, f->value), f->value_len);
        luaL_addlstring(&b, "\r\n", 2);
    }
    luaL_pushresult(&b);
    lua_pushboolean(L, h->keep_alive);
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

/* parser:reset([no_body[, upgrade]]): ready for the next message; no_body is
 * true when the request was HEAD (RFC 9110 9.3.2: the response has no
 * content), upgrade when it asked for one (a 101 then ends the message, and
 * the bytes after its head belong to the new protocol). */
static int parser_reset(lua_State *L) {
    h1_parser *h = check_parser(L);
    llhttp_reset(&h->p);
    scan_reset(h);
    h->bad_head = NULL;
    h->no_body = lua_toboolean(L, 2);
    h->upgrade = lua_toboolean(L, 3);
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
