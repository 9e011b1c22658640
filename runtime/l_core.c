/* lurl.core: the C side of the runtime as one Lua table. Everything here is
 * mechanism; the Lua library in lua/lurl builds the API on top of it. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include <ares.h>
#include <brotli/decode.h>
#include <idn2.h>
#include <libpsl.h>
#include <llhttp.h>
#include <luajit.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <zlib.h>
#include <zstd.h>

#include "rt.h"

/* The versions of the shared libraries are asked at run time, so they name
 * what is loaded; LuaJIT's and llhttp's are the ones compiled in. */
int lurl_versions(char *buf, size_t size) {
    uint32_t br = BrotliDecoderVersion(); /* major << 24 | minor << 12 | patch */
    return snprintf(buf, size,
                    "lurl %s, MIT License\n%s\nlibuv %s\nllhttp %d.%d.%d\n%s\nzlib %s\n"
                    "brotli %u.%u.%u\nzstd %s\nlibpsl %s\nlibidn2 %s\nc-ares %s\nnghttp2 %s",
                    LURL_VERSION, LUAJIT_VERSION, uv_version_string(), LLHTTP_VERSION_MAJOR,
                    LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, OpenSSL_version(OPENSSL_VERSION),
                    zlibVersion(), (unsigned)(br >> 24), (unsigned)(br >> 12 & 0xfff),
                    (unsigned)(br & 0xfff), ZSTD_versionString(), psl_get_version(),
                    idn2_check_version(NULL), ares_version(NULL), nghttp2_version(0)->version_str);
}

/* Monotonic seconds with sub-microsecond resolution. */
static int l_now(lua_State *L) {
    lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
    return 1;
}

/* Open file descriptors of this process (leak checks in specs and tools). */
static int l_open_fds(lua_State *L) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return rt_fail(L, UV_ENOSYS);
    int n = -1; /* the directory stream's own descriptor */
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    lua_pushinteger(L, n);
    return 1;
}

/* raise_nofile() -> the soft limit on open files after raising it to the
 * hard limit (a command holding thousands of sockets asks for it, as servers
 * do); the soft limit as it was when raising is not allowed. */
static int l_raise_nofile(lua_State *L) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return rt_fail(L, uv_translate_sys_error(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = was;
    }
    lua_pushnumber(L, rl.rlim_cur == RLIM_INFINITY ? 1e9 : (lua_Number)rl.rlim_cur);
    return 1;
}

/* set_drain(fn): the scheduler's function that runs ready tasks; the runtime
 * calls it after every callback into Lua (lurl.sched sets it once). */
static int l_set_drain(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lurl_runtime *rt = rt_get(L);
    luaL_unref(L, LUA_REGISTRYINDEX, rt->drain_ref);
    lua_pushvalue(L, 1);
    rt->drain_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* random_bytes(n) -> n bytes from the OS's random source (getrandom):
 * multipart boundaries and, later, WebSocket masking keys must not be
 * predictable. */
static int l_random_bytes(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 65536, 1, "must be 0 to 65536");
    char *buf = lua_newuserdata(L, (size_t)n + 1);
    int r = uv_random(NULL, NULL, buf, (size_t)n, 0, NULL);
    if (r != 0) return rt_fail(L, r);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_versions(lua_State *L) {
    int n = lurl_versions(NULL, 0);
    char *buf = lua_newuserdata(L, (size_t)n + 1);
    lurl_versions(buf, (size_t)n + 1);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

int rt_open_core(lua_State *L) {
    static const luaL_Reg fns[] = {{"now", l_now},
                                   {"open_fds", l_open_fds},
                                   {"raise_nofile", l_raise_nofile},
                                   {"versions", l_versions},
                                   {"set_drain", l_set_drain},
                                   {"random_bytes", l_random_bytes},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushliteral(L, LURL_VERSION);
    lua_setfield(L, -2, "version");
    rt_open_timer(L);
    lua_setfield(L, -2, "timer");
    rt_open_signal(L);
    lua_setfield(L, -2, "signal");
    rt_open_dns(L);
    lua_setfield(L, -2, "getaddrinfo");
    rt_open_ares(L);
    lua_setfield(L, -2, "ares");
    rt_open_stream(L);
    lua_setfield(L, -3, "pipe");
    lua_setfield(L, -2, "tcp");
    /* the submodules that push one table each */
    static const luaL_Reg subs[] = {{"h1", rt_open_h1},         {"tls", rt_open_tls},
                                    {"domain", rt_open_domain}, {"codec", rt_open_codec},
                                    {"fs", rt_open_fs},         {"ws", rt_open_ws},
                                    {"h2", rt_open_h2},         {NULL, NULL}};
    for (const luaL_Reg *m = subs; m->name; m++) {
        m->func(L);
        lua_setfield(L, -2, m->name);
    }
    return 1;
}
