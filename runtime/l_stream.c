/* lurl.core streams: TCP and Unix-socket client connections, listeners and
 * the byte stream between them. Both kinds share one userdata type and one set
 * of methods, so the Lua connection code does not care which it holds, nor
 * whether TLS runs on it (stream:tls_start, tls.c).
 * Callbacks carry `nil, "ENAME: message", "ENAME"` on failure. */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "stream.h"

static const stream_transport plain_transport;

typedef struct {
    uv_write_t req;
    lurl_runtime *rt;
    int cb_ref;   /* completion callback, or LUA_NOREF */
    int data_ref; /* keeps the written strings alive until libuv is done */
    uv_buf_t bufs[];
} write_req;

typedef struct {
    uv_connect_t req;
    lurl_runtime *rt;
    int cb_ref;
} stream_connect;

l_stream *stream_check(lua_State *L, int idx) {
    l_stream *t = luaL_checkudata(L, idx, STREAM_MT);
    if (t->h.closed) luaL_argerror(L, idx, "connection is closed");
    return t;
}

static l_stream *check_stream(lua_State *L) {
    return stream_check(L, 1);
}

static l_stream *new_stream(lua_State *L, int is_pipe) {
    l_stream *t = lua_newuserdata(L, sizeof *t);
    luaL_getmetatable(L, STREAM_MT);
    lua_setmetatable(L, -2);
    t->tp = &plain_transport;
    t->tls = NULL;
    t->is_pipe = is_pipe;
    t->reading = t->handshaking = 0;
    t->read_ref = t->listen_ref = LUA_NOREF;
    uv_loop_t *loop = rt_get(L)->loop;
    int err = is_pipe ? uv_pipe_init(loop, &t->h.uv.pipe, 0) : uv_tcp_init(loop, &t->h.uv.tcp);
    if (err) {
        lua_pop(L, 1);
        rt_fail(L, err);
        return NULL;
    }
    rt_handle_open(L, &t->h);
    return t;
}

/* ip (string) at idx and a port at idx + 1 (optional: 0). */
static int parse_addr(lua_State *L, int idx, struct sockaddr_storage *ss) {
    const char *ip = luaL_checkstring(L, idx);
    int port = (int)luaL_optinteger(L, idx + 1, 0);
    luaL_argcheck(L, port >= 0 && port <= 65535, idx + 1, "port must be 0..65535");
    if (strchr(ip, ':')) return uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(ip, port, (struct sockaddr_in *)ss);
}

/* libuv copies a socket path into sun_path and cuts what does not fit. */
static const char *check_path(lua_State *L, int idx) {
    size_t len;
    const char *path = luaL_checklstring(L, idx, &len);
    luaL_argcheck(L, len > 0 && len < sizeof(((struct sockaddr_un *)0)->sun_path), idx,
                  "socket path is empty or too long");
    return path;
}

