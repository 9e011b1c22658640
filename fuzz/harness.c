/* One lurl runtime per fuzzing process, a Lua driver per target, and Lua line
 * coverage fed to libFuzzer as extra 8-bit counters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <luajit.h>

#include "harness.h"
#include "lurl.h"

/* libFuzzer's interface for code the compiler did not instrument. */
void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop);
void __sanitizer_cov_pcs_init(const uintptr_t *pcs_beg, const uintptr_t *pcs_end);

#define LUA_EDGES (1 << 16)

/* Page-aligned: libFuzzer scans whole pages of counters fastest. */
static uint8_t lua_counters[LUA_EDGES] __attribute__((aligned(4096)));
/* One (pc, flags) pair per counter, so that libFuzzer's coverage count
 * (cov:) includes Lua edges; the "pcs" are the counters' addresses, which
 * are unique and never executed. */
static uintptr_t lua_pcs[2 * LUA_EDGES];
static uint32_t prev_loc;

static lurl_runtime *rt;
static int driver_ref = LUA_NOREF;
static int traceback_ref = LUA_NOREF;

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Compared by hand: libFuzzer hooks strncmp and memcmp, and would take the
 * chunk names for dictionary words. */
static int in_library(const char *source) {
    static const char prefix[] = "@lurl/";
    for (size_t i = 0; i < sizeof prefix - 1; i++)
        if (source[i] != prefix[i]) return 0;
    return 1;
}

/* AFL-style edges between lines of the lurl library: a line alone would not
 * tell which branch led to it. The drivers' own lines are left out: their
 * loops would reward inputs for nothing but their length. */
static void line_hook(lua_State *L, lua_Debug *ar) {
    if (!lua_getinfo(L, "S", ar) || !in_library(ar->source)) return;
    uint32_t loc = fnv1a(ar->source) ^ (uint32_t)ar->currentline * 2654435761u;
    uint8_t *c = &lua_counters[(loc ^ prev_loc) & (LUA_EDGES - 1)];
    if (*c != UINT8_MAX) (*c)++;
    prev_loc = loc >> 1;
}

/* Interpreted code calls the hook on every line; compiled traces would skip
 * it, so the JIT is off. */
static void cover_lua(lua_State *L) {
    for (size_t i = 0; i < LUA_EDGES; i++)
        lua_pcs[2 * i] = (uintptr_t)&lua_counters[i];
    __sanitizer_cov_8bit_counters_init(lua_counters, lua_counters + LUA_EDGES);
    __sanitizer_cov_pcs_init(lua_pcs, lua_pcs + 2 * LUA_EDGES);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

/* fuzz_split(s, seed) -> the pieces in which s arrives: whole for seed 0,
 * else of pseudo-random lengths (MINSTD) up to a bound the seed also sets,
 * from single bytes to 8 KiB. */
static int l_split(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uint32_t seed = (uint32_t)luaL_checkinteger(L, 2) & 0xff;
    uint64_t x = seed;
    uint32_t max = seed < 128 ? seed : (seed - 127) * 64;
    lua_newtable(L);
    int n = 0;
    for (size_t at = 0; at < len;) {
        size_t piece = len - at;
        if (seed) {
            x = x * 48271 % 2147483647;
            if (1 + x % max < piece) piece = 1 + x % max;
        }
        lua_pushlstring(L, s + at, piece);
        lua_rawseti(L, -2, ++n);
        at += piece;
    }
    return 1;
}

static int traceback(lua_State *L) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* lua_close runs the finalizers that free what C libraries allocated for
 * Lua objects (the public suffix list), which LeakSanitizer checks at exit. */
static void free_runtime(void) {
    lurl_free(rt);
}

/* The public suffix list is loaded once, on first use, and stays referenced
 * only from a userdata in LuaJIT's heap, which LeakSanitizer does not scan:
 * a leak check run in any later input would report it. */
const char *__lsan_default_suppressions(void) {
    return "leak:psl_latest\n";
}

/* A finding's report names the call path, not only the line. */
const char *__ubsan_default_options(void) {
    return "print_stacktrace=1";
}

static void die(lua_State *L, const char *what) {
    fprintf(stderr, "lurl fuzz: %s: %s\n", what, lua_tostring(L, -1));
    abort();
}

void fuzz_init(const unsigned char *driver, size_t size, const char *name) {
    rt = lurl_new(NULL);
    if (!rt) {
        fprintf(stderr, "lurl fuzz: no memory for a runtime\n");
        abort();
    }
    atexit(free_runtime);
    lua_State *L = lurl_state(rt);
    cover_lua(L);
    lurl_register(rt, "fuzz_split", l_split, NULL);
    lua_pushcfunction(L, traceback);
    traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, traceback_ref);
    if (luaL_loadbuffer(L, (const char *)driver, size, name) != 0) die(L, "cannot load the driver");
    if (lua_pcall(L, 0, 1, -2) != 0) die(L, "the driver's set-up failed");
    if (!lua_isfunction(L, -1)) die(L, "the driver chunk must return a function");
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
}

lua_State *fuzz_driver(void) {
    lua_State *L = lurl_state(rt);
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    return L;
}

void fuzz_run(int nargs) {
    lua_State *L = lurl_state(rt);
    int base = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, traceback_ref);
    lua_insert(L, base);
    prev_loc = 0;
    if (lua_pcall(L, nargs, 0, base) != 0) die(L, "finding");
    lua_pop(L, 1);
    lua_gc(L, LUA_GCCOLLECT, 0);
}
