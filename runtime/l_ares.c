/* lurl.core.ares: name resolution with c-ares on the runtime's loop, no
 * threads. A resolver is one c-ares channel: c-ares says which sockets it
 * waits on (ARES_OPT_SOCK_STATE_CB) and libuv polls them (uv_poll_t), and one
 * timer fires when the next query times out, so any number of lookups run at
 * once (getaddrinfo runs 4 at a time on libuv's thread pool, which file I/O
 * shares). ares_getaddrinfo reads /etc/hosts and resolv.conf as the C
 * library does, but not the rest of nsswitch.conf (mDNS, LDAP, ...). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "rt.h"

#define RESOLVER_MT "lurl.ares.resolver"
#define QUERY_MT "lurl.ares.query"

typedef struct watcher {
    uv_poll_t poll;
    ares_socket_t fd;
    struct resolver *res;
    struct watcher *next;
} watcher;

typedef struct query {
    struct resolver *res; /* NULL once answered */
    int cb_ref;           /* the function; LUA_NOREF once cancelled or called */
    int self_ref;         /* the userdata stays while the query is pending */
    int starting;         /* inside ares_getaddrinfo: an answer is held for the timer */
    int status;           /* a held answer */
    struct ares_addrinfo *ai;
    struct query *prev, *next; /* the resolver's pending queries */
    struct query *next_held;
} query;

typedef struct resolver {
    rt_handle h; /* the timer; closing it (resolver:close, lurl_free) destroys the channel */
    ares_channel channel;
    watcher *watchers;
    query *queries; /* pending: c-ares holds them, or their answer is held */
    query *held;    /* answered inside ares_getaddrinfo, delivered by the timer, in order */
    query *held_last;
    int wanted;     /* pending queries whose function is still to be called */
    int pending;    /* pending queries */
    int processing; /* inside ares_process_fd: closing waits for it to return */
} resolver;

static const char *const status_names[] = {
    [ARES_SUCCESS] = "ARES_SUCCESS",
    [ARES_ENODATA] = "ARES_ENODATA",
    [ARES_EFORMERR] = "ARES_EFORMERR",
    [ARES_ESERVFAIL] = "ARES_ESERVFAIL",
    [ARES_ENOTFOUND] = "ARES_ENOTFOUND",
    [ARES_ENOTIMP] = "ARES_ENOTIMP",
    [ARES_EREFUSED] = "ARES_EREFUSED",
    [ARES_EBADQUERY] = "ARES_EBADQUERY",
    [ARES_EBADNAME] = "ARES_EBADNAME",
    [ARES_EBADFAMILY] = "ARES_EBADFAMILY",
    [ARES_EBADRESP] = "ARES_EBADRESP",
    [ARES_ECONNREFUSED] = "ARES_ECONNREFUSED",
    [ARES_ETIMEOUT] = "ARES_ETIMEOUT",
    [ARES_EOF] = "ARES_EOF",
    [ARES_EFILE] = "ARES_EFILE",
    [ARES_ENOMEM] = "ARES_ENOMEM",
    [ARES_EDESTRUCTION] = "ARES_EDESTRUCTION",
    [ARES_EBADSTR] = "ARES_EBADSTR",
    [ARES_EBADFLAGS] = "ARES_EBADFLAGS",
    [ARES_ENONAME] = "ARES_ENONAME",
    [ARES_EBADHINTS] = "ARES_EBADHINTS",
    [ARES_ENOTINITIALIZED] = "ARES_ENOTINITIALIZED",
    [ARES_ELOADIPHLPAPI] = "ARES_ELOADIPHLPAPI",
    [ARES_EADDRGETNETWORKPARAMS] = "ARES_EADDRGETNETWORKPARAMS",
    [ARES_ECANCELLED] = "ARES_ECANCELLED",
};

static const char *status_name(int status) {
    size_t n = sizeof status_names / sizeof *status_names;
    if (status >= 0 && (size_t)status < n && status_names[status]) return status_names[status];
    return "ARES_EUNKNOWN";
}

/* The failure convention of lurl.core: nil, "ENAME: message", "ENAME". */
static int push_status(lua_State *L, int status) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", status_name(status), ares_strerror(status));
    lua_pushstring(L, status_name(status));
    return 3;
}

