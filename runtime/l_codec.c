/* core.codec: streaming decoders for the HTTP content codings (RFC 9110
 * section 8.4.1: gzip, deflate; RFC 7932 br; RFC 8878 zstd) and encoders for
 * request bodies. A coder takes the body chunk by chunk, on any boundaries,
 * and returns what each chunk decodes to as one string; finish() tells a
 * complete stream from a truncated one. The session's Lua side picks the
 * coder from Content-Encoding and guards against decompression bombs with
 * total_out (or max_output, which stops the decoder before it allocates). */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "rt.h"

#define DEC_MT "lurl.codec.decoder"
#define ENC_MT "lurl.codec.encoder"

/* Output of one call grows from this size by doubling; a buffer up to
 * CODEC_RETAIN stays with the coder for the next call, a larger one (a burst
 * of highly compressible input) is given back at once. */
#define CODEC_OUT_INITIAL 65536
#define CODEC_OUT_MIN_FREE 16384
#define CODEC_RETAIN 262144
/* One call never returns more than this (zstd and brotli expand the most). */
#define CODEC_CALL_MAX RT_STRING_MAX
/* RFC 9659: zstd content-coding encoders must not need more than an 8 MiB
 * window, so decoders may refuse more; refusing keeps a response from making
 * each decoder allocate up to zstd's default limit of 128 MiB. */
#define CODEC_ZSTD_WINDOW_LOG 23

enum { K_GZIP, K_DEFLATE, K_BR, K_ZSTD };
/* Accept-Encoding order (codec.names) and the names in messages. */
static const char *const coding_names[] = {"gzip", "deflate", "br", "zstd"};
static const char *const format_names[] = {"gzip", "deflate", "brotli", "zstd"};

enum { S_OPEN, S_FAILED, S_FINISHED, S_CLOSED };

typedef struct {
    int kind, encoder, state;
    int live;  /* the library state below is initialised and must be freed */
    int ended; /* decoder: a gzip member, zstd frame or whole stream ended at the last byte */
    /* Decoder lookahead: the first bytes of a deflate stream (zlib header or
     * raw?) and of what follows a gzip member or zstd frame (another one, or
     * trailing garbage?) are held until there are enough to decide. */
    unsigned char hold[4];
    size_t nhold, need;
    uint64_t total_in, total_out, max_out;
    rt_buf out; /* output of the current call */
    const char *ename;
    char err[200];
    union {
        z_stream z;
        BrotliDecoderState *brd;
        BrotliEncoderState *bre;
        ZSTD_DCtx *zd;
        ZSTD_CCtx *zc;
    } u;
} codec;

static int fail(codec *c, const char *ename, const char *fmt, ...) {
    int n = snprintf(c->err, sizeof c->err, "%s: ", ename);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
    va_end(ap);
    c->ename = ename;
    c->state = S_FAILED;
    return -1;
}

static int push_err(lua_State *L, codec *c) {
    lua_pushnil(L);
    lua_pushstring(L, c->err);
    lua_pushstring(L, c->ename);
    return 3;
}

static void free_lib(codec *c) {
    if (!c->live) return;
    c->live = 0;
    switch (c->kind) {
    case K_GZIP:
    case K_DEFLATE:
        if (c->encoder)
            deflateEnd(&c->u.z);
        else
            inflateEnd(&c->u.z);
        break;
    case K_BR:
        if (c->encoder)
            BrotliEncoderDestroyInstance(c->u.bre);
        else
            BrotliDecoderDestroyInstance(c->u.brd);
        break;
    case K_ZSTD:
        if (c->encoder)
            ZSTD_freeCCtx(c->u.zc);
        else
            ZSTD_freeDCtx(c->u.zd);
        break;
    }
}

static void free_all(codec *c) {
    free_lib(c);
    rt_buf_release(&c->out, 0);
}

/* Room for the next library call in the output buffer: at least one byte,
 * at most what the per-call cap and max_output still allow (one byte more
 * than max_output, so that going over it is seen); 0 when it fails c instead. */
