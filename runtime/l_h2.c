/* core.h2: one HTTP/2 connection (RFC 9113) as libnghttp2 keeps it, in
 * memory mode: the caller moves the bytes (recv what the socket read, pull
 * what to write), nghttp2 does the framing, HPACK, flow control and the
 * stream states, and what happened comes back as a queue of events. It is
 * mechanism only: the pool, retries and errors for the script are
 * lua/lurl's.
 *
 * Flow control follows the script: nghttp2 sends WINDOW_UPDATE only for the
 * body bytes the script says it has taken (consume), so a slow reader holds
 * at most its stream's window and the connection's. Every data event's
 * bytes must be consumed, even those of a stream the script dropped.
 *
 * Every call that can make frames (recv and the submits) serializes them at
 * once into one output buffer that pull hands over: a connection error
 * nghttp2 found in what recv fed shows as the GOAWAY it sends (RFC 9113
 * 5.4.1), which recv reports as its failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2_head.h"
#include "rt.h"

#define H2_MT "lurl.h2_session"
/* What the output and header buffers keep between calls; a burst gives
 * the rest back. */
#define H2_OUT_KEEP ((size_t)1 << 16)
#define H2_HDR_KEEP ((size_t)1 << 14)
#define H2_MAX_WINDOW 2147483647 /* RFC 9113 6.9.1: 2^31 - 1 */
/* The environment table's slot: the event queue. */
enum { ENV_EVENTS = 1 };

/* A stream this side knows: a request it sent, or one a client opened. */
typedef struct h2_stream {
    int32_t sid;
    rt_buf out;           /* body bytes waiting for the peer's window... */
    size_t off;           /* ...from here on */
    int provider;         /* the head left the stream open: read_body sends the body */
    int eof;              /* the body ends after out */
    int deferred;         /* read_body waits for data (nghttp2_session_resume_data) */
    nghttp2_nv *trailers; /* sent after the body (one block with their bytes) */
    size_t ntrailers;
    const char *why; /* this side closed the stream itself: the reason's ename */
    struct h2_stream *prev, *next;
} h2_stream;

typedef struct {
    nghttp2_session *s;
    lua_State *L; /* during a method: the caller's state, where callbacks queue */
    int ev;       /* during a method: the stack index of the queue */
    int qhead, qtail;
    int server;
    int in_recv;            /* a GOAWAY sent now is nghttp2 failing the connection */
    int32_t data_sid;       /* the stream whose body bytes wait in data, or 0 */
    int settings_seen;      /* the peer's max_concurrent_streams was reported */
    uint32_t peer_max;      /* ... as this */
    size_t max_header_list; /* this side's SETTINGS_MAX_HEADER_LIST_SIZE */
    h2_head head;           /* the header block being received */
    rt_buf data;            /* body bytes of one stream, not yet an event */
    rt_buf out;             /* frames to send */
    rt_buf nv;              /* a header list to submit */
    h2_stream *list;
    int nstreams;
    char fail_ename[48]; /* the connection failed: why (sticky) */
    char fail_msg[256];
    char last_err[160]; /* nghttp2's last complaint, for a GOAWAY without a reason */
} h2_session;

/* ---- failures ---- */

/* The connection failed: "ENAME: why" (why is n bytes). */
static void set_failure(h2_session *h, const char *ename, const char *why, size_t n) {
    snprintf(h->fail_ename, sizeof h->fail_ename, "%s", ename);
    snprintf(h->fail_msg, sizeof h->fail_msg, "%s: %.*s", ename, (int)n, why);
}

/* ... with this RFC 9113 section 7 error code. */
static void fail_code(h2_session *h, uint32_t code, const char *why, size_t n) {
    char ename[48];
    snprintf(ename, sizeof ename, "H2_%s", nghttp2_http2_strerror(code));
    set_failure(h, ename, why, n);
}