/* The answer as core.getaddrinfo gives it: a list of { ip =, family = }. */
static int push_answer(lua_State *L, int status, const struct ares_addrinfo *ai) {
    if (status != ARES_SUCCESS) return push_status(L, status);
    lua_newtable(L);
    int n = 0;
    for (const struct ares_addrinfo_node *node = ai ? ai->nodes : NULL; node; node = node->ai_next)
        n = rt_push_addr(L, n, node->ai_addr);
    if (n > 0) return 1;
    lua_pop(L, 1);
    return push_status(L, ARES_ENODATA);
}

/* ---- queries ---- */

static void drop_cb(lua_State *L, query *q) {
    if (q->cb_ref == LUA_NOREF) return;
    luaL_unref(L, LUA_REGISTRYINDEX, q->cb_ref);
    q->cb_ref = LUA_NOREF;
    q->res->wanted--;
}

/* q is no longer pending; its userdata may go. */
static void release(lua_State *L, query *q) {
    resolver *res = q->res;
    if (q->prev)
        q->prev->next = q->next;
    else
        res->queries = q->next;
    if (q->next) q->next->prev = q->prev;
    res->pending--;
    q->res = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, q->self_ref);
}

/* Call q's function with the answer, from a libuv callback, unless it was
 * cancelled. */
static void finish(query *q, int status, struct ares_addrinfo *ai) {
    lurl_runtime *rt = q->res->h.rt;
    lua_State *L = rt->L;
    int cb = q->cb_ref;
    if (cb != LUA_NOREF) q->res->wanted--;
    q->cb_ref = LUA_NOREF;
    release(L, q);
    if (cb == LUA_NOREF) {
        ares_freeaddrinfo(ai);
        return;
    }
    rt_push_ref(rt, cb);
    luaL_unref(L, LUA_REGISTRYINDEX, cb);
    int n = push_answer(L, status, ai);
    ares_freeaddrinfo(ai);
    rt_callback(rt, n);
}

static void update_timer(resolver *res);

/* c-ares answers an /etc/hosts name, a literal or a bad name inside
 * ares_getaddrinfo: that answer waits for the timer, so the function is
 * never called before getaddrinfo returned (as with the thread pool). */
static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai) {
    (void)timeouts;
    query *q = arg;
    if (!q->starting) {
        finish(q, status, ai);
        return;
    }
    resolver *res = q->res;
    q->status = status;
    q->ai = ai;
    q->next_held = NULL;
    if (res->held)
        res->held_last->next_held = q;
    else
        res->held = q;
    res->held_last = q;
}

/* ---- the channel on the loop ---- */

static void free_watcher(uv_handle_t *h) {
    free(h->data);
}

static void destroy_channel(resolver *res) {
    if (!res->channel) return;
    lua_State *L = res->h.rt->L;
    /* the functions of pending queries are not called, as with any handle
     * that closes; ares_destroy answers the queries c-ares holds
     * (ARES_EDESTRUCTION) and closes their sockets */
    for (query *q = res->queries; q; q = q->next)
        drop_cb(L, q);
    while (res->held) {
        query *q = res->held;
        res->held = q->next_held;
        ares_freeaddrinfo(q->ai);
        release(L, q);
    }
    ares_destroy(res->channel);
    res->channel = NULL;
    ares_library_cleanup();
    while (res->watchers) { /* a socket c-ares did not report closed */
        watcher *w = res->watchers;
        res->watchers = w->next;
        uv_close((uv_handle_t *)&w->poll, free_watcher);
    }
}

/* c-ares cannot cancel one query: a cancelled query's answer is dropped when
 * it comes, and once no pending query is wanted they all end at once (their
 * sockets close). Not from inside ares_process_fd: process() comes back. */
static void end_unwanted(resolver *res) {
    if (res->wanted > 0 || res->pending == 0 || res->processing || !res->channel) return;
    res->processing = 1;
    ares_cancel(res->channel);
    res->processing = 0;
}

/* The tasks that the answers wake run inside ares_process_fd: they may start
 * queries (c-ares allows it), cancel or close. */
static void process(resolver *res, ares_socket_t rfd, ares_socket_t wfd) {
    if (!res->channel) return;
    res->processing = 1;
    ares_process_fd(res->channel, rfd, wfd);
    res->processing = 0;
    if (res->h.closed) {
        destroy_channel(res); /* closed meanwhile */
        return;
    }
    end_unwanted(res);
    update_timer(res);
}