static size_t reserve(codec *c) {
    if (c->out.len >= CODEC_CALL_MAX) {
        fail(c, "ELIMIT", "more than %zu MiB of %s output from one call; feed smaller chunks",
             CODEC_CALL_MAX >> 20, format_names[c->kind]);
        return 0;
    }
    size_t need = c->out.cap ? CODEC_OUT_MIN_FREE : CODEC_OUT_INITIAL;
    if (rt_buf_reserve(&c->out, need, SIZE_MAX)) {
        fail(c, "ENOMEM", "out of memory for %zu bytes of output", c->out.len + need);
        return 0;
    }
    size_t r = c->out.cap - c->out.len;
    if (r > CODEC_CALL_MAX - c->out.len) r = CODEC_CALL_MAX - c->out.len;
    uint64_t so_far = c->total_out + c->out.len;
    if (c->max_out - so_far < r) r = (size_t)(c->max_out - so_far) + 1;
    return r;
}

static int over_limit(codec *c) {
    if (c->total_out + c->out.len <= c->max_out) return 0;
    return fail(c, "ELIMIT", "decoded %s body larger than max_output (%.0f bytes)",
                format_names[c->kind], (double)c->max_out);
}

/* ---- decoders ----
 * Each run function decodes from *p until the input is used up and every
 * byte of output it gave is flushed, or until the stream (gzip member, zstd
 * frame) ends; what follows the end stays in *p for the caller. */

static int zlib_run(codec *c, const unsigned char **p, size_t *n) {
    z_stream *z = &c->u.z;
    for (;;) {
        size_t room = reserve(c);
        if (!room) return -1;
        uInt in = *n > UINT_MAX ? UINT_MAX : (uInt)*n;
        uInt out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        z->next_in = (Bytef *)*p;
        z->avail_in = in;
        z->next_out = (Bytef *)c->out.p + c->out.len;
        z->avail_out = out;
        int rc = inflate(z, Z_NO_FLUSH);
        size_t used = in - z->avail_in, made = out - z->avail_out;
        *p += used;
        *n -= used;
        c->out.len += made;
        if (over_limit(c)) return -1;
        if (rc == Z_STREAM_END) {
            c->ended = 1;
            return 0;
        }
        if (rc == Z_NEED_DICT)
            return fail(c, "EDECODE", "invalid %s stream (it needs a preset dictionary)",
                        format_names[c->kind]);
        if (rc == Z_MEM_ERROR) return fail(c, "ENOMEM", "out of memory in zlib");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return fail(c, "EDECODE", "invalid %s stream (%s)", format_names[c->kind],
                        z->msg ? z->msg : zError(rc));
        /* A full output buffer may hide more output even without input. */
        if (z->avail_out != 0 && *n == 0) return 0;
        if (used == 0 && made == 0)
            return fail(c, "EDECODE", "%s decoder made no progress", format_names[c->kind]);
    }
}

static int br_run(codec *c, const unsigned char **p, size_t *n) {
    for (;;) {
        size_t room = reserve(c);
        if (!room) return -1;
        size_t avail_in = *n, avail_out = room;
        const uint8_t *next_in = *p;
        uint8_t *next_out = (uint8_t *)c->out.p + c->out.len;
        BrotliDecoderResult r = BrotliDecoderDecompressStream(c->u.brd, &avail_in, &next_in,
                                                              &avail_out, &next_out, NULL);
        *p = next_in;
        *n = avail_in;
        c->out.len += room - avail_out;
        if (over_limit(c)) return -1;
        switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
            c->ended = 1;
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
            return 0; /* all input taken, all output given */
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
            break;
        default: {
            BrotliDecoderErrorCode e = BrotliDecoderGetErrorCode(c->u.brd);
            const char *s = BrotliDecoderErrorString(e);
            if (e <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                e >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES)
                return fail(c, "ENOMEM", "out of memory in brotli (%s)", s + (*s == '_'));
            return fail(c, "EDECODE", "invalid brotli stream (%s)", s + (*s == '_'));
        }
        }
    }
}

static int zstd_run(codec *c, const unsigned char **p, size_t *n) {
    for (;;) {
        size_t room = reserve(c);
        if (!room) return -1;
        ZSTD_inBuffer in = {*p, *n, 0};
        ZSTD_outBuffer out = {c->out.p + c->out.len, room, 0};
        size_t ret = ZSTD_decompressStream(c->u.zd, &out, &in);
        *p += in.pos;
        *n -= in.pos;
        c->out.len += out.pos;
        if (ZSTD_isError(ret)) {
            ZSTD_ErrorCode e = ZSTD_getErrorCode(ret);
            if (e == ZSTD_error_frameParameter_windowTooLarge)
                return fail(c, "EDECODE",
                            "invalid zstd stream (a frame needs a window over %d MiB)",
                            1 << (CODEC_ZSTD_WINDOW_LOG - 20));
            if (e == ZSTD_error_memory_allocation)
                return fail(c, "ENOMEM", "out of memory in zstd");
            return fail(c, "EDECODE", "invalid zstd stream (%s)", ZSTD_getErrorName(ret));
        }
        if (over_limit(c)) return -1;
        /* 0: a frame is complete and flushed. Stop there so that the caller
         * sees whether another frame or garbage follows. */
        if (ret == 0) {
            c->ended = 1;
            return 0;
        }
        if (out.pos < out.size && *n == 0) return 0;
        if (in.pos == 0 && out.pos == 0) return fail(c, "EDECODE", "zstd decoder made no progress");
    }
}

