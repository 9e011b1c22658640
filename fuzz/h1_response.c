/* libFuzzer target: HTTP/1.1 responses through lurl.core's llhttp glue
 * (runtime/l_h1.c): head handling, chunked decoding, trailers, EOF, size
 * limits, and reads cut anywhere (see h1_response.lua).
 * Input: a flags byte, a split seed, a size limit, then the bytes the
 * server sent. */
#include <stdint.h>

#include "h1_response_lua.h"
#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init(luaJIT_BC_fuzz_h1_response, luaJIT_BC_fuzz_h1_response_SIZE, "=h1_response");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    lua_State *L = fuzz_driver();
    lua_pushlstring(L, (const char *)data + 3, size - 3);
    lua_pushinteger(L, data[0]);
    lua_pushinteger(L, data[1]);
    lua_pushinteger(L, data[2]);
    fuzz_run(4);
    return 0;
}
