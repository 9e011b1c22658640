/* Shared part of the libFuzzer targets: one long-lived lurl runtime per
 * process, its Lua driver, and coverage feedback from Lua code.
 *
 * A target compiles its driver (fuzz/<target>.lua) in as bytecode; the
 * driver chunk returns the function that takes one input. Every raise out
 * of it is a finding: the driver calls lurl only in ways whose contract is
 * to return nil, err on bad input, and checks the results with error(). */
#ifndef LURL_FUZZ_HARNESS_H
#define LURL_FUZZ_HARNESS_H

#include <stddef.h>

#include <lua.h>

/* Create the runtime and load the driver; call from LLVMFuzzerInitialize. */
void fuzz_init(const unsigned char *driver, size_t size, const char *name);

/* The runtime's state, with the driver function pushed on top: push its
 * arguments, then call fuzz_run. */
lua_State *fuzz_driver(void);

/* Call the driver with the nargs values above it; abort() when it raises.
 * Collects garbage afterwards, so that C memory owned by this input's
 * userdata is freed within the input (libFuzzer's leak check counts
 * mallocs and frees per input, and LeakSanitizer cannot see pointers kept
 * in LuaJIT's own heap). */
void fuzz_run(int nargs);

#endif
