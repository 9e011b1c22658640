/* lurl.core.signal: a libuv signal watcher that calls a Lua function, so a
 * script (the fetch command) can stop cleanly on Ctrl-C instead of being
 * killed with half its work unreported. */
#include <signal.h>
#include <string.h>

#include "rt.h"

#define SIGNAL_MT "lurl.signal"

typedef struct {
    rt_handle h;
    int cb_ref;
} l_signal;

/* The signals a script may watch, by name: the ones that ask a process to
 * stop. Names rather than numbers keep scripts portable. */
static const struct {
    const char *name;
    int signum;
} names[] = {{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGHUP", SIGHUP}, {NULL, 0}};

static int signum_of(lua_State *L, int idx) {
    const char *name = luaL_checkstring(L, idx);
    for (int i = 0; names[i].name; i++)
        if (!strcmp(names[i].name, name)) return names[i].signum;
    return luaL_argerror(L, idx, "SIGINT, SIGTERM or SIGHUP expected");
}

static void on_signal(uv_signal_t *uvs, int signum) {
    l_signal *s = uvs->data;
    for (int i = 0; names[i].name; i++)
        if (names[i].signum == signum) {
            rt_push_ref(s->h.rt, s->cb_ref);
            lua_pushstring(s->h.rt->L, names[i].name);
            rt_callback(s->h.rt, 1);
            return;
        }
}

/* signal(name, fn) -> watcher: fn(name) runs each time the signal arrives,
 * instead of its default action, until watcher:close(). The watcher does not
 * keep the loop alive (watcher:ref(true) makes it): a script that waits for
 * nothing else ends as it would without it. */
static int signal_new(lua_State *L) {
    int signum = signum_of(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    l_signal *s = lua_newuserdata(L, sizeof *s);
    luaL_getmetatable(L, SIGNAL_MT);
    lua_setmetatable(L, -2);
    s->cb_ref = LUA_NOREF;
    int err = uv_signal_init(rt_get(L)->loop, &s->h.uv.signal);
    if (err) return rt_fail(L, err);
    rt_handle_open(L, &s->h);
    err = uv_signal_start(&s->h.uv.signal, on_signal, signum);
    if (err) {
        rt_handle_close(&s->h);
        return rt_fail(L, err);
    }
    rt_handle_ref(&s->h, 0);
    lua_pushvalue(L, 2);
    s->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* watcher:close(): the signal's default action is back. */
static int signal_close(lua_State *L) {
    l_signal *s = luaL_checkudata(L, 1, SIGNAL_MT);
    if (s->h.closed) return 0;
    luaL_unref(L, LUA_REGISTRYINDEX, s->cb_ref);
    s->cb_ref = LUA_NOREF;
    rt_handle_close(&s->h);
    return 0;
}

static int signal_ref(lua_State *L) {
    l_signal *s = luaL_checkudata(L, 1, SIGNAL_MT);
    luaL_argcheck(L, !s->h.closed, 1, "signal watcher is closed");
    rt_handle_ref(&s->h, lua_toboolean(L, 2));
    return 0;
}

int rt_open_signal(lua_State *L) {
    static const luaL_Reg methods[] = {{"close", signal_close}, {"ref", signal_ref}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{NULL, NULL}};
    rt_new_class(L, SIGNAL_MT, methods, meta);
    lua_pushcfunction(L, signal_new);
    return 1;
}