static int dec_run(codec *c, const unsigned char **p, size_t *n) {
    switch (c->kind) {
    case K_BR:
        return br_run(c, p, n);
    case K_ZSTD:
        return zstd_run(c, p, n);
    default:
        return zlib_run(c, p, n);
    }
}

/* Whether the bytes held so far still begin what they are waited for: a
 * zlib header, a gzip member (RFC 1952 2.3.1: 1f 8b) or a zstd frame (RFC
 * 8878 3.1.1: magic 0xFD2FB528, or 0x184D2A5? for a skippable frame, both
 * little-endian). A mismatch decides before all of them arrived. */
static int held_match(const codec *c) {
    const unsigned char *h = c->hold;
    size_t n = c->nhold;
    switch (c->kind) {
    case K_DEFLATE:
        /* RFC 1950 2.2: CM 8, a window of at most 32 KiB, and a check value
         * that makes the first two bytes a multiple of 31. */
        return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && (n < 2 || ((h[0] << 8) | h[1]) % 31 == 0);
    case K_GZIP:
        return h[0] == 0x1f && (n < 2 || h[1] == 0x8b);
    default: {
        static const unsigned char frame[] = {0x28, 0xb5, 0x2f, 0xfd},
                                   skip[] = {0x50, 0x2a, 0x4d, 0x18};
        const unsigned char *m = (h[0] & 0xf0) == 0x50 ? skip : frame;
        if (m == frame && h[0] != frame[0]) return 0;
        for (size_t i = 1; i < n; i++)
            if (h[i] != m[i]) return 0;
        return 1;
    }
    }
}

/* The held bytes decide: zlib or raw deflate, another gzip member or zstd
 * frame, or trailing garbage. */
static int dec_decide(codec *c) {
    int match = c->nhold == c->need && held_match(c);
    switch (c->kind) {
    case K_DEFLATE:
        /* Content-Encoding: deflate means zlib (RFC 9110 8.4.1.2), but many
         * servers send raw deflate: as browsers and curl, what does not begin
         * with a zlib header is taken as raw. */
        if (!match && inflateReset2(&c->u.z, -MAX_WBITS) != Z_OK)
            return fail(c, "EDECODE", "cannot switch to raw deflate");
        return 0;
    case K_GZIP:
        /* RFC 1952 2.2: a gzip file is a series of members. */
        if (!match) break;
        if (inflateReset(&c->u.z) != Z_OK) return fail(c, "EDECODE", "cannot reset gzip");
        c->ended = 0;
        return 0;
    case K_ZSTD:
        /* RFC 8878 3: zstd data is one or more frames; the decoder starts the
         * next one by itself. The first must have the magic too: libzstd
         * also reads its legacy formats, which are no content coding. */
        if (match) {
            c->ended = 0;
            return 0;
        }
        if (!c->ended) return fail(c, "EDECODE", "invalid zstd stream (no RFC 8878 frame magic)");
        break;
    }
    return fail(c, "EDECODE", "data after the end of the %s stream", format_names[c->kind]);
}

static int dec_feed(codec *c, const unsigned char *p, size_t n) {
    while (n > 0) {
        if (c->need > c->nhold) {
            size_t k = c->need - c->nhold;
            if (k > n) k = n;
            memcpy(c->hold + c->nhold, p, k);
            c->nhold += k;
            p += k;
            n -= k;
            if (c->nhold < c->need && held_match(c)) break;
            if (dec_decide(c)) return -1;
            const unsigned char *hp = c->hold;
            size_t hn = c->nhold;
            c->need = c->nhold = 0;
            if (dec_run(c, &hp, &hn)) return -1;
            /* No member or frame is as short as its magic number. */
            if (hn) return fail(c, "EDECODE", "invalid %s stream", format_names[c->kind]);
        } else if (c->ended) {
            if (c->kind != K_GZIP && c->kind != K_ZSTD)
                return fail(c, "EDECODE", "data after the end of the %s stream",
                            format_names[c->kind]);
            c->need = c->kind == K_GZIP ? 2 : 4;
            c->nhold = 0;
        } else if (dec_run(c, &p, &n)) {
            return -1;
        }
    }
    return 0;
}

