/* core.tls.engine: TLS tied to no socket. Lua feeds it the peer's bytes and
 * sends what it leaves pending over whatever carries them, such as another
 * stream that runs TLS itself: TLS inside TLS, for an https:// origin
 * through an https:// proxy's CONNECT tunnel (lua/lurl/tls_over.lua). It is
 * the link a stream's TLS transport runs on (tls.c), driven from Lua. */
#include <stdio.h>
#include <string.h>

#include "tls.h"

#define ENGINE_MT "lurl.tls_engine"

typedef struct {
    tls_link k;
    int done;         /* the handshake finished */
    int closed;       /* close() or __gc freed the link */
    int end;          /* what ended reading: SSL_ERROR_ZERO_RETURN (close_notify), SSL_ERROR_SSL */
    char reason[200]; /* "ESSL: ..." of a failed read, for the read() that reports it */
} tls_engine;

static tls_engine *check_engine(lua_State *L) {
    tls_engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    if (e->closed) luaL_argerror(L, 1, "TLS engine is closed");
    return e;
}

static tls_engine *check_open(lua_State *L) {
    tls_engine *e = check_engine(L);
    if (!e->done) luaL_argerror(L, 1, "TLS handshake not finished");
    return e;
}

static void free_engine(lua_State *L, tls_engine *e) {
    e->closed = 1;
    tls_link_free(L, &e->k);
}

/* "ESSL: <OpenSSL's reason>" into e->reason, the queue cleared. */
static const char *set_reason(tls_engine *e) {
    snprintf(e->reason, sizeof e->reason, "ESSL: %s", tls_link_reason());
    ERR_clear_error();
    return e->reason;
}

/* core.tls.engine(context, host, session_key[, alpn]) -> engine, or nil,
 * "ESSL: ...", "ESSL". Client or server as the context says; host,
 * session_key and alpn as for stream:tls_start (SNI and verification; saved
 * and resumed sessions; this connection's ALPN offer). */
static int l_engine(lua_State *L) {
    tls_context_check(L, 1);
    const char *host = luaL_optstring(L, 2, NULL);
    const char *session_key = luaL_optstring(L, 3, NULL);
    size_t alpn_len;
    const char *alpn = tls_opt_alpn(L, 4, &alpn_len);
    tls_engine *e = lua_newuserdata(L, sizeof *e);
    memset(e, 0, sizeof *e);
    luaL_getmetatable(L, ENGINE_MT);
    lua_setmetatable(L, -2);
    if (tls_link_open(L, &e->k, 1, host, session_key, alpn, alpn_len)) return 1;
    int n = tls_push_start_failure(L, "cannot start TLS");
    free_engine(L, e);
    return n;
}

/* engine:handshake() -> true (done), false (it needs more of the peer's
 * bytes: send pending() and feed what comes back), or nil, message, ename,
 * verify_code as stream:tls_start's fn gets them (ECERT, ESSL). */
static int engine_handshake(lua_State *L) {
    tls_engine *e = check_engine(L);
    int r = e->done ? 1 : tls_link_handshake(&e->k);
    if (r < 0) {
        e->k.broken = 1;
        return tls_push_failure(L, e->k.ssl, NULL, "ESSL");
    }
    e->done = r;
    lua_pushboolean(L, r);
    return 1;
}

/* engine:feed(bytes): what the peer sent. */
static int engine_feed(lua_State *L) {
    tls_engine *e = check_engine(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (len && BIO_write(e->k.rbio, data, (int)len) != (int)len)
        return luaL_error(L, "out of memory");
    return 0;
}

static int push_end(lua_State *L, tls_engine *e) {
    lua_pushnil(L);
    if (e->end == SSL_ERROR_ZERO_RETURN) {
        lua_pushliteral(L, "EOF");
        lua_pushliteral(L, "EOF");
    } else {
        lua_pushstring(L, e->reason);
        lua_pushliteral(L, "ESSL");
    }
    return 3;
}

/* engine:read() -> the plaintext decrypted from what was fed ("" when it
 * needs more; call again while it returns a string that is not: one call
 * returns at most one read buffer), then nil, "EOF", "EOF" after the peer's
 * close_notify or nil, "ESSL: ...", "ESSL" when TLS failed. Reading may
 * leave replies (key updates) in pending(). The runtime's read buffer is
 * free here: C code hands what it holds there to Lua as a string before
 * calling Lua. */
static int engine_read(lua_State *L) {
    tls_engine *e = check_open(L);
    if (e->end) return push_end(L, e);
    char *buf = rt_get(L)->read_buf;
    size_t len;
    int r = tls_link_read(&e->k, buf, RT_READ_BUF_SIZE, &len);
    if (r == SSL_ERROR_ZERO_RETURN) {
        e->end = r;
    } else if (r != SSL_ERROR_NONE && r != SSL_ERROR_WANT_READ) {
        e->k.broken = 1;
        e->end = SSL_ERROR_SSL;
        set_reason(e);
    }
    if (!len && e->end) return push_end(L, e);
    lua_pushlstring(L, buf, len);
    return 1;
}

/* engine:write(plaintext) -> true (the records are in pending()), or nil,
 * "ESSL: ...", "ESSL". */
static int engine_write(lua_State *L) {
    tls_engine *e = check_open(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    tls_clear_errors();
    if (tls_link_write(&e->k, data, len)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, set_reason(e));
    lua_pushliteral(L, "ESSL");
    return 3;
}

static void push_pending(lua_State *L, tls_engine *e) {
    char *data;
    long n = BIO_get_mem_data(e->k.wbio, &data);
    lua_pushlstring(L, data, n > 0 ? (size_t)n : 0);
    (void)BIO_reset(e->k.wbio);
}

/* engine:pending() -> the bytes for the peer made so far ("" when none):
 * the caller sends them. */
static int engine_pending(lua_State *L) {
    push_pending(L, check_engine(L));
    return 1;
}

/* engine:info() -> what stream:tls_info() tells, or nil before the
 * handshake finished or after TLS failed. */
static int engine_info(lua_State *L) {
    tls_engine *e = check_engine(L);
    if (!e->done || e->k.broken) return 0;
    return tls_push_info(L, e->k.ssl);
}

/* engine:close() -> the close_notify to send ("" when TLS never finished or
 * failed); the engine is done. Closing again returns "". */
static int engine_close(lua_State *L) {
    tls_engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    if (!e->closed && e->done && !e->k.broken && tls_link_close_notify(&e->k))
        push_pending(L, e);
    else
        lua_pushliteral(L, "");
    if (!e->closed) free_engine(L, e);
    return 1;
}

static int engine_gc(lua_State *L) {
    tls_engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    if (!e->closed) free_engine(L, e);
    return 0;
}

static int engine_tostring(lua_State *L) {
    tls_engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    const char *state = e->closed     ? "closed"
                        : e->k.broken ? "failed"
                        : e->done     ? "open"
                                      : "handshaking";
    lua_pushfstring(L, "lurl.tls_engine (%p, %s)", (void *)e, state);
    return 1;
}

void tls_open_engine(lua_State *L) {
    static const luaL_Reg methods[] = {{"handshake", engine_handshake}, {"feed", engine_feed},
                                       {"read", engine_read},           {"write", engine_write},
                                       {"pending", engine_pending},     {"info", engine_info},
                                       {"close", engine_close},         {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", engine_gc}, {"__tostring", engine_tostring}, {NULL, NULL}};
    rt_new_class(L, ENGINE_MT, methods, meta);
    lua_pushcfunction(L, l_engine);
    lua_setfield(L, -2, "engine");
}