static void on_timer(uv_timer_t *t) {
    resolver *res = t->data;
    while (res->held && !res->h.closed) {
        query *q = res->held;
        res->held = q->next_held;
        finish(q, q->status, q->ai);
    }
    process(res, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* the queries that timed out */
}

/* While queries are pending the timer runs (it keeps the loop alive; the
 * sockets' polls do not, as c-ares may keep a socket open when idle). */
static void update_timer(resolver *res) {
    struct timeval tv;
    uint64_t ms;
    if (res->held)
        ms = 0;
    else if (ares_timeout(res->channel, NULL, &tv))
        ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
    else {
        uv_timer_stop(&res->h.uv.timer);
        return;
    }
    uv_timer_start(&res->h.uv.timer, on_timer, ms, 0);
}

static void on_poll(uv_poll_t *p, int status, int events) {
    watcher *w = p->data;
    /* an error is for c-ares to read on the socket */
    int readable = status < 0 || (events & UV_READABLE);
    int writable = status == 0 && (events & UV_WRITABLE);
    process(w->res, readable ? w->fd : ARES_SOCKET_BAD, writable ? w->fd : ARES_SOCKET_BAD);
}

/* c-ares opens, watches and closes its sockets through this. Without memory
 * for a watcher the socket is not polled, and its queries time out. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable) {
    resolver *res = data;
    watcher **link = &res->watchers;
    while (*link && (*link)->fd != fd)
        link = &(*link)->next;
    watcher *w = *link;
    if (!readable && !writable) {
        if (!w) return;
        *link = w->next;
        uv_close((uv_handle_t *)&w->poll, free_watcher);
        return;
    }
    if (!w) {
        w = malloc(sizeof *w);
        if (!w) return;
        if (uv_poll_init_socket(res->h.rt->loop, &w->poll, fd) != 0) {
            free(w);
            return;
        }
        w->poll.data = w;
        w->fd = fd;
        w->res = res;
        w->next = res->watchers;
        res->watchers = w;
        uv_unref((uv_handle_t *)&w->poll);
    }
    uv_poll_start(&w->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_close(rt_handle *h) {
    resolver *res = (resolver *)h;
    if (!res->processing) destroy_channel(res);
}

/* ---- Lua ---- */

static resolver *check_resolver(lua_State *L) {
    resolver *res = luaL_checkudata(L, 1, RESOLVER_MT);
    if (res->h.closed) luaL_argerror(L, 1, "resolver is closed");
    return res;
}

/* The option servers = { "127.0.0.1:5353", "[::1]:53", "10.0.0.1" } as
 * c-ares' comma-separated list. */
static const char *servers_csv(lua_State *L, int opts) {
    lua_getfield(L, opts, "servers");
    if (lua_isnil(L, -1)) return NULL;
    int list = lua_gettop(L);
    luaL_argcheck(L, lua_istable(L, list), 1, "servers: list of \"ip[:port]\" strings expected");
    int n = (int)lua_objlen(L, list);
    luaL_argcheck(L, n > 0, 1, "servers: at least one server expected");
    luaL_checkstack(L, 2 * n, "too many servers");
    for (int i = 1; i <= n; i++) {
        if (i > 1) lua_pushliteral(L, ",");
        lua_rawgeti(L, list, i);
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING && !strchr(lua_tostring(L, -1), ','), 1,
                      "servers: list of \"ip[:port]\" strings expected");
    }
    lua_concat(L, 2 * n - 1);
    return lua_tostring(L, -1);
}

/* The answers to thousands of queries come back in a burst on one socket
 * per server: the default receive buffer (208 KiB) drops some while the loop
 * is busy, and c-ares would wait for a retry. The kernel caps the size at
 * net.core.rmem_max. */
#define RCVBUF_SIZE (4 << 20)

