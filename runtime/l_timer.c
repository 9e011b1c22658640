/* lurl.core timers: one-shot libuv timers that call a Lua function.
 * The scheduler keeps one per task and restarts it for every timed wait. */
#include <math.h>

#include "rt.h"

#define TIMER_MT "lurl.timer"

typedef struct {
    rt_handle h;
    int cb_ref;
} l_timer;

static l_timer *check_timer(lua_State *L) {
    l_timer *t = luaL_checkudata(L, 1, TIMER_MT);
    if (t->h.closed) luaL_argerror(L, 1, "timer is closed");
    return t;
}

static void drop_cb(l_timer *t) {
    luaL_unref(t->h.rt->L, LUA_REGISTRYINDEX, t->cb_ref);
    t->cb_ref = LUA_NOREF;
}

/* The callback stays referenced after it fired: the scheduler restarts one
 * timer per task with the same function for every timed wait, and keeping
 * the reference saves a registry round trip each time. */
static void on_timer(uv_timer_t *uvt) {
    l_timer *t = uvt->data;
    rt_push_ref(t->h.rt, t->cb_ref);
    rt_callback(t->h.rt, 0);
}

/* Whether the function at idx is the one already referenced. */
static int same_cb(lua_State *L, l_timer *t, int idx) {
    if (t->cb_ref == LUA_NOREF) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->cb_ref);
    int same = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    return same;
}

static int timer_new(lua_State *L) {
    l_timer *t = lua_newuserdata(L, sizeof *t);
    luaL_getmetatable(L, TIMER_MT);
    lua_setmetatable(L, -2);
    t->cb_ref = LUA_NOREF;
    int err = uv_timer_init(rt_get(L)->loop, &t->h.uv.timer);
    if (err) return rt_fail(L, err);
    rt_handle_open(L, &t->h);
    return 1;
}

/* timer:start(seconds, fn): fire fn once after seconds (a fraction is kept to
 * the millisecond, rounded up so a deadline is never early). */
static int timer_start(lua_State *L) {
    l_timer *t = check_timer(L);
    double secs = luaL_checknumber(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_argcheck(L, secs >= 0 && secs < 1e9, 2, "must be a number of seconds >= 0");
    if (!same_cb(L, t, 3)) {
        drop_cb(t);
        lua_pushvalue(L, 3);
        t->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    /* libuv's clock counts whole milliseconds rounded down, so a timer of ms
     * may fire up to 1 ms early in real time: one more keeps it never early. */
    uint64_t ms = (uint64_t)ceil(secs * 1000.0 - 1e-6);
    if (ms > 0) ms++;
    uv_update_time(t->h.rt->loop); /* count from now, not from the last loop turn */
    uv_timer_start(&t->h.uv.timer, on_timer, ms, 0);
    return 0;
}

/* timer:stop(): the callback stays referenced for the next start (it is
 * released by close). */
static int timer_stop(lua_State *L) {
    l_timer *t = check_timer(L);
    uv_timer_stop(&t->h.uv.timer);
    return 0;
}

static int timer_close(lua_State *L) {
    l_timer *t = luaL_checkudata(L, 1, TIMER_MT);
    if (t->h.closed) return 0;
    drop_cb(t);
    rt_handle_close(&t->h);
    return 0;
}

/* timer:ref(false) lets the loop end while the timer is pending. */
static int timer_ref(lua_State *L) {
    l_timer *t = check_timer(L);
    rt_handle_ref(&t->h, lua_toboolean(L, 2));
    return 0;
}

int rt_open_timer(lua_State *L) {
    static const luaL_Reg methods[] = {{"start", timer_start},
                                       {"stop", timer_stop},
                                       {"close", timer_close},
                                       {"ref", timer_ref},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{NULL, NULL}};
    rt_new_class(L, TIMER_MT, methods, meta);
    lua_pushcfunction(L, timer_new);
    return 1;
}
