/* libFuzzer target: Set-Cookie values through lua/lurl/cookies.lua's
 * parser (parse_set_cookie, parse_date) and a jar taking them from a
 * response and building the Cookie header (see set_cookie.lua).
 * Input: a URL index, a jar options byte, then Set-Cookie values, one a
 * line. */
#include <stdint.h>

#include "harness.h"
#include "set_cookie_lua.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init(luaJIT_BC_fuzz_set_cookie, luaJIT_BC_fuzz_set_cookie_SIZE, "=set_cookie");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    lua_State *L = fuzz_driver();
    lua_pushlstring(L, (const char *)data + 2, size - 2);
    lua_pushinteger(L, data[0]);
    lua_pushinteger(L, data[1]);
    fuzz_run(3);
    return 0;
}