static int push_status(lurl_runtime *rt, int status) {
    lua_State *L = rt->L;
    if (status == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
    lua_pushstring(L, uv_err_name(status));
    return 3;
}

/* ---- connect ---- */

static void on_connect(uv_connect_t *uvreq, int status) {
    stream_connect *c = uvreq->data;
    lurl_runtime *rt = c->rt;
    rt_push_ref(rt, c->cb_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, c->cb_ref);
    free(c);
    if (status == UV_ECANCELED) {
        lua_pop(rt->L, 1);
        return;
    }
    rt_callback(rt, push_status(rt, status));
}

/* A connect request that will call the function at fn_idx. */
static stream_connect *new_connect(lua_State *L, int fn_idx) {
    luaL_checktype(L, fn_idx, LUA_TFUNCTION);
    stream_connect *c = malloc(sizeof *c);
    if (!c) luaL_error(L, "out of memory");
    c->rt = rt_get(L);
    c->req.data = c;
    lua_pushvalue(L, fn_idx);
    c->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return c;
}

static void drop_connect(lua_State *L, stream_connect *c) {
    luaL_unref(L, LUA_REGISTRYINDEX, c->cb_ref);
    free(c);
}

/* tcp.connect(ip, port, fn[, local_ip[, local_port]]) -> stream; fn(true)
 * once connected, or fn(nil, err, ename). A local address binds the socket
 * first (aiohttp's local_addr). */
static int l_tcp_connect(lua_State *L) {
    struct sockaddr_storage ss, local;
    if (parse_addr(L, 1, &ss)) return luaL_argerror(L, 1, "not an IP address");
    int has_local = !lua_isnoneornil(L, 4);
    if (has_local && parse_addr(L, 4, &local)) return luaL_argerror(L, 4, "not an IP address");
    stream_connect *c = new_connect(L, 3);
    l_stream *t = new_stream(L, 0);
    if (!t) {
        drop_connect(L, c);
        return 3;
    }
    uv_tcp_nodelay(&t->h.uv.tcp, 1);
    int err = has_local ? uv_tcp_bind(&t->h.uv.tcp, (struct sockaddr *)&local, 0) : 0;
    if (!err) err = uv_tcp_connect(&c->req, &t->h.uv.tcp, (struct sockaddr *)&ss, on_connect);
    if (err) {
        drop_connect(L, c);
        rt_handle_close(&t->h);
        return rt_fail(L, err);
    }
    return 1;
}

/* pipe.connect(path, fn) -> stream: a Unix socket; fn as for tcp.connect. */
static int l_pipe_connect(lua_State *L) {
    const char *path = check_path(L, 1);
    stream_connect *c = new_connect(L, 2);
    l_stream *t = new_stream(L, 1);
    if (!t) {
        drop_connect(L, c);
        return 3;
    }
    uv_pipe_connect(&c->req, &t->h.uv.pipe, path, on_connect);
    return 1;
}

/* ---- listen / accept ---- */

static void on_connection(uv_stream_t *server, int status) {
    l_stream *t = server->data;
    rt_push_ref(t->h.rt, t->listen_ref);
    rt_callback(t->h.rt, push_status(t->h.rt, status));
}

/* Listen on a bound stream (bind_err: how binding went); the function at
 * fn_idx runs for each pending connection. */
static int start_listening(lua_State *L, l_stream *t, int bind_err, int fn_idx, int backlog) {
    int err = bind_err ? bind_err : uv_listen(&t->h.uv.stream, backlog, on_connection);
    if (err) {
        rt_handle_close(&t->h);
        return rt_fail(L, err);
    }
    lua_pushvalue(L, fn_idx);
    t->listen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* tcp.listen(ip, port, fn[, backlog]) -> stream; fn() for each pending connection. */
static int l_tcp_listen(lua_State *L) {
    struct sockaddr_storage ss;
    if (parse_addr(L, 1, &ss)) return luaL_argerror(L, 1, "not an IP address");
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int backlog = (int)luaL_optinteger(L, 4, 511);
    l_stream *t = new_stream(L, 0);
    if (!t) return 3;
    return start_listening(L, t, uv_tcp_bind(&t->h.uv.tcp, (struct sockaddr *)&ss, 0), 3, backlog);
}

/* pipe.listen(path, fn[, backlog]) -> stream, on a Unix socket path. */
static int l_pipe_listen(lua_State *L) {
    const char *path = check_path(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int backlog = (int)luaL_optinteger(L, 3, 511);
    l_stream *t = new_stream(L, 1);
    if (!t) return 3;
    return start_listening(L, t, uv_pipe_bind(&t->h.uv.pipe, path), 2, backlog);
}

static int stream_accept(lua_State *L) {
    l_stream *server = check_stream(L);
    l_stream *t = new_stream(L, server->is_pipe);
    if (!t) return 3;
    int err = uv_accept(&server->h.uv.stream, &t->h.uv.stream);
    if (err) {
        rt_handle_close(&t->h);
        return rt_fail(L, err);
    }
    if (!t->is_pipe) uv_tcp_nodelay(&t->h.uv.tcp, 1);
    return 1;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *uvh, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    rt_handle *h = uvh->data;
    /* One buffer per runtime: read_cb turns it into a Lua string at once. */
    buf->base = h->rt->read_buf;
    buf->len = sizeof h->rt->read_buf;
}

void stream_deliver(l_stream *t, const char *data, size_t len) {
    lurl_runtime *rt = t->h.rt;
    rt_push_ref(rt, t->read_ref);
    lua_pushlstring(rt->L, data, len);
    rt_callback(rt, 1);
}

void stream_deliver_end(l_stream *t, int status, const char *message, const char *ename) {
    lurl_runtime *rt = t->h.rt;
    lua_State *L = rt->L;
    uv_read_stop(&t->h.uv.stream);
    rt_push_ref(rt, t->read_ref);
    lua_pushnil(L);
    if (message)
        lua_pushstring(L, message);
    else if (status == UV_EOF)
        lua_pushliteral(L, "EOF");
    else
        lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
    lua_pushstring(L, ename ? ename : status == UV_EOF ? "EOF" : uv_err_name(status));
    rt_callback(rt, 3);
}

/* One read(2) of up to RT_READ_BUF_SIZE, handed on in pieces of at most
 * RT_DELIVERY_SIZE; Lua may close the stream in any delivery. */
static void plain_received(l_stream *t, char *base, ssize_t nread) {
    if (nread <= 0) {
        stream_deliver_end(t, (int)nread, NULL, NULL);
        return;
    }
    for (size_t at = 0; at < (size_t)nread && !t->h.closed; at += RT_DELIVERY_SIZE) {
        size_t left = (size_t)nread - at;
        stream_deliver(t, base + at, left < RT_DELIVERY_SIZE ? left : RT_DELIVERY_SIZE);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    l_stream *t = stream->data;
    if (nread != 0) t->tp->received(t, buf->base, nread);
}

int stream_read_socket(l_stream *t, int on) {
    if (!on) return uv_read_stop(&t->h.uv.stream);
    int err = uv_read_start(&t->h.uv.stream, on_alloc, on_read);
    return err == UV_EALREADY ? 0 : err;
}

/* stream:read_start(fn): fn(data) per read; fn(nil, "EOF", "EOF") at the end of
 * the stream and fn(nil, err, ename) on failure, after which reading stops. */
static int stream_read_start(lua_State *L) {
    l_stream *t = check_stream(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_unref(L, LUA_REGISTRYINDEX, t->read_ref);
    lua_pushvalue(L, 2);
    t->read_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->reading = 1;
    int err = stream_read_socket(t, 1);
    if (err) return rt_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* stream:read_stop(): no more socket reads. With TLS, what one read already
 * decrypted is still delivered, and a handshake in progress goes on. */
static int stream_read_stop(lua_State *L) {
    l_stream *t = check_stream(L);
    t->reading = 0;
    if (!t->handshaking) stream_read_socket(t, 0);
    return 0;
}

/* ---- writing ---- */

static void write_done(uv_write_t *uvreq, int status) {
    write_req *w = uvreq->data;
    lurl_runtime *rt = w->rt;
    luaL_unref(rt->L, LUA_REGISTRYINDEX, w->data_ref);
    int cb = w->cb_ref;
    free(w);
    if (cb == LUA_NOREF) return;
    rt_push_ref(rt, cb);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, cb);
    rt_callback(rt, push_status(rt, status));
}

/* Skip what uv_try_write took (tried bytes, or an error) over bufs[0..n).
 * Returns the index of the first buffer with bytes left (n: none), or the
 * error. */
static int skip_written(int tried, uv_buf_t *bufs, int n) {
    if (tried < 0) return tried == UV_EAGAIN ? 0 : tried;
    size_t done = (size_t)tried;
    int first = 0;
    for (; first < n && done > 0; first++) {
        if (done < bufs[first].len) {
            bufs[first].base += done;
            bufs[first].len -= done;
            break;
        }
        done -= bufs[first].len;
    }
    while (first < n && bufs[first].len == 0)
        first++;
    return first;
}

/* Queue bufs[first..n) of w; fn_idx: the completion function on L's stack
 * (0: none). Frees w on failure. */
static int queue_write(lua_State *L, l_stream *t, write_req *w, int first, int n, int fn_idx) {
    w->rt = t->h.rt;
    w->req.data = w;
    w->data_ref = w->cb_ref = LUA_NOREF;
    int err =
        uv_write(&w->req, &t->h.uv.stream, w->bufs + first, (unsigned)(n - first), write_done);
    if (err) {
        free(w);
        return err;
    }
    if (fn_idx && !lua_isnoneornil(L, fn_idx)) {
        lua_pushvalue(L, fn_idx);
        w->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

int stream_send_copy(lua_State *L, l_stream *t, const char *data, size_t len, int fn_idx) {
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int first = skip_written(uv_try_write(&t->h.uv.stream, &buf, 1), &buf, 1);
    if (first < 0) return first;
    if (first == 1) return 1;
    write_req *w = malloc(sizeof *w + sizeof(uv_buf_t) + buf.len);
    if (!w) return UV_ENOMEM;
    char *copy = (char *)(w->bufs + 1);
    memcpy(copy, buf.base, buf.len);
    w->bufs[0] = uv_buf_init(copy, (unsigned)buf.len);
    return queue_write(L, t, w, 0, 1, fn_idx);
}

/* Plain streams write the Lua strings themselves; a registry reference keeps
 * them alive while libuv still needs them. */
static int plain_write(lua_State *L, l_stream *t, uv_buf_t *bufs, int n) {
    /* Most writes fit in the socket buffer: try that before queueing. */
    int first = skip_written(uv_try_write(&t->h.uv.stream, bufs, (unsigned)n), bufs, n);
    if (first < 0 || first == n) return first < 0 ? first : 1;
    write_req *w = malloc(sizeof *w + (size_t)n * sizeof(uv_buf_t));
    if (!w) return UV_ENOMEM;
    memcpy(w->bufs, bufs, (size_t)n * sizeof(uv_buf_t));
    int err = queue_write(L, t, w, first, n, 3);
    if (err) return err;
    lua_pushvalue(L, 2);
    w->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static void collect_bufs(lua_State *L, uv_buf_t *bufs, int n) {
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t len;
        bufs[0].base = (char *)lua_tolstring(L, 2, &len);
        bufs[0].len = len;
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "list items must be strings");
        bufs[i].base = (char *)lua_tolstring(L, -1, &len);
        bufs[i].len = len;
        lua_pop(L, 1); /* still referenced by the list */
    }
}

#define STACK_BUFS 16

/* stream:write(data[, fn]): data is a string or a list of strings. Returns true
 * when everything was written at once (fn is not called), false when the rest
 * is queued (fn(true) or fn(nil, err, ename) follows), or nil, err, ename. */
static int stream_write(lua_State *L) {
    l_stream *t = check_stream(L);
    int n = 1;
    if (lua_type(L, 2) == LUA_TTABLE)
        n = (int)lua_objlen(L, 2);
    else
        luaL_checktype(L, 2, LUA_TSTRING);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    if (t->handshaking) return luaL_argerror(L, 1, "TLS handshake not finished");
    if (n == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    uv_buf_t stack[STACK_BUFS];
    uv_buf_t *bufs = n <= STACK_BUFS ? stack : lua_newuserdata(L, (size_t)n * sizeof *bufs);
    collect_bufs(L, bufs, n);
    int r = t->tp->write(L, t, bufs, n);
    if (r < 0) return rt_fail(L, r);
    lua_pushboolean(L, r);
    return 1;
}

/* ---- closing and socket details ---- */

static void release_refs(l_stream *t) {
    lua_State *L = t->h.rt->L;
    luaL_unref(L, LUA_REGISTRYINDEX, t->read_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, t->listen_ref);
    t->read_ref = t->listen_ref = LUA_NOREF;
}

/* stream:close([reset]): with reset true the peer sees a TCP RST. */
static int stream_close(lua_State *L) {
    l_stream *t = luaL_checkudata(L, 1, STREAM_MT);
    if (t->h.closed) return 0;
    release_refs(t);
    t->reading = 0;
    int reset = lua_toboolean(L, 2);
    if (t->tls && reset)
        tls_free(t);
    else if (t->tls)
        tls_close(t);
    if (reset) {
        uv_read_stop(&t->h.uv.stream);
        struct linger lg = {1, 0};
        uv_os_fd_t fd;
        if (uv_fileno(&t->h.uv.handle, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    rt_handle_close(&t->h);
    return 0;
}

static int stream_closed(lua_State *L) {
    l_stream *t = luaL_checkudata(L, 1, STREAM_MT);
    lua_pushboolean(L, t->h.closed);
    return 1;
}

static void shutdown_done(uv_shutdown_t *req, int status) {
    (void)status;
    free(req);
}

/* stream:shutdown(): send FIN once queued writes are done; reading goes on. */
static int stream_shutdown(lua_State *L) {
    l_stream *t = check_stream(L);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) return luaL_error(L, "out of memory");
    int err = uv_shutdown(req, &t->h.uv.stream, shutdown_done);
    if (err) {
        free(req);
        return rt_fail(L, err);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stream:ref(false) lets the loop end while this socket stays open (idle pooled
 * connections and listeners must not keep a finished script alive). */
static int stream_ref(lua_State *L) {
    l_stream *t = check_stream(L);
    rt_handle_ref(&t->h, lua_toboolean(L, 2));
    return 0;
}

/* A Unix socket's name is its path. */
static int push_pipe_name(lua_State *L, l_stream *t, int peer) {
    char path[256];
    size_t len = sizeof path;
    int err = peer ? uv_pipe_getpeername(&t->h.uv.pipe, path, &len)
                   : uv_pipe_getsockname(&t->h.uv.pipe, path, &len);
    if (err) return rt_fail(L, err);
    lua_pushlstring(L, path, len);
    return 1;
}

/* ip, port of either end of a TCP stream; the path of a Unix socket. */
static int push_name(lua_State *L, int peer) {
    l_stream *t = check_stream(L);
    if (t->is_pipe) return push_pipe_name(L, t, peer);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int err = peer ? uv_tcp_getpeername(&t->h.uv.tcp, (struct sockaddr *)&ss, &len)
                   : uv_tcp_getsockname(&t->h.uv.tcp, (struct sockaddr *)&ss, &len);
    if (err) return rt_fail(L, err);
    char ip[64];
    int port;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    lua_pushstring(L, ip);
    lua_pushinteger(L, port);
    return 2;
}

static int stream_sockname(lua_State *L) {
    return push_name(L, 0);
}

static int stream_peername(lua_State *L) {
    return push_name(L, 1);
}

static int stream_fileno(lua_State *L) {
    l_stream *t = check_stream(L);
    uv_os_fd_t fd;
    int err = uv_fileno(&t->h.uv.handle, &fd);
    if (err) return rt_fail(L, err);
    lua_pushinteger(L, fd);
    return 1;
}

static int stream_tostring(lua_State *L) {
    l_stream *t = luaL_checkudata(L, 1, STREAM_MT);
    lua_pushfstring(L, "lurl.stream (%p%s%s)", (void *)t, t->tls ? ", TLS" : "",
                    t->h.closed ? ", closed" : "");
    return 1;
}

/* A runtime freed with streams still open closes them without stream:close. */
static int stream_gc(lua_State *L) {
    l_stream *t = luaL_checkudata(L, 1, STREAM_MT);
    if (t->tls) tls_free(t);
    return 0;
}

static const stream_transport plain_transport = {plain_received, plain_write};

static void push_kind(lua_State *L, lua_CFunction connect, lua_CFunction listen) {
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, connect);
    lua_setfield(L, -2, "connect");
    lua_pushcfunction(L, listen);
    lua_setfield(L, -2, "listen");
}

int rt_open_stream(lua_State *L) {
    static const luaL_Reg methods[] = {{"read_start", stream_read_start},
                                       {"read_stop", stream_read_stop},
                                       {"write", stream_write},
                                       {"send_file", stream_send_file},
                                       {"shutdown", stream_shutdown},
                                       {"close", stream_close},
                                       {"closed", stream_closed},
                                       {"accept", stream_accept},
                                       {"ref", stream_ref},
                                       {"sockname", stream_sockname},
                                       {"peername", stream_peername},
                                       {"fileno", stream_fileno},
                                       {"tls_start", tls_start},
                                       {"tls_info", tls_info},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__tostring", stream_tostring}, {"__gc", stream_gc}, {NULL, NULL}};
    rt_new_class(L, STREAM_MT, methods, meta);
    push_kind(L, l_tcp_connect, l_tcp_listen);
    push_kind(L, l_pipe_connect, l_pipe_listen);
    return 2;
}