/* nghttp2 returned a fatal error. */
static void fail_lib(h2_session *h, int rv) {
    const char *why = nghttp2_strerror(rv);
    switch (rv) {
    case NGHTTP2_ERR_NOMEM:
    case NGHTTP2_ERR_CALLBACK_FAILURE: /* the callbacks fail only for memory */
        why = "out of memory in HTTP/2";
        set_failure(h, "ENOMEM", why, strlen(why));
        return;
    case NGHTTP2_ERR_FLOODED:
        why = "the peer sent more frames to acknowledge (PING, SETTINGS) than it reads back";
        /* fall through */
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        fail_code(h, NGHTTP2_ENHANCE_YOUR_CALM, why, strlen(why));
        return;
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
        why = "not an HTTP/2 client connection preface (RFC 9113 3.4)";
        /* fall through */
    default:
        fail_code(h, NGHTTP2_PROTOCOL_ERROR, why, strlen(why));
    }
}

/* nil, message, ename of the failed connection. */
static int push_failure(lua_State *L, const h2_session *h) {
    lua_pushnil(L);
    lua_pushstring(L, h->fail_msg);
    lua_pushstring(L, h->fail_ename);
    return 3;
}

static int push_error(lua_State *L, const char *ename, const char *msg) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", ename, msg);
    lua_pushstring(L, ename);
    return 3;
}

/* ---- events ---- */

static void event_table(h2_session *h, const char *kind, int n) {
    lua_createtable(h->L, n, 0);
    lua_pushstring(h->L, kind);
    lua_rawseti(h->L, -2, 1);
}

static void set_int(lua_State *L, int i, lua_Number v) {
    lua_pushnumber(L, v);
    lua_rawseti(L, -2, i);
}

/* Queue the event on top of the stack. */
static void queue(h2_session *h) {
    lua_rawseti(h->L, h->ev, ++h->qtail);
}

/* { "data", sid, bytes, end_stream }: the body bytes that came for a
 * stream, DATA frame after DATA frame, until another event or the end of
 * recv. A server sends a body in frames of its own size (nginx: 8 KiB);
 * an event a frame cost Lua a string and a table for each. */
static void flush_data(h2_session *h, int end_stream) {
    if (!h->data_sid) return;
    event_table(h, "data", 4);
    set_int(h->L, 2, h->data_sid);
    lua_pushlstring(h->L, h->data.p ? h->data.p : "", h->data.len);
    lua_rawseti(h->L, -2, 3);
    lua_pushboolean(h->L, end_stream);
    lua_rawseti(h->L, -2, 4);
    queue(h);
    h->data_sid = 0;
    rt_buf_release(&h->data, H2_OUT_KEEP);
}

/* Body bytes wait for sid now (those of another stream become its event). */
static void data_for(h2_session *h, int32_t sid) {
    if (h->data_sid == sid) return;
    flush_data(h, 0);
    h->data_sid = sid;
}

/* A new event table { kind, ... } on top of the stack, after the body
 * bytes that came before it. */
static void new_event(h2_session *h, const char *kind, int n) {
    flush_data(h, 0);
    event_table(h, kind, n);
}

/* ---- streams ---- */

/* A stream is nghttp2's user data from its HEADERS on (a client's request
 * gives it to nghttp2_submit_request, a server sets it as the peer's
 * HEADERS begin); a request not sent yet (queued, or refused unsent by a
 * GOAWAY) is found in the list. A map of its own keyed by stream id would
 * take a new key for every request. */
static h2_stream *find(h2_session *h, int32_t sid) {
    h2_stream *r = nghttp2_session_get_stream_user_data(h->s, sid);
    if (r) return r;
    for (r = h->list; r; r = r->next)
        if (r->sid == sid) return r;
    return NULL;
}

static void link_stream(h2_session *h, h2_stream *r, int32_t sid) {
    r->sid = sid;
    r->next = h->list;
    if (h->list) h->list->prev = r;
    h->list = r;
    h->nstreams++;
}

static void free_stream(h2_session *h, h2_stream *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        h->list = r->next;
    if (r->next) r->next->prev = r->prev;
    h->nstreams--;
    rt_buf_release(&r->out, 0);
    free(r->trailers);
    free(r);
}

/* The stream is over: { "close", sid, error_code[, why] }. */
static void close_stream(h2_session *h, h2_stream *r, uint32_t code) {
    new_event(h, "close", 4);
    set_int(h->L, 2, r->sid);
    set_int(h->L, 3, code);
    if (r->why) {
        lua_pushstring(h->L, r->why);
        lua_rawseti(h->L, -2, 4);
    }
    queue(h);
    /* nghttp2 may still hold the stream (a request it never sent): it must
     * not lead to the record after this */
    nghttp2_session_set_stream_user_data(h->s, r->sid, NULL);
    free_stream(h, r);
}

