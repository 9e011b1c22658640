/*
 * host.c - embedding lurl in a program that owns its event loop.
 *
 * The host stands for any C program built around libuv: it has its own loop
 * and its own work on it (here a timer every 10 ms). lurl is created on that
 * same loop, so a Lua HTTP request that waits for the network simply yields
 * to the loop: the host keeps ticking meanwhile, with no extra thread and no
 * polling, and learns the outcome through a completion callback.
 *
 * It doubles as a test (ctest -R embed_host): it exits 0 when every check
 * passes and says what failed otherwise. It needs no network beyond
 * 127.0.0.1: the HTTP server it talks to runs inside the same runtime.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lurl.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "embed_host: FAILED %s: ", #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/*
 * The Lua half of the program. Globals are how the host finds what it calls
 * later with lua_getglobal + lurl_call; host_log is a C function the host
 * registers below.
 */
static const char setup_lua[] =
    "local lurl = require 'lurl'\n"
    "local testing = require 'lurl.testing'\n"
    "\n"
    "-- The route answers after 0.2 s: long enough for the host's 10 ms timer\n"
    "-- to tick many times while a request waits for it.\n"
    "server = testing.server { routes = {\n"
    "  ['/'] = function() return { delay = 0.2, body = 'hello from lurl' } end,\n"
    "} }\n"
    "server_url = server:url('/')\n"
    "local session = lurl.session()\n"
    "\n"
    "function fetch(url)\n"
    "  local resp, err = session:get(url)\n"
    "  if not resp then error(err, 0) end\n"
    "  local body = resp:text()\n"
    "  host_log(('GET %s -> %d, %d bytes'):format(url, resp.status, #body))\n"
    "  return resp.status, #body\n"
    "end\n"
    "\n"
    "-- Fails after a blocking call, so the error crosses a yield on its way to\n"
    "-- the host.\n"
    "function broken()\n"
    "  lurl.sleep(0.01)\n"
    "  local missing\n"
    "  return missing.field\n"
    "end\n"
    "\n"
    "-- os.exit must not end the host's process: the host reads the status.\n"
    "function quit() os.exit(5) end\n"
    "\n"
    "-- A failure without a value (lua's quiet failure) reaches the host as nil.\n"
    "function fail_quietly() error() end\n"
    "\n"
    "-- Nothing lurl owns may keep the host's loop alive once this has run.\n"
    "function shutdown()\n"
    "  session:close()\n"
    "  server:close()\n"
    "end\n";

struct host {
    uv_loop_t loop;
    uv_timer_t tick;
    lurl_runtime *rt;
    long ticks;
    long ticks_at_fetch; /* ticks when the fetch was started */
    /* outcomes of the Lua calls, filled in by their completion callbacks */
    int setup_done, setup_ok;
    int fetch_done, fetch_ok, fetch_ticks;
    lua_Integer status, length;
    int broken_done, broken_ok;
    char broken_msg[2048];
    int shutdown_done, shutdown_ok;
    int quit_done, quit_ok;
    int quiet_done, quiet_ok, quiet_nil;
    int log_calls;
    char last_log[256];
};

/* host_log(message): Lua reporting to the host. */
static int host_log(lua_State *L) {
    const char *msg = luaL_checkstring(L, 1);
    struct host *h = lua_touserdata(L, lua_upvalueindex(1)); /* lurl_register's ud */
    h->log_calls++;
    snprintf(h->last_log, sizeof h->last_log, "%s", msg);
    printf("host_log: %s\n", msg);
    return 0;
}

/* Results live on the Lua stack only during a callback: copy them out. */
static void on_setup(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)nres;
    struct host *h = ud;
    h->setup_done = 1;
    h->setup_ok = ok;
    if (!ok) fprintf(stderr, "embed_host: setup failed: %s\n", lua_tostring(L, -1));
}

static void on_fetch(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt;
    struct host *h = ud;
    h->fetch_done = 1;
    h->fetch_ok = ok;
    h->fetch_ticks = (int)(h->ticks - h->ticks_at_fetch);
    if (!ok) {
        fprintf(stderr, "embed_host: fetch failed: %s\n", lua_tostring(L, -1));
        return;
    }
    if (nres == 2) {
        h->status = lua_tointeger(L, -2);
        h->length = lua_tointeger(L, -1);
    }
}

static void on_broken(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)nres;
    struct host *h = ud;
    h->broken_done = 1;
    h->broken_ok = ok;
    const char *msg = lua_tostring(L, -1);
    snprintf(h->broken_msg, sizeof h->broken_msg, "%s", msg ? msg : "(not a string)");
}

static void on_shutdown(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)nres;
    struct host *h = ud;
    h->shutdown_done = 1;
    h->shutdown_ok = ok;
    if (!ok) fprintf(stderr, "embed_host: shutdown failed: %s\n", lua_tostring(L, -1));
}

static void on_quit(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)L, (void)nres;
    struct host *h = ud;
    h->quit_done = 1;
    h->quit_ok = ok;
}

static void on_quiet(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)nres;
    struct host *h = ud;
    h->quiet_done = 1;
    h->quiet_ok = ok;
    h->quiet_nil = lua_isnil(L, -1);
}

