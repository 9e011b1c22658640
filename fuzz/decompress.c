/* libFuzzer target: content decoding (runtime/l_codec.c's gzip, deflate,
 * br and zstd decoders through lua/lurl/decompress.lua's chain, with an
 * output limit), fed whole and in pieces; and encoder round trips (see
 * decompress.lua).
 * Input: a chain index, a limits index, a split seed, a mode byte, then
 * the body as it came (or the data to round-trip). */
#include <stdint.h>

#include "decompress_lua.h"
#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init(luaJIT_BC_fuzz_decompress, luaJIT_BC_fuzz_decompress_SIZE, "=decompress");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    lua_State *L = fuzz_driver();
    lua_pushlstring(L, (const char *)data + 4, size - 4);
    for (int i = 0; i < 4; i++)
        lua_pushinteger(L, data[i]);
    fuzz_run(5);
    return 0;
}
