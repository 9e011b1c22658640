/* libFuzzer target: lua/lurl/url.lua's parser, joiner, quoters and output
 * (target, Host, tostring) on arbitrary text (see url.lua).
 * Input: a URL, or a base URL, a newline and a reference to join to it. */
#include <stdint.h>

#include "harness.h"
#include "url_lua.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init(luaJIT_BC_fuzz_url, luaJIT_BC_fuzz_url_SIZE, "=url");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_State *L = fuzz_driver();
    lua_pushlstring(L, (const char *)data, size);
    fuzz_run(1);
    return 0;
}