/* ---- nghttp2's callbacks (all run inside a method: h->L is the caller) ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
    (void)s;
    h2_session *h = ud;
    h2_head_begin(&h->head);
    if (!h->server || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_stream *r = calloc(1, sizeof *r);
    if (!r) return NGHTTP2_ERR_CALLBACK_FAILURE;
    link_stream(h, r, f->hd.stream_id);
    return nghttp2_session_set_stream_user_data(s, f->hd.stream_id, r)
               ? NGHTTP2_ERR_CALLBACK_FAILURE
               : 0;
}

/* A header list over this side's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113
 * 6.5.2, 10.5.1) ends its stream: what HPACK can expand from a few bytes
 * is never held. */
static int refuse_headers(h2_session *h, int32_t sid) {
    h2_stream *r = find(h, sid);
    if (r) r->why = "H2_HEADER_LIST_TOO_LARGE";
    if (nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_ENHANCE_YOUR_CALM))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
    (void)s;
    (void)flags;
    h2_session *h = ud;
    size_t add = namelen + valuelen + H2_FIELD_OVERHEAD;
    if (add > h->max_header_list - h->head.size) return refuse_headers(h, f->hd.stream_id);
    return h2_head_add(&h->head, name, namelen, value, valuelen) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* What a header block is: a request (server), a 1xx, the final response,
 * or trailers (RFC 9113 8.1). */
static const char *head_kind(const h2_session *h, const nghttp2_frame *f) {
    if (h->server) return f->headers.cat == NGHTTP2_HCAT_REQUEST ? "request" : "trailers";
    if (!h->head.status) return "trailers";
    return h->head.status < 200 ? "informational" : "response";
}

/* { "headers", sid, ..., end_stream, kind, ... }: the block as its side
 * takes it (h2_head_push). */
static void push_headers(h2_session *h, const nghttp2_frame *f) {
    lua_State *L = h->L;
    new_event(h, "headers", h->server ? 6 : 10);
    set_int(L, 2, f->hd.stream_id);
    h2_head_push(&h->head, L, H2_HDR_KEEP);
    lua_pushboolean(L, f->hd.flags & NGHTTP2_FLAG_END_STREAM);
    lua_rawseti(L, -2, 5);
    lua_pushstring(L, head_kind(h, f));
    lua_rawseti(L, -2, 6);
    queue(h);
}

/* END_STREAM on a DATA frame: its data event says so (an empty one when
 * no bytes wait). */
static void end_data(h2_session *h, int32_t sid) {
    data_for(h, sid);
    flush_data(h, 1);
}

/* { "settings", max_concurrent_streams } when the peer's limit changed. */
static void push_settings(h2_session *h) {
    uint32_t n = nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (h->settings_seen && n == h->peer_max) return;
    h->settings_seen = 1;
    h->peer_max = n;
    new_event(h, "settings", 2);
    set_int(h->L, 2, n);
    queue(h);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
    (void)s;
    h2_session *h = ud;
    switch (f->hd.type) {
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) end_data(h, f->hd.stream_id);
        break;
    case NGHTTP2_HEADERS:
        push_headers(h, f);
        break;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) push_settings(h);
        break;
    case NGHTTP2_GOAWAY:
        /* nghttp2 closes the streams above last_stream_id after this
         * callback, with REFUSED_STREAM (RFC 9113 6.8: never processed) */
        new_event(h, "goaway", 3);
        set_int(h->L, 2, f->goaway.last_stream_id);
        set_int(h->L, 3, f->goaway.error_code);
        queue(h);
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            new_event(h, "pong", 1);
            queue(h);
        }
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud) {
    (void)s;
    (void)flags;
    h2_session *h = ud;
    data_for(h, sid);
    return rt_buf_append(&h->data, data, len) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud) {
    (void)s;
    h2_session *h = ud;
    h2_stream *r = find(h, sid);
    if (r) close_stream(h, r, code);
    return 0;
}

/* A request that never went out: nghttp2 opened no stream, so no close
 * callback comes. After a GOAWAY it was refused unprocessed (RFC 9113 6.8),
 * safe to send again elsewhere. */
