/* Runtime lifecycle: the Lua state, the module loader, tasks started from C,
 * and the bookkeeping of libuv handles owned by Lua userdata. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "rt.h"

static const char RT_KEY = 0; /* registry key of the light userdata runtime */

lurl_runtime *rt_get(lua_State *L) {
    lua_pushlightuserdata(L, (void *)&RT_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lurl_runtime *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
}

static int traceback(lua_State *L) {
    if (!lua_isstring(L, 1) && !lua_isnil(L, 1) && luaL_callmeta(L, 1, "__tostring"))
        lua_replace(L, 1);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

void rt_callback(lurl_runtime *rt, int nargs) {
    lua_State *L = rt->L;
    if (rt->shutting_down) {
        lua_pop(L, nargs + 1);
        return;
    }
    int base = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->traceback_ref); /* made once: no allocation per call */
    lua_insert(L, base);
    if (lua_pcall(L, nargs, 0, base) != 0) {
        fprintf(stderr, "lurl: error in callback: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    /* Then run the tasks the callback made ready. Doing it here, outside the
     * callback, keeps the scheduler's loop out of the callbacks' JIT traces. */
    if (rt->drain_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, rt->drain_ref);
        if (lua_pcall(L, 0, 0, base) != 0) {
            fprintf(stderr, "lurl: error in the scheduler: %s\n", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_remove(L, base);
}

void rt_push_ref(lurl_runtime *rt, int ref) {
    lua_rawgeti(rt->L, LUA_REGISTRYINDEX, ref);
}

int rt_fail(lua_State *L, int uverr) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", uv_err_name(uverr), uv_strerror(uverr));
    lua_pushstring(L, uv_err_name(uverr));
    return 3;
}

int rt_buf_reserve(rt_buf *b, size_t need, size_t limit) {
    if (b->cap - b->len >= need) return 0;
    size_t cap = b->cap ? b->cap : need;
    while (cap - b->len < need)
        cap *= 2;
    if (cap > limit && limit >= b->len && limit - b->len >= need) cap = limit;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int rt_buf_append(rt_buf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (rt_buf_reserve(b, n, SIZE_MAX)) return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void rt_buf_release(rt_buf *b, size_t keep) {
    b->len = 0;
    if (b->cap <= keep) return;
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

void rt_new_class(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta) {
    luaL_newmetatable(L, name);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    luaL_register(L, NULL, meta);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* ---- handles ---- */

void rt_handle_open(lua_State *L, rt_handle *h) {
    lurl_runtime *rt = rt_get(L);
    h->rt = rt;
    h->closed = 0;
    h->on_close = NULL;
    h->uv.handle.data = h;
    lua_pushvalue(L, -1);
    h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    h->prev = NULL;
    h->next = rt->handles;
    if (rt->handles) rt->handles->prev = h;
    rt->handles = h;
}

void rt_handle_ref(rt_handle *h, int ref) {
    if (ref)
        uv_ref(&h->uv.handle);
    else
        uv_unref(&h->uv.handle);
}

static void handle_closed(uv_handle_t *uvh) {
    rt_handle *h = uvh->data;
    lurl_runtime *rt = h->rt;
    if (h->prev)
        h->prev->next = h->next;
    else
        rt->handles = h->next;
    if (h->next) h->next->prev = h->prev;
    luaL_unref(rt->L, LUA_REGISTRYINDEX, h->self_ref);
}

void rt_handle_close(rt_handle *h) {
    if (h->closed) return;
    h->closed = 1;
    if (h->on_close) h->on_close(h);
    uv_close(&h->uv.handle, handle_closed);
}

/* ---- module loading ---- */

/* package.loaders entry: a development tree named by LURL_LUA_PATH first, then
 * the bytecode compiled into the binary. */
static int load_embedded(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *dev = getenv("LURL_LUA_PATH");
    if (dev && *dev && strncmp(name, "lurl", 4) == 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, dev);
        luaL_addchar(&b, '/');
        for (const char *p = name; *p; p++)
            luaL_addchar(&b, *p == '.' ? '/' : *p);
        luaL_pushresult(&b);
        const char *file = lua_tostring(L, -1);
        lua_pushfstring(L, "%s.lua", file);
        FILE *f = fopen(lua_tostring(L, -1), "r");
        if (!f) {
            lua_pop(L, 1);
            lua_pushfstring(L, "%s/init.lua", file);
            f = fopen(lua_tostring(L, -1), "r");
        }
        if (f) {
            fclose(f);
            if (luaL_loadfile(L, lua_tostring(L, -1)) != 0) return lua_error(L);
            return 1;
        }
        lua_pop(L, 2);
    }
    for (const rt_module *m = rt_modules; m->name; m++) {
        if (strcmp(m->name, name) == 0) {
            if (luaL_loadbuffer(L, (const char *)m->code, m->size, name) != 0) return lua_error(L);
            return 1;
        }
    }
    lua_pushfstring(L, "\n\tno module '%s' embedded in lurl", name);
    return 1;
}

static void install_loader(lua_State *L) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaders");
    int n = (int)lua_objlen(L, -1);
    for (int i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, load_embedded);
    lua_rawseti(L, -2, 2);
    lua_getfield(L, -2, "preload");
    lua_pushcfunction(L, rt_open_core);
    lua_setfield(L, -2, "lurl.core");
    lua_pop(L, 3);
}

/* ---- lifecycle ---- */

/* os.exit(status) for scripts. A runtime may live in a host's process, which
 * only the host may end: the status is recorded for lurl_exit_status (the
 * low 8 bits, as exit() would pass them on), the loop stops, and the calling
 * task unwinds with an error saying so. */
static int os_exit(lua_State *L) {
    int status = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE)
                                     : (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    lurl_runtime *rt = rt_get(L);
    rt->exit_status = status & 0xff;
    uv_stop(rt->loop);
    lua_pushfstring(L, "os.exit(%d)", rt->exit_status);
    return lua_error(L);
}

static void install_os_exit(lua_State *L) {
    lua_getglobal(L, "os");
    lua_pushcfunction(L, os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
}

/* A peer closing a socket we write to must be an error return, not a signal
 * that ends the process. A host's own SIGPIPE handler is left alone. */
static void ignore_sigpipe(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* LuaJIT never seeds math.random, so every process would draw the same
 * retry jitter and clients restarted together would retry in lockstep: the
 * thundering herd jitter exists to prevent. Seeded once per runtime from the
 * OS; policies take an rng option for deterministic tests. */
static void seed_random(lua_State *L) {
    uint64_t bits;
    if (uv_random(NULL, NULL, &bits, sizeof bits, 0, NULL) != 0) return;
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushnumber(L, (lua_Number)(bits >> 11)); /* 53 bits: exact in a double */
    if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1);
    lua_pop(L, 1);
}

lurl_runtime *lurl_new(uv_loop_t *loop) {
    ignore_sigpipe();
    lurl_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    if (loop) {
        rt->loop = loop;
    } else {
        if (uv_loop_init(&rt->own_loop) != 0) {
            free(rt);
            return NULL;
        }
        rt->loop = &rt->own_loop;
        rt->owns_loop = 1;
    }
    rt->L = luaL_newstate();
    if (!rt->L) {
        if (rt->owns_loop) uv_loop_close(&rt->own_loop);
        free(rt);
        return NULL;
    }
    luaL_openlibs(rt->L);
    seed_random(rt->L);
    lua_pushlightuserdata(rt->L, (void *)&RT_KEY);
    lua_pushlightuserdata(rt->L, rt);
    lua_rawset(rt->L, LUA_REGISTRYINDEX);
    lua_pushcfunction(rt->L, traceback);
    rt->traceback_ref = luaL_ref(rt->L, LUA_REGISTRYINDEX);
    rt->drain_ref = LUA_NOREF;
    rt->exit_status = -1;
    install_loader(rt->L);
    install_os_exit(rt->L);
    return rt;
}

void lurl_free(lurl_runtime *rt) {
    if (!rt) return;
    rt->shutting_down = 1;
    for (rt_handle *h = rt->handles; h; h = h->next)
        rt_handle_close(h);
    while (rt->handles || rt->pending_reqs)
        uv_run(rt->loop, UV_RUN_ONCE);
    lua_close(rt->L);
    if (rt->owns_loop) {
        uv_run(&rt->own_loop, UV_RUN_DEFAULT);
        uv_loop_close(&rt->own_loop);
    }
    free(rt);
}

uv_loop_t *lurl_loop(lurl_runtime *rt) {
    return rt->loop;
}

lua_State *lurl_state(lurl_runtime *rt) {
    return rt->L;
}

int lurl_run(lurl_runtime *rt) {
    return uv_run(rt->loop, UV_RUN_DEFAULT);
}

void lurl_register(lurl_runtime *rt, const char *name, lua_CFunction fn, void *ud) {
    lua_pushlightuserdata(rt->L, ud);
    lua_pushcclosure(rt->L, fn, 1);
    lua_setglobal(rt->L, name);
}

void lurl_set_args(lurl_runtime *rt, int argc, char **argv, int script) {
    lua_State *L = rt->L;
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* ---- tasks started from C ---- */

/* Whether the finished task in host_done's third upvalue raised nil. Joining
 * a finished task returns its raw error value at once. */
static int raised_nil(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_getfield(L, -1, "join");
    lua_insert(L, -2);
    lua_call(L, 1, 2);
    int is_nil = lua_isnil(L, -1);
    lua_pop(L, 2);
    return is_nil;
}

/* The scheduler calls this C closure with (ok, results...) when a task started
 * by lurl_call ends; it hands them to the host's callback. A raised nil stays
 * nil rather than becoming a traceback: it is lua.c's way to fail without a
 * message, which busted uses to end a run that had failures. */
static int host_done(lua_State *L) {
    lurl_done_cb done = (lurl_done_cb)(uintptr_t)lua_touserdata(L, lua_upvalueindex(1));
    void *ud = lua_touserdata(L, lua_upvalueindex(2));
    int ok = lua_toboolean(L, 1);
    if (!ok && raised_nil(L)) {
        lua_pushnil(L);
        lua_replace(L, 2);
    }
    done(rt_get(L), ok, L, lua_gettop(L) - 1, ud);
    return 0;
}

/* Called by rt_callback with (host_spawn, on_done, fn, args...): spawns the
 * task and hands it to on_done before the drain that follows can run it. */
static int spawn_host_task(lua_State *L) {
    lua_pushvalue(L, 2);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 2, 1);
    if (lua_iscfunction(L, 1)) lua_setupvalue(L, 1, 3);
    return 0;
}

static int sched_fn(lua_State *L, const char *fn) {
    lua_getglobal(L, "require");
    lua_pushstring(L, "lurl.sched");
    if (lua_pcall(L, 1, 1, 0) != 0) return -1;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    return 0;
}

static void report_early(lurl_runtime *rt, lurl_done_cb done, void *ud) {
    lua_State *L = rt->L;
    if (done)
        done(rt, 0, L, 1, ud);
    else
        fprintf(stderr, "lurl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
}

int lurl_call(lurl_runtime *rt, int nargs, lurl_done_cb done, void *ud) {
    lua_State *L = rt->L;
    if (rt->shutting_down) {
        lua_pop(L, nargs + 1);
        return -1;
    }
    int fidx = lua_gettop(L) - nargs;
    if (sched_fn(L, "host_spawn") != 0) {
        lua_replace(L, fidx);
        lua_settop(L, fidx);
        report_early(rt, done, ud);
        return 0;
    }
    lua_insert(L, fidx);
    if (done) {
        lua_pushlightuserdata(L, (void *)(uintptr_t)done);
        lua_pushlightuserdata(L, ud);
        lua_pushnil(L); /* the task, set by spawn_host_task */
        lua_pushcclosure(L, host_done, 3);
    } else {
        lua_pushnil(L); /* a plain task: a failure nobody joins is reported */
    }
    lua_insert(L, fidx + 1);
    lua_pushcfunction(L, spawn_host_task);
    lua_insert(L, fidx);
    rt_callback(rt, nargs + 3);
    return 0;
}

static int push_script_args(lua_State *L) {
    lua_getglobal(L, "arg");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    int n = (int)lua_objlen(L, -1);
    luaL_checkstack(L, n, "too many arguments");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    return n;
}

int lurl_do_file(lurl_runtime *rt, const char *path, lurl_done_cb done, void *ud) {
    lua_State *L = rt->L;
    if (path && strcmp(path, "-") == 0) path = NULL;
    if (luaL_loadfile(L, path) != 0) {
        report_early(rt, done, ud);
        return 0;
    }
    return lurl_call(rt, push_script_args(L), done, ud);
}

int lurl_do_string(lurl_runtime *rt, const char *code, const char *chunkname, lurl_done_cb done,
                   void *ud) {
    lua_State *L = rt->L;
    if (luaL_loadbuffer(L, code, strlen(code), chunkname ? chunkname : "=(string)") != 0) {
        report_early(rt, done, ud);
        return 0;
    }
    return lurl_call(rt, 0, done, ud);
}

int lurl_exit_status(lurl_runtime *rt) {
    return rt->exit_status;
}

int lurl_unjoined_failures(lurl_runtime *rt) {
    lua_State *L = rt->L;
    if (sched_fn(L, "unjoined_failures") != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        lua_pop(L, 1);
        return 0;
    }
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}
