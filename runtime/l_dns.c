/* lurl.core.getaddrinfo: asynchronous name resolution on libuv's thread pool. */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct {
    uv_getaddrinfo_t req;
    lurl_runtime *rt;
    int cb_ref;
} dns_req;

int rt_push_addr(lua_State *L, int n, const struct sockaddr *sa) {
    char ip[64];
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
    else
        return n;
    /* resolvers list an address once per socket type unless hinted; keep the
     * first of each. */
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "ip");
        int dup = strcmp(lua_tostring(L, -1), ip) == 0;
        lua_pop(L, 2);
        if (dup) return n;
    }
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "ip");
    lua_pushinteger(L, sa->sa_family == AF_INET6 ? 6 : 4);
    lua_setfield(L, -2, "family");
    lua_rawseti(L, -2, ++n);
    return n;
}

static void push_addrs(lua_State *L, const struct addrinfo *res) {
    lua_newtable(L);
    int n = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n = rt_push_addr(L, n, ai->ai_addr);
}

static void on_resolved(uv_getaddrinfo_t *uvreq, int status, struct addrinfo *res) {
    dns_req *r = uvreq->data;
    lurl_runtime *rt = r->rt;
    lua_State *L = rt->L;
    rt->pending_reqs--;
    rt_push_ref(rt, r->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->cb_ref);
    if (status == 0) {
        push_addrs(L, res);
        rt_callback(rt, 1);
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
        lua_pushstring(L, uv_err_name(status));
        rt_callback(rt, 3);
    }
    uv_freeaddrinfo(res);
    free(r);
}

/* getaddrinfo(host, family, fn): family 0 (any), 4 or 6. fn receives a list of
 * {ip=, family=} in the resolver's order, or nil, "ENAME: message", "ENAME". */
static int l_getaddrinfo(lua_State *L) {
    const char *host = luaL_checkstring(L, 1);
    int family = (int)luaL_optinteger(L, 2, 0);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_argcheck(L, family == 0 || family == 4 || family == 6, 2, "must be 0, 4 or 6");
    lurl_runtime *rt = rt_get(L);
    dns_req *r = malloc(sizeof *r);
    if (!r) return luaL_error(L, "out of memory");
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->rt = rt;
    r->req.data = r;
    int err = uv_getaddrinfo(rt->loop, &r->req, on_resolved, host, NULL, &hints);
    if (err) {
        free(r);
        return rt_fail(L, err);
    }
    lua_pushvalue(L, 3);
    r->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rt->pending_reqs++;
    lua_pushboolean(L, 1);
    return 1;
}

int rt_open_dns(lua_State *L) {
    lua_pushcfunction(L, l_getaddrinfo);
    return 1;
}