static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *ud) {
    (void)s;
    h2_session *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_stream *r = find(h, f->hd.stream_id);
    if (!r) return 0;
    int refused = lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED;
    if (!refused)
        r->why =
            lib_error == NGHTTP2_ERR_FRAME_SIZE_ERROR ? "H2_HEADER_LIST_TOO_LARGE" : "H2_NOT_SENT";
    close_stream(h, r, refused ? NGHTTP2_REFUSED_STREAM : NGHTTP2_INTERNAL_ERROR);
    return 0;
}

/* A GOAWAY with an error that recv's input made nghttp2 send: the
 * connection failed (RFC 9113 5.4.1); its debug data says why. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
    (void)s;
    h2_session *h = ud;
    if (f->hd.type != NGHTTP2_GOAWAY || !h->in_recv || !f->goaway.error_code || h->fail_ename[0])
        return 0;
    const char *why = (const char *)f->goaway.opaque_data;
    size_t n = f->goaway.opaque_data_len;
    if (!n) {
        why = h->last_err;
        n = strlen(why);
    }
    fail_code(h, f->goaway.error_code, why, n);
    return 0;
}

static int on_error(nghttp2_session *s, int lib_error, const char *msg, size_t len, void *ud) {
    (void)s;
    (void)lib_error;
    h2_session *h = ud;
    snprintf(h->last_err, sizeof h->last_err, "%.*s", (int)len, msg);
    return 0;
}

/* The body of a stream from what h:data queued, as the windows allow. */
static ssize_t read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
    (void)ud;
    h2_stream *r = src->ptr;
    size_t avail = r->out.len - r->off, n = avail < length ? avail : length;
    if (n) memcpy(buf, r->out.p + r->off, n);
    r->off += n;
    if (r->off < r->out.len) return (ssize_t)n;
    r->off = 0;
    rt_buf_release(&r->out, 0);
    if (!r->eof) {
        if (n) return (ssize_t)n;
        r->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (r->trailers) {
        /* nghttp2 sends the trailers' HEADERS after this DATA, with
         * END_STREAM (RFC 9113 8.1) */
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        int rv = nghttp2_submit_trailer(s, sid, r->trailers, r->ntrailers);
        free(r->trailers);
        r->trailers = NULL;
        if (rv) return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* ---- the output ---- */

/* Serialize every frame nghttp2 has ready into h->out. */
static int drain(h2_session *h) {
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->s, &p);
        if (n <= 0) return (int)n;
        if (rt_buf_reserve(&h->out, (size_t)n, SIZE_MAX)) return NGHTTP2_ERR_NOMEM;
        memcpy(h->out.p + h->out.len, p, (size_t)n);
        h->out.len += (size_t)n;
    }
}

/* After a submit that returned rv: the frames out, then true or the failure. */
static int settle(lua_State *L, h2_session *h, int rv) {
    if (rv == 0) rv = drain(h);
    if (rv && nghttp2_is_fatal(rv)) fail_lib(h, rv);
    if (h->fail_ename[0]) return push_failure(L, h);
    if (rv) return push_error(L, "H2_INTERNAL_ERROR", nghttp2_strerror(rv));
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- methods ---- */

/* The session at 1, bound to this call: its queue is pushed, for the
 * callbacks. */
static h2_session *enter(lua_State *L) {
    h2_session *h = luaL_checkudata(L, 1, H2_MT);
    if (!h->s) luaL_argerror(L, 1, "HTTP/2 session is closed");
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, ENV_EVENTS);
    h->L = L;
    h->ev = lua_gettop(L);
    return h;
}

static int32_t check_sid(lua_State *L, int idx) {
    lua_Integer sid = luaL_checkinteger(L, idx);
    luaL_argcheck(L, sid > 0 && sid <= H2_MAX_WINDOW, idx, "stream id expected");
    return (int32_t)sid;
}

static uint32_t check_code(lua_State *L, int idx) {
    lua_Number c = luaL_optnumber(L, idx, NGHTTP2_NO_ERROR);
    luaL_argcheck(L, c >= 0 && c <= 4294967295.0 && c == (uint32_t)c, idx, "error code expected");
    return (uint32_t)c;
}