static void call_global(struct host *h, const char *name, lurl_done_cb done) {
    lua_State *L = lurl_state(h->rt);
    lua_getglobal(L, name);
    if (lurl_call(h->rt, 0, done, h) != 0) fprintf(stderr, "embed_host: lurl_call refused\n");
}

/*
 * The host's own work. It is also where the host decides it is finished:
 * deciding here rather than inside a completion callback means lurl is never
 * re-entered from its own callback.
 */
static void on_tick(uv_timer_t *t) {
    struct host *h = t->data;
    h->ticks++;
    int finished = h->fetch_done && h->broken_done;
    /* A bound far above the expected 0.2 s, so a hang fails instead of
     * waiting for the test driver's timeout. */
    int gave_up = h->ticks > 3000;
    if (!finished && !gave_up) return;
    if (gave_up) CHECK(finished, "the Lua calls did not complete within 30 s");
    uv_close((uv_handle_t *)t, NULL);
    call_global(h, "shutdown", on_shutdown);
}

int main(void) {
    struct host h = {0};

    CHECK(uv_loop_init(&h.loop) == 0, "uv_loop_init");
    uv_timer_init(&h.loop, &h.tick);
    h.tick.data = &h;
    uv_timer_start(&h.tick, on_tick, 10, 10);

    /* The runtime borrows the host's loop: no thread, no loop of its own. */
    h.rt = lurl_new(&h.loop);
    if (!h.rt) {
        fprintf(stderr, "embed_host: lurl_new failed\n");
        return 1;
    }
    lurl_register(h.rt, "host_log", host_log, &h);
    lua_State *L = lurl_state(h.rt);

    /* Set-up never blocks, so its callback has fired when this returns. */
    lurl_do_string(h.rt, setup_lua, "=host.c setup", on_setup, &h);
    CHECK(h.setup_done && h.setup_ok, "the set-up chunk ran");
    if (!h.setup_ok) return 1;

    /* Both calls return as soon as their task waits on the loop: the work
     * happens while uv_run below runs the host's loop. */
    lua_getglobal(L, "fetch");
    lua_getglobal(L, "server_url");
    h.ticks_at_fetch = h.ticks;
    CHECK(lurl_call(h.rt, 1, on_fetch, &h) == 0, "lurl_call(fetch) accepted");
    CHECK(!h.fetch_done, "lurl_call returned before the response arrived");
    call_global(&h, "broken", on_broken);
    CHECK(lua_gettop(L) == 0, "the Lua stack is balanced after lurl_call (top = %d)",
          lua_gettop(L));

    /* Returns once the timer is closed and shutdown() has released every
     * lurl handle that could keep the loop alive. */
    uv_run(&h.loop, UV_RUN_DEFAULT);

    CHECK(h.fetch_done && h.fetch_ok, "fetch completed without error");
    CHECK(h.status == 200, "status is 200 (got %lld)", (long long)h.status);
    CHECK(h.length == (lua_Integer)strlen("hello from lurl"), "body length is %zu (got %lld)",
          strlen("hello from lurl"), (long long)h.length);
    /* The route waits 0.2 s, about 20 ticks; far fewer still proves the
     * host ran while the request was in flight. */
    CHECK(h.fetch_ticks >= 5, "the host timer ticked while fetch was in flight (%d ticks)",
          h.fetch_ticks);
    CHECK(h.log_calls == 1 && strstr(h.last_log, "-> 200, 15 bytes"),
          "Lua called the registered host_log (%d calls, last: '%s')", h.log_calls, h.last_log);

    CHECK(h.broken_done && !h.broken_ok, "the error in broken() reached its callback with ok = 0");
    CHECK(strstr(h.broken_msg, "attempt to index"), "the error message is kept: %s", h.broken_msg);
    const char *trace = strstr(h.broken_msg, "stack traceback:");
    CHECK(trace && strstr(trace, "host.c setup:"),
          "the error comes with a traceback through the set-up chunk: %s", h.broken_msg);
    /* Errors handed to a callback are the host's: they are not reported again
     * as failures nobody joined. */
    CHECK(lurl_unjoined_failures(h.rt) == 0, "no unjoined failures");

    CHECK(h.shutdown_done && h.shutdown_ok, "shutdown() ran");

    /* Neither blocks, so their callbacks have fired when lurl_call returns. */
    CHECK(lurl_exit_status(h.rt) == -1, "no os.exit yet");
    call_global(&h, "quit", on_quit);
    CHECK(h.quit_done && !h.quit_ok, "os.exit ended its task as a failure");
    CHECK(lurl_exit_status(h.rt) == 5, "lurl_exit_status is 5 (got %d)", lurl_exit_status(h.rt));
    call_global(&h, "fail_quietly", on_quiet);
    CHECK(h.quiet_done && !h.quiet_ok && h.quiet_nil, "error() reached its callback as nil");
    CHECK(lua_gettop(L) == 0, "the Lua stack is balanced at the end (top = %d)", lua_gettop(L));

    lurl_free(h.rt);
    /* lurl_free leaves the loop open but must leave nothing of its own on it. */
    int rc = uv_loop_close(&h.loop);
    CHECK(rc == 0, "uv_loop_close returned %s", rc ? uv_err_name(rc) : "0");

    if (failures) {
        fprintf(stderr, "embed_host: %d check(s) failed\n", failures);
        return 1;
    }
    printf("embed_host: ok (fetch took %d host ticks)\n", h.fetch_ticks);
    return 0;
}
