/*
 * threads.c - two lurl runtimes used at the same time from two threads.
 *
 * lurl keeps no global state: each runtime has its own Lua state, its own
 * scheduler and here its own private loop (lurl_new(NULL)), so threads need
 * no locking as long as each runtime stays on the thread that runs it.
 *
 * Each thread starts its own in-process test server and makes 200 GETs to it
 * from several concurrent tasks. Every response names the runtime that
 * served it, so a request crossing over to the other runtime's server or
 * scheduler would show up as a wrong body.
 *
 * A test (ctest -R embed_threads): exits 0 when both threads got every answer
 * right.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <lurl.h>

enum { NTHREADS = 2, REQUESTS = 200, TASKS = 4 };

static const char worker_lua[] =
    "local lurl = require 'lurl'\n"
    "local testing = require 'lurl.testing'\n"
    "\n"
    "-- run(id, n, ntasks): n GETs from ntasks concurrent tasks; returns how\n"
    "-- many came back 200 with the body this runtime's server should send.\n"
    "function run(id, n, ntasks)\n"
    "  local server = testing.server { routes = {\n"
    "    ['/'] = function(req) return { body = 'runtime ' .. id .. ' ' .. req.query } end,\n"
    "  } }\n"
    "  local session = lurl.session { base_url = server:url('/') }\n"
    "  local good, tasks = 0, {}\n"
    "  for t = 1, ntasks do\n"
    "    tasks[t] = lurl.spawn(function()\n"
    "      for i = t, n, ntasks do\n"
    "        local resp, err = session:get('/', { params = { i = i } })\n"
    "        if not resp then error(err, 0) end\n"
    "        if resp.status == 200 and resp:text() == ('runtime %d i=%d'):format(id, i) then\n"
    "          good = good + 1\n"
    "        end\n"
    "      end\n"
    "    end)\n"
    "  end\n"
    "  for t = 1, ntasks do\n"
    "    local ok, err = tasks[t]:join()\n"
    "    if ok == nil and err then error(err, 0) end\n"
    "  end\n"
    "  session:close()\n"
    "  server:close()\n"
    "  return good, server.requests\n"
    "end\n";

struct worker {
    int id;
    pthread_t thread;
    pthread_barrier_t *start;
    int done, ok;
    long good, served;
    char error[1024];
};

static void on_setup(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt, (void)nres;
    struct worker *w = ud;
    if (!ok) snprintf(w->error, sizeof w->error, "set-up: %s", lua_tostring(L, -1));
}

static void on_run(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)rt;
    struct worker *w = ud;
    w->done = 1;
    w->ok = ok;
    if (!ok) {
        snprintf(w->error, sizeof w->error, "run: %s", lua_tostring(L, -1));
    } else if (nres == 2) {
        w->good = (long)lua_tointeger(L, -2);
        w->served = (long)lua_tointeger(L, -1);
    }
}

static void *work(void *arg) {
    struct worker *w = arg;
    /* The runtime is created, run and freed on this thread only. */
    lurl_runtime *rt = lurl_new(NULL);
    if (!rt) {
        snprintf(w->error, sizeof w->error, "lurl_new failed");
        pthread_barrier_wait(w->start);
        return NULL;
    }
    lurl_do_string(rt, worker_lua, "=threads.c worker", on_setup, w);

    /* Both threads send their first request together. */
    pthread_barrier_wait(w->start);
    if (!w->error[0]) {
        lua_State *L = lurl_state(rt);
        lua_getglobal(L, "run");
        lua_pushinteger(L, w->id);
        lua_pushinteger(L, REQUESTS);
        lua_pushinteger(L, TASKS);
        lurl_call(rt, 3, on_run, w);
        lurl_run(rt);
        if (!w->done) snprintf(w->error, sizeof w->error, "the loop ended before run() did");
    }
    lurl_free(rt);
    return NULL;
}

int main(void) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    struct worker workers[NTHREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < NTHREADS; i++) {
        workers[i].id = i + 1;
        workers[i].start = &start;
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "embed_threads: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_barrier_destroy(&start);

    int failed = 0;
    for (int i = 0; i < NTHREADS; i++) {
        struct worker *w = &workers[i];
        if (w->error[0]) {
            fprintf(stderr, "embed_threads: runtime %d failed: %s\n", w->id, w->error);
            failed = 1;
        } else if (w->good != REQUESTS || w->served != REQUESTS) {
            fprintf(stderr, "embed_threads: runtime %d: %ld of %d answers right, %ld served\n",
                    w->id, w->good, REQUESTS, w->served);
            failed = 1;
        } else {
            printf("embed_threads: runtime %d: %ld GETs ok\n", w->id, w->good);
        }
    }
    return failed;
}