/* recv(bytes) -> true, or nil, message, ename once the connection failed. */
static int l_recv(lua_State *L) {
    h2_session *h = enter(L);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    if (h->fail_ename[0]) return push_failure(L, h);
    h->in_recv = 1;
    ssize_t rv = nghttp2_session_mem_recv(h->s, (const uint8_t *)p, n);
    int rd = rv < 0 ? (int)rv : drain(h);
    h->in_recv = 0;
    flush_data(h, 0);
    return settle(L, h, rd);
}

/* pull() -> the bytes to write now ("" when none). */
static int l_pull(lua_State *L) {
    h2_session *h = enter(L);
    lua_pushlstring(L, h->out.p ? h->out.p : "", h->out.len);
    rt_buf_release(&h->out, H2_OUT_KEEP);
    return 1;
}

/* event() -> the next event, or nil. */
static int l_event(lua_State *L) {
    h2_session *h = enter(L);
    if (h->qhead > h->qtail) return 0;
    lua_rawgeti(L, h->ev, h->qhead);
    lua_pushnil(L);
    lua_rawseti(L, h->ev, h->qhead);
    if (++h->qhead > h->qtail) {
        h->qhead = 1;
        h->qtail = 0;
    }
    return 1;
}

/* The header list of the names and values tables at ni, vi as nghttp2_nv
 * entries followed by their bytes, in b; *count entries, *size as 6.5.2
 * counts it. NULL, or why the list cannot be sent. */
static const char *build_nv(lua_State *L, int ni, int vi, rt_buf *b, size_t *count, size_t *size) {
    luaL_checktype(L, ni, LUA_TTABLE);
    luaL_checktype(L, vi, LUA_TTABLE);
    size_t n = lua_objlen(L, ni), bytes = 0;
    if (lua_objlen(L, vi) != n) luaL_argerror(L, vi, "as many values as names expected");
    for (int pass = 0; pass < 2; pass++) {
        char *at = pass ? b->p + n * sizeof(nghttp2_nv) : NULL;
        for (size_t i = 1; i <= n; i++) {
            size_t nl, vl;
            lua_rawgeti(L, ni, (int)i);
            lua_rawgeti(L, vi, (int)i);
            const char *name = lua_tolstring(L, -2, &nl), *value = lua_tolstring(L, -1, &vl);
            lua_pop(L, 2); /* the tables keep the strings */
            if (!pass) {
                /* RFC 9113 8.2.1: lower-case tokens; 8.2.1 also refuses
                 * NUL, CR and LF in a value */
                if (!name || !nghttp2_check_header_name((const uint8_t *)name, nl))
                    return "a header name is not valid in HTTP/2";
                if (!value || !nghttp2_check_header_value((const uint8_t *)value, vl))
                    return "a header value is not valid in HTTP/2";
                bytes += nl + vl;
                continue;
            }
            nghttp2_nv *e = (nghttp2_nv *)b->p + (i - 1);
            memcpy(at, name, nl);
            memcpy(at + nl, value, vl);
            *e = (nghttp2_nv){(uint8_t *)at, (uint8_t *)at + nl, nl, vl, NGHTTP2_NV_FLAG_NONE};
            at += nl + vl;
        }
        b->len = 0;
        if (!pass && rt_buf_reserve(b, n * sizeof(nghttp2_nv) + bytes + 1, SIZE_MAX))
            luaL_error(L, "out of memory");
    }
    *count = n;
    *size = bytes + n * H2_FIELD_OVERHEAD;
    return NULL;
}

/* A new stream record with a body to come unless end_stream. */
static h2_stream *new_stream(lua_State *L, int end_stream) {
    h2_stream *r = calloc(1, sizeof *r);
    if (!r) luaL_error(L, "out of memory");
    r->provider = !end_stream;
    return r;
}

/* request(names, values, end_stream) -> stream id, or nil, message, ename.
 * The pseudo-headers come first (RFC 9113 8.3.1); the caller leaves out
 * the connection-specific fields (8.2.2). */
