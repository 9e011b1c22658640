/*
 * lurl.h - embedding API of the lurl runtime.
 *
 * A runtime is one LuaJIT state driven by one libuv loop. Lua code runs in
 * tasks (coroutines); blocking-looking calls such as session:get() yield to the
 * loop and are resumed by libuv callbacks, so the host keeps its own loop
 * running while Lua work is in flight.
 *
 * There is no global state: any number of runtimes may exist in one process,
 * each used from one thread at a time (the thread that runs its loop).
 *
 * Typical host:
 *
 *     lurl_runtime *rt = lurl_new(my_loop);      // or NULL for a private loop
 *     lurl_do_string(rt, "function fetch(u) ... end", "=setup", NULL, NULL);
 *     lua_State *L = lurl_state(rt);
 *     lua_getglobal(L, "fetch");
 *     lua_pushstring(L, "http://127.0.0.1:8080/");
 *     lurl_call(rt, 1, on_done, ctx);            // returns at once
 *     uv_run(my_loop, UV_RUN_DEFAULT);           // on_done fires from the loop
 *     lurl_free(rt);
 */
#ifndef LURL_H
#define LURL_H

#include <lua.h>
#include <uv.h>

#include "lurl_version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lurl_runtime lurl_runtime;

/*
 * Completion of a task started by lurl_call, lurl_do_file or lurl_do_string.
 * ok is 1 when the function returned; its nres results are on top of L's
 * stack. ok is 0 when it raised; the single value on top of the stack is the
 * error message with a traceback, or nil when the value raised was nil (as
 * lua.c does, the CLI then exits 1 without a message; busted relies on it).
 * The values are popped after the callback returns: copy what must outlive
 * it. The callback must not call lurl_free.
 */
typedef void (*lurl_done_cb)(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud);

/* Create a runtime on the host's loop, or on a private loop when loop is NULL.
 * Returns NULL when memory runs out. SIGPIPE is set to be ignored if it still
 * has its default action (writes to a closed socket then fail with EPIPE). */
lurl_runtime *lurl_new(uv_loop_t *loop);

/* Close every handle the runtime owns, run the loop until they are closed and
 * free the runtime. The host's loop itself is left open. */
void lurl_free(lurl_runtime *rt);

/* The loop the runtime runs on (the host's, or its private one). */
uv_loop_t *lurl_loop(lurl_runtime *rt);

/* The runtime's Lua state, for pushing arguments before lurl_call and for
 * lua_register-style set-up. Do not call lua_pcall with a function that
 * yields: start Lua work with lurl_call instead. */
lua_State *lurl_state(lurl_runtime *rt);

/* Set the global `arg` table the way the lua interpreter does: arg[0] is
 * argv[script], arg[1..] follow it, negative indices hold what precedes it. */
void lurl_set_args(lurl_runtime *rt, int argc, char **argv, int script);

/* Register a C function as the global `name`. ud reaches the function as
 * lua_touserdata(L, lua_upvalueindex(1)), so it needs no global of its own. */
void lurl_register(lurl_runtime *rt, const char *name, lua_CFunction fn, void *ud);

/*
 * Call the function below nargs arguments on top of the stack as a new task.
 * The function and its arguments are popped. The task runs until its first
 * blocking call before lurl_call returns; done fires when it ends, possibly
 * from inside lurl_call if it never blocks. With done NULL the task is like
 * one spawned from Lua: a failure is reported on stderr and counted by
 * lurl_unjoined_failures. A task still running at lurl_free never completes:
 * its done is not called, so free per-call ud there only if it has fired.
 * Returns 0, or -1 when the runtime is shutting down.
 */
int lurl_call(lurl_runtime *rt, int nargs, lurl_done_cb done, void *ud);

/* Load a file ("-" or NULL for stdin) or a string and run it as a task, as
 * lurl_call does. A syntax error is reported through done with ok = 0. */
int lurl_do_file(lurl_runtime *rt, const char *path, lurl_done_cb done, void *ud);
int lurl_do_string(lurl_runtime *rt, const char *code, const char *chunkname, lurl_done_cb done,
                   void *ud);

/* Run the private loop until no task and no referenced handle is left.
 * With a host loop, run the host loop instead. Returns uv_run's result. */
int lurl_run(lurl_runtime *rt);

/* The status a script passed to os.exit (0-255), or -1 when none did. os.exit
 * never ends the process: it records the status, stops the runtime's loop
 * (uv_stop, the host's loop when the runtime shares it) and raises an error
 * in the calling task. Ending the process is the host's decision. */
int lurl_exit_status(lurl_runtime *rt);

/* Number of tasks that failed and were never joined (each is reported on
 * stderr with its traceback). The CLI exits 1 when it is not zero. */
int lurl_unjoined_failures(lurl_runtime *rt);

/* Write lurl's version and licence and the version of every library it links,
 * one per line, into buf (snprintf's contract: the length is returned even
 * when it does not fit, and lurl_versions(NULL, 0) measures it). */
int lurl_versions(char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