/* ---- encoders ---- */

static int enc_run(codec *c, const unsigned char *p, size_t n, int finish) {
    for (;;) {
        size_t room = reserve(c);
        if (!room) return -1;
        unsigned char *o = (unsigned char *)c->out.p + c->out.len;
        int done;
        if (c->kind == K_BR) {
            size_t avail_in = n, avail_out = room;
            const uint8_t *next_in = p;
            if (!BrotliEncoderCompressStream(
                    c->u.bre, finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS,
                    &avail_in, &next_in, &avail_out, &o, NULL))
                return fail(c, "EENCODE", "brotli encoder failed");
            p = next_in;
            n = avail_in;
            c->out.len += room - avail_out;
            done = finish ? BrotliEncoderIsFinished(c->u.bre)
                          : n == 0 && !BrotliEncoderHasMoreOutput(c->u.bre);
        } else if (c->kind == K_ZSTD) {
            ZSTD_inBuffer in = {p, n, 0};
            ZSTD_outBuffer out = {o, room, 0};
            size_t ret =
                ZSTD_compressStream2(c->u.zc, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(ret))
                return fail(c, "EENCODE", "zstd encoder failed (%s)", ZSTD_getErrorName(ret));
            p += in.pos;
            n -= in.pos;
            c->out.len += out.pos;
            done = finish ? ret == 0 : n == 0 && out.pos < out.size;
        } else {
            z_stream *z = &c->u.z;
            uInt in = n > UINT_MAX ? UINT_MAX : (uInt)n;
            uInt out = room > UINT_MAX ? UINT_MAX : (uInt)room;
            z->next_in = (Bytef *)p;
            z->avail_in = in;
            z->next_out = o;
            z->avail_out = out;
            int rc = deflate(z, finish && in == n ? Z_FINISH : Z_NO_FLUSH);
            if (rc == Z_STREAM_ERROR)
                return fail(c, "EENCODE", "%s encoder failed", format_names[c->kind]);
            p += in - z->avail_in;
            n -= in - z->avail_in;
            c->out.len += out - z->avail_out;
            done = finish ? rc == Z_STREAM_END : n == 0 && z->avail_out != 0;
        }
        if (done) return 0;
    }
}

/* ---- Lua API ---- */

/* A decoder or an encoder, in any state (close, __gc, __tostring, __index). */
static codec *any_codec(lua_State *L) {
    codec *c = luaL_testudata(L, 1, DEC_MT);
    return c ? c : luaL_checkudata(L, 1, ENC_MT);
}

static codec *check_codec(lua_State *L, const char *mt) {
    codec *c = luaL_checkudata(L, 1, mt);
    const char *what = c->encoder ? "encoder" : "decoder";
    if (c->state == S_CLOSED) luaL_argerror(L, 1, lua_pushfstring(L, "%s is closed", what));
    if (c->state == S_FINISHED) luaL_argerror(L, 1, lua_pushfstring(L, "%s is finished", what));
    return c;
}

/* The coding named at idx: names are case-insensitive (RFC 9110 8.4.1) and
 * x-gzip means gzip (8.4.1.3). */
static int check_kind(lua_State *L, int idx) {
    const char *name = luaL_checkstring(L, idx);
    if (strcasecmp(name, "x-gzip") == 0) return K_GZIP;
    for (int k = K_GZIP; k <= K_ZSTD; k++)
        if (strcasecmp(name, coding_names[k]) == 0) return k;
    return luaL_argerror(
        L, idx, lua_pushfstring(L, "unknown content coding '%s' (gzip, deflate, br, zstd)", name));
}

static codec *new_codec(lua_State *L, int kind, int encoder) {
    codec *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, encoder ? ENC_MT : DEC_MT);
    lua_setmetatable(L, -2);
    c->kind = kind;
    c->encoder = encoder;
    c->max_out = UINT64_MAX;
    return c;
}