static int l_request(lua_State *L) {
    h2_session *h = enter(L);
    if (h->server) return luaL_error(L, "a server session sends no requests");
    int end_stream = lua_toboolean(L, 4);
    if (h->fail_ename[0]) return push_failure(L, h);
    size_t n, size;
    const char *bad = build_nv(L, 2, 3, &h->nv, &n, &size);
    if (bad) return push_error(L, "EINVAL", bad);
    /* 6.5.2: the peer said how large a list it takes */
    if (size > nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE))
        return push_error(L, "H2_HEADER_LIST_TOO_LARGE",
                          "the header list is over the server's max_header_list_size");
    h2_stream *r = new_stream(L, end_stream);
    nghttp2_data_provider body = {.source = {.ptr = r}, .read_callback = read_body};
    int32_t sid = nghttp2_submit_request(h->s, NULL, (const nghttp2_nv *)h->nv.p, n,
                                         end_stream ? NULL : &body, r);
    rt_buf_release(&h->nv, H2_HDR_KEEP);
    if (sid < 0) {
        free(r);
        /* out of stream ids or GOAWAY: nothing went out */
        if (nghttp2_is_fatal(sid)) return settle(L, h, sid);
        return push_error(L, "H2_REFUSED_STREAM", nghttp2_strerror(sid));
    }
    link_stream(h, r, sid);
    int rc = settle(L, h, 0);
    if (rc != 1) return rc;
    lua_pushinteger(L, sid);
    return 1;
}

/* response(sid, names, values, end_stream) -> true, or nil, message, ename. */
static int l_response(lua_State *L) {
    h2_session *h = enter(L);
    if (!h->server) return luaL_error(L, "a client session sends no responses");
    int32_t sid = check_sid(L, 2);
    int end_stream = lua_toboolean(L, 5);
    if (h->fail_ename[0]) return push_failure(L, h);
    h2_stream *r = find(h, sid);
    if (!r) return push_error(L, "H2_STREAM_CLOSED", "the stream is closed");
    if (r->provider) return luaL_error(L, "stream %d has its response", (int)sid);
    size_t n, size;
    const char *bad = build_nv(L, 3, 4, &h->nv, &n, &size);
    if (bad) return push_error(L, "EINVAL", bad);
    r->provider = !end_stream;
    nghttp2_data_provider body = {.source = {.ptr = r}, .read_callback = read_body};
    int rv = nghttp2_submit_response(h->s, sid, (const nghttp2_nv *)h->nv.p, n,
                                     end_stream ? NULL : &body);
    rt_buf_release(&h->nv, H2_HDR_KEEP);
    return settle(L, h, rv);
}

/* The stream whose body the caller adds to, or NULL after pushing the
 * failure (the connection's, or the stream's end). */
static h2_stream *body_stream(lua_State *L, h2_session *h, int32_t sid, int *nret) {
    if (h->fail_ename[0]) {
        *nret = push_failure(L, h);
        return NULL;
    }
    h2_stream *r = find(h, sid);
    if (!r) {
        *nret = push_error(L, "H2_STREAM_CLOSED", "the stream is closed");
        return NULL;
    }
    if (!r->provider || r->eof) luaL_error(L, "stream %d has no body to add to", (int)sid);
    return r;
}

/* The body's data provider may go on. */
static int resume(lua_State *L, h2_session *h, h2_stream *r) {
    int rv = 0;
    if (r->deferred) {
        r->deferred = 0;
        rv = nghttp2_session_resume_data(h->s, r->sid);
    }
    return settle(L, h, rv);
}

/* data(sid, bytes, end_stream) -> true: the bytes go as the windows allow. */
static int l_data(lua_State *L) {
    h2_session *h = enter(L);
    int32_t sid = check_sid(L, 2);
    size_t n;
    const char *p = luaL_checklstring(L, 3, &n);
    int end_stream = lua_toboolean(L, 4), nret = 0;
    h2_stream *r = body_stream(L, h, sid, &nret);
    if (!r) return nret;
    if (r->off) {
        memmove(r->out.p, r->out.p + r->off, r->out.len - r->off);
        r->out.len -= r->off;
        r->off = 0;
    }
    if (rt_buf_append(&r->out, p, n)) return luaL_error(L, "out of memory");
    r->eof = end_stream;
    return resume(L, h, r);
}

/* trailers(sid, names, values) -> true: the body ends, then these fields
 * (RFC 9113 8.1). */
static int l_trailers(lua_State *L) {
    h2_session *h = enter(L);
    int32_t sid = check_sid(L, 2);
    int nret = 0;
    h2_stream *r = body_stream(L, h, sid, &nret);
    if (!r) return nret;
    size_t n, size;
    rt_buf b = {0};
    const char *bad = build_nv(L, 3, 4, &b, &n, &size);
    if (bad) {
        rt_buf_release(&b, 0);
        return push_error(L, "EINVAL", bad);
    }
    r->trailers = (nghttp2_nv *)b.p;
    r->ntrailers = n;
    r->eof = 1;
    return resume(L, h, r);
}