static int options_mask(lua_State *L, int opts, struct ares_options *o) {
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF;
    o->socket_receive_buffer_size = RCVBUF_SIZE;
    lua_getfield(L, opts, "timeout");
    if (!lua_isnil(L, -1)) {
        double secs = lua_tonumber(L, -1);
        luaL_argcheck(L, lua_isnumber(L, -1) && secs > 0 && secs < 1e6, 1,
                      "timeout: number of seconds > 0 expected");
        o->timeout = (int)(secs * 1000 + 0.5) > 0 ? (int)(secs * 1000 + 0.5) : 1;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    lua_getfield(L, opts, "tries");
    if (!lua_isnil(L, -1)) {
        lua_Integer n = lua_tointeger(L, -1);
        luaL_argcheck(L, lua_isnumber(L, -1) && n >= 1 && n <= 100, 1,
                      "tries: integer 1 to 100 expected");
        o->tries = (int)n;
        mask |= ARES_OPT_TRIES;
    }
    lua_pop(L, 2);
    return mask;
}

/* resolver{ servers = { "ip[:port]", ... }, timeout = seconds, tries = n }:
 * without servers, those of resolv.conf; timeout is c-ares' first wait for
 * an answer (it doubles with each round over the servers) and tries the
 * rounds, by default resolv.conf's or c-ares' (5 s, 4). */
static int resolver_new(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = options_mask(L, 1, &o);
    const char *servers = servers_csv(L, 1); /* kept on the stack */
    resolver *res = lua_newuserdata(L, sizeof *res);
    memset(res, 0, sizeof *res);
    luaL_getmetatable(L, RESOLVER_MT);
    lua_setmetatable(L, -2);
    int err = uv_timer_init(rt_get(L)->loop, &res->h.uv.timer);
    if (err) return rt_fail(L, err);
    rt_handle_open(L, &res->h);
    res->h.on_close = on_close;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = res;
    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
        rt_handle_close(&res->h);
        return push_status(L, status);
    }
    status = ares_init_options(&res->channel, &o, mask);
    if (status != ARES_SUCCESS) {
        res->channel = NULL;
        ares_library_cleanup();
    } else if (servers) {
        status = ares_set_servers_ports_csv(res->channel, servers);
    }
    if (status != ARES_SUCCESS) {
        rt_handle_close(&res->h);
        return push_status(L, status);
    }
    return 1;
}

/* resolver:getaddrinfo(host, port, family, fn): family 0 (any), 4 or 6; port
 * may be nil. fn receives a list of { ip =, family = } (RFC 6724 order), or
 * nil, "ARES_ENAME: message", "ARES_ENAME"; always after getaddrinfo
 * returned. Returns the query, whose :cancel() means fn is not called. */
static int resolver_getaddrinfo(lua_State *L) {
    resolver *res = check_resolver(L);
    const char *host = luaL_checkstring(L, 2);
    lua_Integer port = luaL_optinteger(L, 3, -1);
    int family = (int)luaL_optinteger(L, 4, 0);
    luaL_argcheck(L, lua_isnoneornil(L, 3) || (port >= 0 && port <= 65535), 3, "must be a port");
    luaL_argcheck(L, family == 0 || family == 4 || family == 6, 4, "must be 0, 4 or 6");
    luaL_checktype(L, 5, LUA_TFUNCTION);
    query *q = lua_newuserdata(L, sizeof *q);
    memset(q, 0, sizeof *q);
    luaL_getmetatable(L, QUERY_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    q->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 5);
    q->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    q->res = res;
    q->next = res->queries;
    if (res->queries) res->queries->prev = q;
    res->queries = q;
    res->pending++;
    res->wanted++;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV;
    char service[8];
    snprintf(service, sizeof service, "%d", (int)port);
    q->starting = 1;
    ares_getaddrinfo(res->channel, host, port >= 0 ? service : NULL, &hints, on_answer, q);
    q->starting = 0;
    update_timer(res);
    return 1;
}

static int resolver_pending(lua_State *L) {
    resolver *res = luaL_checkudata(L, 1, RESOLVER_MT);
    lua_pushinteger(L, res->pending);
    return 1;
}

static int resolver_close(lua_State *L) {
    resolver *res = luaL_checkudata(L, 1, RESOLVER_MT);
    rt_handle_close(&res->h);
    return 0;
}

/* query:cancel() -> whether fn was still to be called (see end_unwanted). */
static int query_cancel(lua_State *L) {
    query *q = luaL_checkudata(L, 1, QUERY_MT);
    resolver *res = q->res;
    if (!res || q->cb_ref == LUA_NOREF) {
        lua_pushboolean(L, 0);
        return 1;
    }
    drop_cb(L, q);
    if (!res->processing) {
        end_unwanted(res);
        update_timer(res);
    }
    lua_pushboolean(L, 1);
    return 1;
}

int rt_open_ares(lua_State *L) {
    static const luaL_Reg resolver_methods[] = {{"getaddrinfo", resolver_getaddrinfo},
                                                {"pending", resolver_pending},
                                                {"close", resolver_close},
                                                {NULL, NULL}};
    static const luaL_Reg query_methods[] = {{"cancel", query_cancel}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{NULL, NULL}};
    rt_new_class(L, RESOLVER_MT, resolver_methods, meta);
    rt_new_class(L, QUERY_MT, query_methods, meta);
    lua_newtable(L);
    lua_pushcfunction(L, resolver_new);
    lua_setfield(L, -2, "resolver");
    return 1;
}