static int nomem(lua_State *L, const char *what) {
    lua_pushnil(L);
    lua_pushfstring(L, "ENOMEM: out of memory for a %s", what);
    lua_pushliteral(L, "ENOMEM");
    return 3;
}

/* decoder(coding [, max_output]) -> decoder. With max_output, decoding more
 * than that many bytes in total fails with ELIMIT before the output is made. */
static int l_decoder(lua_State *L) {
    int kind = check_kind(L, 1);
    lua_Number max = luaL_optnumber(L, 2, -1);
    luaL_argcheck(L, lua_isnoneornil(L, 2) || max >= 0, 2, "max_output must be >= 0");
    codec *c = new_codec(L, kind, 0);
    if (max >= 0 && max < 18446744073709551616.0) c->max_out = (uint64_t)max;
    switch (kind) {
    case K_GZIP:
    case K_DEFLATE:
        /* 16 + 15: the gzip wrapper; deflate starts as zlib and may turn raw. */
        if (inflateInit2(&c->u.z, kind == K_GZIP ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK)
            return nomem(L, "zlib decoder");
        c->need = kind == K_DEFLATE ? 2 : 0;
        break;
    case K_BR:
        if (!(c->u.brd = BrotliDecoderCreateInstance(NULL, NULL, NULL)))
            return nomem(L, "brotli decoder");
        break;
    case K_ZSTD:
        if (!(c->u.zd = ZSTD_createDCtx())) return nomem(L, "zstd decoder");
        ZSTD_DCtx_setParameter(c->u.zd, ZSTD_d_windowLogMax, CODEC_ZSTD_WINDOW_LOG);
        c->need = 4; /* the first frame's magic, checked as the next ones' */
        break;
    }
    c->live = 1;
    return 1;
}

/* encoder(coding [, level]) -> encoder. Levels: gzip and deflate 0-9
 * (default 6), br 0-11 (default 5: quality 11, brotli's own default, is far too
 * slow for bodies made on the fly), zstd 1-19 (default 3; above 19 the window
 * outgrows RFC 9659's 8 MiB). deflate makes the zlib format, as RFC 9110 says. */
static int l_encoder(lua_State *L) {
    static const int lo[] = {0, 0, BROTLI_MIN_QUALITY, 1}, hi[] = {9, 9, BROTLI_MAX_QUALITY, 19},
                     def[] = {6, 6, 5, ZSTD_CLEVEL_DEFAULT};
    int kind = check_kind(L, 1);
    lua_Integer level = luaL_optinteger(L, 2, def[kind]);
    if (level < lo[kind] || level > hi[kind])
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "%s level must be %d to %d", coding_names[kind], lo[kind],
                                      hi[kind]));
    codec *c = new_codec(L, kind, 1);
    switch (kind) {
    case K_GZIP:
    case K_DEFLATE:
        if (deflateInit2(&c->u.z, (int)level, Z_DEFLATED,
                         kind == K_GZIP ? 16 + MAX_WBITS : MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return nomem(L, "zlib encoder");
        break;
    case K_BR:
        if (!(c->u.bre = BrotliEncoderCreateInstance(NULL, NULL, NULL)))
            return nomem(L, "brotli encoder");
        BrotliEncoderSetParameter(c->u.bre, BROTLI_PARAM_QUALITY, (uint32_t)level);
        break;
    case K_ZSTD:
        if (!(c->u.zc = ZSTD_createCCtx())) return nomem(L, "zstd encoder");
        ZSTD_CCtx_setParameter(c->u.zc, ZSTD_c_compressionLevel, (int)level);
        ZSTD_CCtx_setParameter(c->u.zc, ZSTD_c_checksumFlag, 1);
        break;
    }
    c->live = 1;
    return 1;
}

/* The output of this call as a string; a large buffer is not kept. */
static int push_out(lua_State *L, codec *c) {
    lua_pushlstring(L, c->out.p ? c->out.p : "", c->out.len);
    c->total_out += c->out.len;
    rt_buf_release(&c->out, CODEC_RETAIN);
    return 1;
}

/* A failed coder keeps failing with the same error; its library state and
 * buffer are not needed any more. */
static int failed(lua_State *L, codec *c) {
    c->out.len = 0;
    free_all(c);
    return push_err(L, c);
}

/* decoder:feed(chunk[, max_output]) -> decoded bytes (maybe ""), or nil,
 * "EDECODE: ...", "EDECODE". max_output: a new cap on the total output (a
 * ratio guard raises it as input comes, so that a bomb stops before its
 * output is allocated, whatever the coding). */
static int dec_feed_l(lua_State *L) {
    codec *c = check_codec(L, DEC_MT);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (!lua_isnoneornil(L, 3)) {
        lua_Number max = luaL_checknumber(L, 3);
        luaL_argcheck(L, max >= 0, 3, "max_output must be >= 0");
        c->max_out = max < 18446744073709551616.0 ? (uint64_t)max : UINT64_MAX;
    }
    if (c->state == S_FAILED) return push_err(L, c);
    c->total_in += n;
    if (dec_feed(c, (const unsigned char *)s, n)) return failed(L, c);
    return push_out(L, c);
}

/* decoder:finish() -> "" (every byte was returned by feed), or nil,
 * "EDECODE: truncated ... stream" when the stream did not end. No input at
 * all is an empty body, not a truncated stream (as aiohttp and curl). */
static int dec_finish_l(lua_State *L) {
    codec *c = check_codec(L, DEC_MT);
    if (c->state == S_FAILED) return push_err(L, c);
    if (c->total_in > 0 && !(c->ended && c->nhold == 0)) {
        fail(c, "EDECODE", "truncated %s stream", format_names[c->kind]);
        return failed(L, c);
    }
    c->state = S_FINISHED;
    free_all(c);
    lua_pushliteral(L, "");
    return 1;
}

/* encoder:feed(chunk) -> compressed bytes (often "" until enough input). */
static int enc_feed_l(lua_State *L) {
    codec *c = check_codec(L, ENC_MT);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (c->state == S_FAILED) return push_err(L, c);
    c->total_in += n;
    if (n && enc_run(c, (const unsigned char *)s, n, 0)) return failed(L, c);
    return push_out(L, c);
}

/* encoder:finish() -> the rest of the stream (buffered data and trailer). */
static int enc_finish_l(lua_State *L) {
    codec *c = check_codec(L, ENC_MT);
    if (c->state == S_FAILED) return push_err(L, c);
    if (enc_run(c, (const unsigned char *)"", 0, 1)) return failed(L, c); /* no NULL + 0 */
    c->state = S_FINISHED;
    free_lib(c);
    push_out(L, c);
    free_all(c);
    return 1;
}

/* close(): free now rather than at collection; closing twice is fine. */
static int codec_close(lua_State *L) {
    codec *c = any_codec(L);
    free_all(c);
    c->state = S_CLOSED;
    return 0;
}

static int codec_gc(lua_State *L) {
    free_all(any_codec(L));
    return 0;
}

static int codec_tostring(lua_State *L) {
    codec *c = any_codec(L);
    static const char *const states[] = {"", ", failed", ", finished", ", closed"};
    lua_pushfstring(L, "lurl.codec.%s (%s, %f in, %f out%s)", c->encoder ? "encoder" : "decoder",
                    coding_names[c->kind], (lua_Number)c->total_in, (lua_Number)c->total_out,
                    states[c->state]);
    return 1;
}

/* __index: the byte counts as fields (readable even after close, for logs),
 * then the methods (upvalue 1). */
static int codec_index(lua_State *L) {
    codec *c = any_codec(L);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k && strcmp(k, "total_in") == 0) {
        lua_pushnumber(L, (lua_Number)c->total_in);
    } else if (k && strcmp(k, "total_out") == 0) {
        lua_pushnumber(L, (lua_Number)c->total_out);
    } else {
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
    }
    return 1;
}

static void new_class(lua_State *L, const char *mt, lua_CFunction feed, lua_CFunction finish) {
    const luaL_Reg methods[] = {
        {"feed", feed}, {"finish", finish}, {"close", codec_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", codec_gc}, {"__tostring", codec_tostring}, {NULL, NULL}};
    rt_new_class(L, mt, methods, meta);
    luaL_getmetatable(L, mt);
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, codec_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

int rt_open_codec(lua_State *L) {
    new_class(L, DEC_MT, dec_feed_l, dec_finish_l);
    new_class(L, ENC_MT, enc_feed_l, enc_finish_l);
    lua_newtable(L);
    lua_pushcfunction(L, l_decoder);
    lua_setfield(L, -2, "decoder");
    lua_pushcfunction(L, l_encoder);
    lua_setfield(L, -2, "encoder");
    lua_createtable(L, 4, 0);
    for (int k = K_GZIP; k <= K_ZSTD; k++) {
        lua_pushstring(L, coding_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "names");
    return 1;
}