/* queued(sid) -> body bytes still waiting for the peer's window. */
static int l_queued(lua_State *L) {
    h2_session *h = enter(L);
    h2_stream *r = find(h, check_sid(L, 2));
    lua_pushnumber(L, r ? (lua_Number)(r->out.len - r->off) : 0);
    return 1;
}

/* consume(sid, n): the script took n body bytes; WINDOW_UPDATE may go. */
static int l_consume(lua_State *L) {
    h2_session *h = enter(L);
    int32_t sid = check_sid(L, 2);
    lua_Number n = luaL_checknumber(L, 3);
    luaL_argcheck(L, n >= 0 && n <= H2_MAX_WINDOW, 3, "byte count expected");
    if (h->fail_ename[0]) return push_failure(L, h);
    return settle(L, h, nghttp2_session_consume(h->s, sid, (size_t)n));
}

/* reset(sid, code): RST_STREAM (RFC 9113 6.4). */
static int l_reset(lua_State *L) {
    h2_session *h = enter(L);
    int32_t sid = check_sid(L, 2);
    uint32_t code = check_code(L, 3);
    if (h->fail_ename[0]) return push_failure(L, h);
    int rv = nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid, code);
    /* a request nghttp2 still held back (the peer's limit) is dropped
     * without a frame, and without a close callback */
    h2_stream *r = find(h, sid);
    if (!rv && r && !nghttp2_session_find_stream(h->s, sid)) close_stream(h, r, code);
    return settle(L, h, rv);
}

/* goaway(code[, last_sid]): no new streams from the peer (RFC 9113 6.8). */
static int l_goaway(lua_State *L) {
    h2_session *h = enter(L);
    uint32_t code = check_code(L, 2);
    int32_t last = lua_isnoneornil(L, 3) ? nghttp2_session_get_last_proc_stream_id(h->s)
                                         : (int32_t)luaL_checkinteger(L, 3);
    if (h->fail_ename[0]) return push_failure(L, h);
    return settle(L, h, nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, last, code, NULL, 0));
}

/* ping(): a PING; its ACK comes as { "pong" }. */
static int l_ping(lua_State *L) {
    h2_session *h = enter(L);
    if (h->fail_ename[0]) return push_failure(L, h);
    return settle(L, h, nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, NULL));
}

static int l_streams(lua_State *L) {
    h2_session *h = enter(L);
    lua_pushinteger(L, h->nstreams);
    return 1;
}

static uint32_t peer_max(h2_session *h) {
    return nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

static int l_peer_max_streams(lua_State *L) {
    lua_pushnumber(L, peer_max(enter(L)));
    return 1;
}

/* can_open() -> whether a request may start now: fewer streams than the
 * peer allows (RFC 9113 5.1.2), no GOAWAY either way, ids left. */
static int l_can_open(lua_State *L) {
    h2_session *h = enter(L);
    lua_pushboolean(L, !h->fail_ename[0] && nghttp2_session_check_request_allowed(h->s) &&
                           (uint32_t)h->nstreams < peer_max(h));
    return 1;
}

static int l_want_write(lua_State *L) {
    h2_session *h = enter(L);
    lua_pushboolean(L, h->out.len || (!h->fail_ename[0] && nghttp2_session_want_write(h->s)));
    return 1;
}

static int l_want_read(lua_State *L) {
    h2_session *h = enter(L);
    lua_pushboolean(L, !h->fail_ename[0] && nghttp2_session_want_read(h->s));
    return 1;
}

static void free_session(h2_session *h) {
    while (h->list)
        free_stream(h, h->list);
    if (h->s) nghttp2_session_del(h->s);
    h->s = NULL;
    rt_buf_release(&h->out, 0);
    rt_buf_release(&h->nv, 0);
    h2_head_free(&h->head);
    rt_buf_release(&h->data, 0);
}

/* close(): free nghttp2's state now rather than at collection. */
static int l_close(lua_State *L) {
    free_session(luaL_checkudata(L, 1, H2_MT));
    return 0;
}

/* ---- creation ---- */

static lua_Number opt_number(lua_State *L, const char *name, lua_Number dflt, lua_Number min,
                             lua_Number max) {
    lua_getfield(L, 1, name);
    lua_Number v = lua_isnil(L, -1) ? dflt : lua_tonumber(L, -1);
    if (!(v >= min && v <= max) || (!lua_isnil(L, -1) && !lua_isnumber(L, -1)))
        luaL_error(L, "h2 session option '%s' must be a number from %.0f to %.0f", name, min, max);
    lua_pop(L, 1);
    return v;
}

static nghttp2_session_callbacks *new_callbacks(void) {
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb)) return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    return cb;
}

