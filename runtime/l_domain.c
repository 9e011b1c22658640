/* core.domain: host names. The public suffix list (libpsl, the system's
 * list from Debian's publicsuffix package, or libpsl's built-in one) decides
 * which domains may carry cookies (RFC 6265 section 5.3 step 5); IDNA
 * (libidn2, UTS #46 non-transitional as browsers and curl) turns Unicode
 * host names into the ASCII (punycode) form that goes on the wire. */
#include <stdlib.h>

#include <idn2.h>
#include <libpsl.h>

#include "rt.h"

#define PSL_MT "lurl.psl"

typedef struct {
    const psl_ctx_t *psl;
    int builtin;
} l_psl;

/* The list, loaded once per runtime and kept as the upvalue's userdata. */
static const psl_ctx_t *get_psl(lua_State *L) {
    l_psl *p = lua_touserdata(L, lua_upvalueindex(1));
    if (!p->psl) {
        psl_ctx_t *latest = psl_latest(NULL);
        p->psl = latest ? latest : psl_builtin();
        p->builtin = !latest;
    }
    if (!p->psl) luaL_error(L, "no public suffix list (libpsl has none built in)");
    return p->psl;
}

static int psl_gc(lua_State *L) {
    l_psl *p = luaL_checkudata(L, 1, PSL_MT);
    if (p->psl && !p->builtin) psl_free((psl_ctx_t *)p->psl);
    p->psl = NULL;
    return 0;
}

/* is_public_suffix(domain) -> boolean ("com", "co.uk", "github.io"). */
static int l_is_public_suffix(lua_State *L) {
    const char *domain = luaL_checkstring(L, 1);
    lua_pushboolean(L, psl_is_public_suffix2(get_psl(L), domain, PSL_TYPE_ANY));
    return 1;
}

/* registrable_domain(host) -> the public suffix plus one label
 * ("www.example.co.uk" -> "example.co.uk"), or nil. */
static int l_registrable_domain(lua_State *L) {
    const char *d = psl_registrable_domain(get_psl(L), luaL_checkstring(L, 1));
    if (!d) return 0;
    lua_pushstring(L, d);
    return 1;
}

/* psl_source() -> "system" or "builtin": which list is in use. */
static int l_psl_source(lua_State *L) {
    get_psl(L);
    l_psl *p = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushstring(L, p->builtin ? "builtin" : "system");
    return 1;
}

/* to_ascii(host) -> ASCII host name, or nil, "EIDNA: reason", "EIDNA". */
static int l_to_ascii(lua_State *L) {
    const char *host = luaL_checkstring(L, 1);
    char *out = NULL;
    int rc = idn2_to_ascii_8z(host, &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "EIDNA: %s", idn2_strerror(rc));
        lua_pushliteral(L, "EIDNA");
        return 3;
    }
    lua_pushstring(L, out);
    idn2_free(out);
    return 1;
}

int rt_open_domain(lua_State *L) {
    static const luaL_Reg fns[] = {{"is_public_suffix", l_is_public_suffix},
                                   {"registrable_domain", l_registrable_domain},
                                   {"psl_source", l_psl_source},
                                   {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", psl_gc}, {NULL, NULL}};
    static const luaL_Reg none[] = {{NULL, NULL}};
    rt_new_class(L, PSL_MT, none, meta);
    lua_newtable(L);
    l_psl *p = lua_newuserdata(L, sizeof *p);
    p->psl = NULL;
    p->builtin = 0;
    luaL_getmetatable(L, PSL_MT);
    lua_setmetatable(L, -2);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -3, f->name);
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_to_ascii);
    lua_setfield(L, -2, "to_ascii");
    return 1;
}