/* nghttp2's session with lurl's options: window updates from consume,
 * no closed streams kept (no RFC 7540 priorities here). */
static int open_session(h2_session *h) {
    nghttp2_session_callbacks *cb = new_callbacks();
    nghttp2_option *opt = NULL;
    int rv = cb ? nghttp2_option_new(&opt) : NGHTTP2_ERR_NOMEM;
    if (!rv) {
        nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_option_set_no_closed_streams(opt, 1);
        rv = h->server ? nghttp2_session_server_new2(&h->s, cb, h, opt)
                       : nghttp2_session_client_new2(&h->s, cb, h, opt);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return rv;
}

static int session_gc(lua_State *L) {
    free_session(luaL_checkudata(L, 1, H2_MT));
    return 0;
}

/* session{ server = false, max_concurrent_streams = 100,
 * max_header_list_size = 65536, max_field_size = none (client: a field
 * line's limit, reported with the head), initial_window_size = 262144,
 * connection_window_size = 16 MiB } -> session. This side's SETTINGS go
 * first (after the client preface, RFC 9113 3.4), with push off on a
 * client (8.4), then the connection window. */
static int l_session(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "server");
    int server = lua_toboolean(L, -1);
    lua_pop(L, 1);
    uint32_t max_streams = (uint32_t)opt_number(L, "max_concurrent_streams", 100, 0, 4294967295.0);
    uint32_t max_list = (uint32_t)opt_number(L, "max_header_list_size", 65536, 1, 4294967295.0);
    size_t max_field = (size_t)opt_number(L, "max_field_size", 0, 0, 4294967295.0);
    uint32_t window = (uint32_t)opt_number(L, "initial_window_size", 262144, 0, H2_MAX_WINDOW);
    int32_t conn = (int32_t)opt_number(L, "connection_window_size", 16 << 20, 65535, H2_MAX_WINDOW);
    h2_session *h = lua_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    luaL_getmetatable(L, H2_MT);
    lua_setmetatable(L, -2);
    lua_createtable(L, 1, 0);
    lua_newtable(L);
    lua_rawseti(L, -2, ENV_EVENTS);
    lua_setfenv(L, -2);
    h->server = server;
    h->max_header_list = max_list;
    h->head.client = !server;
    h->head.max_field = max_field;
    h->qhead = 1;
    if (open_session(h)) return luaL_error(L, "out of memory");
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
                                   {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_list},
                                   {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    int rv = nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, server ? 3 : 4);
    if (!rv) rv = nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, conn);
    lua_replace(L, 1);
    enter(L);
    if (settle(L, h, rv) != 1) return luaL_error(L, "out of memory");
    lua_settop(L, 1);
    return 1;
}

int rt_open_h2(lua_State *L) {
    static const luaL_Reg methods[] = {{"recv", l_recv},
                                       {"pull", l_pull},
                                       {"event", l_event},
                                       {"request", l_request},
                                       {"response", l_response},
                                       {"data", l_data},
                                       {"trailers", l_trailers},
                                       {"queued", l_queued},
                                       {"consume", l_consume},
                                       {"reset", l_reset},
                                       {"goaway", l_goaway},
                                       {"ping", l_ping},
                                       {"streams", l_streams},
                                       {"peer_max_streams", l_peer_max_streams},
                                       {"can_open", l_can_open},
                                       {"want_write", l_want_write},
                                       {"want_read", l_want_read},
                                       {"close", l_close},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", session_gc}, {NULL, NULL}};
    rt_new_class(L, H2_MT, methods, meta);
    lua_newtable(L);
    lua_pushcfunction(L, l_session);
    lua_setfield(L, -2, "session");
    return 1;
}
