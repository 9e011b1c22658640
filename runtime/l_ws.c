/* core.ws: the WebSocket codec (RFC 6455) that the client and the test
 * server share: the opening handshake's key and accept values, frames out,
 * a frame reader that enforces the framing rules (sections 5.2 to 5.7), an
 * incremental UTF-8 validator (section 8.1) and permessage-deflate (RFC
 * 7692). It is mechanism only: close codes, message assembly, pings and the
 * closing handshake are lua/lurl's.
 *
 * Every transient output (a frame, an unmasked payload, a compressed or
 * decompressed message) is built in one scratch buffer per Lua state, the
 * upvalue of every function here, and copied once into the Lua string. */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "rt.h"

#define SCRATCH_MT "lurl.ws_scratch"
#define READER_MT "lurl.ws_reader"
#define UTF8_MT "lurl.ws_utf8"
#define DEFLATER_MT "lurl.ws_deflater"
#define INFLATER_MT "lurl.ws_inflater"

/* RFC 6455 1.3: what the server appends to Sec-WebSocket-Key. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* RFC 6455 5.2: 2 bytes, a 64-bit extended length, a masking key. */
#define WS_MAX_HEADER 14
/* Masking keys come from this many OS random bytes, fetched at once: one
 * getrandom call per 1024 frames instead of one per frame. */
#define WS_POOL 4096
/* What the scratch buffer (messages up to 1 MiB with their header or
 * deflate's bound reuse it) and a reader keep after a call; a larger buffer
 * (a burst of big messages) is given back. */
#define WS_SCRATCH_KEEP ((size_t)2 << 20)
#define WS_READER_KEEP ((size_t)1 << 16)
/* Inflate output grows while less than this is free. */
#define WS_OUT_MIN_FREE 16384
/* RFC 7692 7.2.1: a flushed DEFLATE stream ends with an empty stored block,
 * which the sender removes and the receiver puts back (7.2.2). */
static const unsigned char ws_tail[4] = {0x00, 0x00, 0xff, 0xff};

typedef struct {
    rt_buf out;
    unsigned char pool[WS_POOL];
    size_t pool_used;
} ws_scratch;

static ws_scratch *scratch(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The scratch buffer, empty (a call that raised may have left bytes). */
static rt_buf *scratch_out(lua_State *L) {
    rt_buf *o = &scratch(L)->out;
    o->len = 0;
    return o;
}

static int nomem(lua_State *L, const char *what) {
    lua_pushnil(L);
    lua_pushfstring(L, "ENOMEM: out of memory for %s", what);
    lua_pushliteral(L, "ENOMEM");
    return 3;
}

/* Copy n bytes XORed with the masking key (RFC 6455 5.3), 32 at a time in
 * 64-bit words; dst may be src. Each step is a multiple of four bytes, so
 * the key stays in phase. */
static void mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
                      const unsigned char key[4]) {
    unsigned char k8[8];
    memcpy(k8, key, 4);
    memcpy(k8 + 4, key, 4);
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, src + i, 32);
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        memcpy(dst + i, w, 32);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* ---- the opening handshake (RFC 6455 4.1, 4.2.2) ---- */

static void push_base64(lua_State *L, const unsigned char *p, int n) {
    unsigned char out[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    int k = EVP_EncodeBlock(out, p, n);
    lua_pushlstring(L, (const char *)out, (size_t)k);
}

/* key() -> a Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 4.1). */
static int l_key(lua_State *L) {
    unsigned char k[16];
    int r = uv_random(NULL, NULL, k, sizeof k, 0, NULL);
    if (r) return rt_fail(L, r);
    push_base64(L, k, sizeof k);
    return 1;
}

/* accept(key) -> base64(SHA-1(key .. GUID)), the Sec-WebSocket-Accept value
 * (RFC 6455 4.2.2 step 5.4). */
static int l_accept(lua_State *L) {
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, key, n) &&
             EVP_DigestUpdate(c, WS_GUID, sizeof WS_GUID - 1) && EVP_DigestFinal_ex(c, md, &mdn);
    EVP_MD_CTX_free(c);
    if (!ok) {
        lua_pushnil(L);
        lua_pushliteral(L, "ESSL: SHA-1 failed");
        lua_pushliteral(L, "ESSL");
        return 3;
    }
    push_base64(L, md, (int)mdn);
    return 1;
}

/* ---- frames out (RFC 6455 5.2) ---- */

/* A masking key the peer cannot predict (RFC 6455 5.3, 10.3). */
static int mask_key(ws_scratch *s, unsigned char key[4]) {
    if (s->pool_used + 4 > WS_POOL) {
        int r = uv_random(NULL, NULL, s->pool, WS_POOL, 0, NULL);
        if (r) return r;
        s->pool_used = 0;
    }
    memcpy(key, s->pool + s->pool_used, 4);
    s->pool_used += 4;
    return 0;
}

/* Write the header at h; returns its length. The length takes the fewest
 * bytes that hold it (5.2: "the minimal number of bytes MUST be used"). */
static size_t put_header(unsigned char *h, int b0, uint64_t n, const unsigned char *key) {
    size_t k = 2;
    int m = key ? 0x80 : 0;
    h[0] = (unsigned char)b0;
    if (n < 126) {
        h[1] = (unsigned char)(m | n);
    } else if (n <= 0xffff) {
        h[1] = (unsigned char)(m | 126);
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        k = 4;
    } else {
        h[1] = (unsigned char)(m | 127);
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(n >> (56 - 8 * i));
        k = 10;
    }
    if (key) {
        memcpy(h + k, key, 4);
        k += 4;
    }
    return k;
}

/* frame(opcode, payload[, fin[, rsv1[, mask]]]) -> the frame's bytes. fin
 * defaults to true. mask: a fresh masking key (a client's frames, 5.3).
 * Nothing is judged: the test server sends protocol violations with it too. */
/* The frame of frame()'s arguments, built in the scratch buffer: its bytes
 * and length, or NULL with the error's values pushed (their count in *nret). */
static const char *build_frame(lua_State *L, size_t *len, int *nret) {
    lua_Integer op = luaL_checkinteger(L, 1);
    luaL_argcheck(L, op >= 0 && op <= 15, 1, "opcode must be 0 to 15");
    size_t n;
    const char *payload = luaL_checklstring(L, 2, &n);
    int fin = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    int b0 = (fin ? 0x80 : 0) | (lua_toboolean(L, 4) ? 0x40 : 0) | (int)op;
    int mask = lua_toboolean(L, 5);
    unsigned char key[4];
    if (mask) {
        int r = mask_key(scratch(L), key);
        if (r) {
            *nret = rt_fail(L, r);
            return NULL;
        }
    }
    rt_buf *b = scratch_out(L);
    if (rt_buf_reserve(b, WS_MAX_HEADER + n, SIZE_MAX)) {
        *nret = nomem(L, "a frame");
        return NULL;
    }
    unsigned char *o = (unsigned char *)b->p;
    size_t h = put_header(o, b0, n, mask ? key : NULL);
    if (mask)
        mask_copy(o + h, (const unsigned char *)payload, n, key);
    else
        memcpy(o + h, payload, n);
    *len = h + n;
    return (const char *)o;
}

static int l_frame(lua_State *L) {
    size_t len;
    int nret;
    const char *o = build_frame(L, &len, &nret);
    if (!o) return nret;
    lua_pushlstring(L, o, len);
    rt_buf_release(scratch_out(L), WS_SCRATCH_KEEP);
    return 1;
}

/* LuaJIT maps every string of 128 KiB or more afresh and unmaps it when it
 * is freed: a page fault per 4 KiB of each big frame. Pieces stay below. */
#define WS_PIECE (124 * 1024)

/* frame_pieces(...) -> the same frame as a list of strings of at most
 * 124 KiB, which stream:write takes as one write (bench W13, 1 MiB
 * messages: 105,000 page faults in 300 messages became 6,800). */
static int l_frame_pieces(lua_State *L) {
    size_t len;
    int nret;
    const char *o = build_frame(L, &len, &nret);
    if (!o) return nret;
    lua_createtable(L, (int)(len / WS_PIECE + 1), 0);
    for (size_t off = 0, i = 1; off < len; off += WS_PIECE, i++) {
        lua_pushlstring(L, o + off, len - off < WS_PIECE ? len - off : WS_PIECE);
        lua_rawseti(L, -2, (int)i);
    }
    rt_buf_release(scratch_out(L), WS_SCRATCH_KEEP);
    return 1;
}

/* ---- the frame reader ----
 * Bytes are parsed where they are: in the last string fed while nothing
 * was left over (kept in the reader's environment table), or, once a frame
 * spans reads, in the reader's buffer. Either holds at most one frame
 * (max_size bounds it) plus one read. */

typedef struct {
    rt_buf buf; /* bytes from buf.p + off on, when ext is NULL */
    size_t off;
    const unsigned char *ext; /* the unread rest of the last string fed */
    size_t ext_len;
    uint64_t max_size;
    int masked;     /* frames must be masked (a server's reader) */
    int rsv1;       /* an extension (permessage-deflate) owns RSV1 */
    int fragmented; /* a data frame without FIN started a message */
    int code;       /* the close code once the reader failed (RFC 6455 7.4.1) */
    char reason[96];
} ws_reader;

static const unsigned char *pending(const ws_reader *r, size_t *n) {
    if (r->ext) {
        *n = r->ext_len;
        return r->ext;
    }
    *n = r->buf.len - r->off;
    return r->buf.p ? (const unsigned char *)r->buf.p + r->off : NULL;
}

/* The string at idx (or nil: 0) is kept alive as the one the reader reads. */
static void anchor(lua_State *L, int idx) {
    lua_getfenv(L, 1);
    if (idx)
        lua_pushvalue(L, idx);
    else
        lua_pushnil(L);
    lua_rawseti(L, -2, 1);
    lua_pop(L, 1);
}

static void consume(lua_State *L, ws_reader *r, size_t k) {
    if (r->ext) {
        r->ext += k;
        r->ext_len -= k;
        if (r->ext_len) return;
        r->ext = NULL;
        anchor(L, 0);
    } else {
        r->off += k;
        if (r->off < r->buf.len) return;
        r->off = 0;
        rt_buf_release(&r->buf, WS_READER_KEEP);
    }
}

/* feed(bytes) -> true, or nil, "ENOMEM: ...", "ENOMEM". A failed reader
 * drops what it is fed. */
static int reader_feed(lua_State *L) {
    ws_reader *r = luaL_checkudata(L, 1, READER_MT);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    lua_pushboolean(L, 1);
    if (r->code || n == 0) return 1;
    size_t left;
    const unsigned char *p = pending(r, &left);
    if (left == 0) {
        anchor(L, 2);
        r->ext = (const unsigned char *)s;
        r->ext_len = n;
        return 1;
    }
    if (r->ext) {
        /* The start of a frame that the new bytes continue: into the buffer. */
        if (rt_buf_reserve(&r->buf, left + n, SIZE_MAX)) return nomem(L, "a frame");
        memcpy(r->buf.p, p, left);
        r->buf.len = left;
        r->ext = NULL;
        anchor(L, 0);
    } else if (r->off) {
        memmove(r->buf.p, p, left);
        r->buf.len = left;
        r->off = 0;
    }
    if (rt_buf_append(&r->buf, s, n)) return nomem(L, "a frame");
    return 1;
}

/* The reader fails for good with this close code and reason. */
static void reader_judge(ws_reader *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    r->code = code;
}

/* next()'s answer from a failed reader; nothing it holds is needed now. */
static int reader_failed(lua_State *L, ws_reader *r) {
    if (r->ext || r->buf.p) {
        r->off = 0;
        rt_buf_release(&r->buf, 0);
        r->ext = NULL;
        anchor(L, 0);
    }
    lua_pushboolean(L, 0);
    lua_pushinteger(L, r->code);
    lua_pushstring(L, r->reason);
    return 3;
}

/* What breaks RFC 6455 in a frame's first two bytes, or NULL. */
static const char *violation(const ws_reader *r, int b0, int b1) {
    int op = b0 & 0x0f;
    /* 5.2: RSV2 and RSV3 must be 0 (no extension here defines them). */
    if (b0 & 0x30) return "RSV2 or RSV3 set";
    /* 5.2, 11.8: 3-7 and 11-15 are reserved. */
    if ((op >= 3 && op <= 7) || op >= 11) return "reserved opcode";
    if (op >= 8) {
        /* 5.5: control frames are short and never fragmented; RFC 7692 6.1:
         * they are never compressed. */
        if (!(b0 & 0x80)) return "fragmented control frame";
        if ((b1 & 0x7f) > 125) return "control frame payload over 125 bytes";
        if (b0 & 0x40) return "RSV1 set on a control frame";
    } else if (op == 0) {
        /* 5.4; RFC 7692 6.1: RSV1 marks a message on its first frame only. */
        if (!r->fragmented) return "continuation frame without a message to continue";
        if (b0 & 0x40) return "RSV1 set on a continuation frame";
    } else if (r->fragmented) {
        return "data frame inside a fragmented message";
    }
    if ((b0 & 0x40) && !r->rsv1) return "RSV1 set without an extension";
    /* 5.1: a server must not mask, a client must. */
    if ((b1 & 0x80) && !r->masked) return "masked frame from the server";
    if (!(b1 & 0x80) && r->masked) return "unmasked frame from a client";
    return NULL;
}

enum { H_DONE, H_MORE, H_FAILED };

/* Read and judge the header among the avail bytes at p, as soon as the
 * bytes that decide are there: H_DONE with the header's length in *h and
 * the payload's in *len, H_MORE, or H_FAILED (r was judged). */
static int read_header(ws_reader *r, const unsigned char *p, size_t avail, size_t *h,
                       uint64_t *len) {
    if (avail < 2) return H_MORE;
    const char *why = violation(r, p[0], p[1]);
    if (why) {
        reader_judge(r, 1002, "%s", why);
        return H_FAILED;
    }
    uint64_t n = p[1] & 0x7f;
    size_t k = n < 126 ? 2 : n == 126 ? 4 : 10;
    if (avail < k) return H_MORE;
    if (k > 2) {
        n = 0;
        for (size_t i = 2; i < k; i++)
            n = n << 8 | p[i];
    }
    if (n >> 63) {
        reader_judge(r, 1002, "64-bit payload length with the top bit set");
        return H_FAILED;
    }
    if (n > r->max_size) {
        reader_judge(r, 1009, "frame of %.0f bytes over the limit of %.0f", (double)n,
                     (double)r->max_size);
        return H_FAILED;
    }
    *h = k + (p[1] & 0x80 ? 4 : 0);
    *len = n;
    return H_DONE;
}

/* next() -> opcode, payload, fin, rsv1 for the next complete frame; nil when
 * more bytes are needed; false, close_code, reason once the peer broke the
 * protocol (1002) or sent a frame over max_size (1009), and from then on. */
static int reader_next(lua_State *L) {
    ws_reader *r = luaL_checkudata(L, 1, READER_MT);
    if (r->code) return reader_failed(L, r);
    size_t avail, h = 0;
    uint64_t len = 0;
    const unsigned char *p = pending(r, &avail);
    int rc = read_header(r, p, avail, &h, &len);
    if (rc == H_FAILED) return reader_failed(L, r);
    if (rc == H_MORE || avail < h || avail - h < len) {
        /* Room for the whole frame now rather than by doubling (max_size
         * bounds it); a failure here is met again by feed. */
        size_t rest = rc == H_DONE && avail >= h ? (size_t)len - (avail - h) : 0;
        if (!r->ext && rest) (void)rt_buf_reserve(&r->buf, rest, r->buf.len + rest);
        lua_pushnil(L);
        return 1;
    }
    const unsigned char *key = p[1] & 0x80 ? p + h - 4 : NULL, *payload = p + h;
    int b0 = p[0];
    lua_pushinteger(L, b0 & 0x0f);
    if (!key) {
        lua_pushlstring(L, (const char *)payload, len);
    } else if (!r->ext) {
        mask_copy((unsigned char *)payload, payload, len, key);
        lua_pushlstring(L, (const char *)payload, len);
    } else {
        /* A Lua string is read-only: unmask into the scratch buffer. */
        rt_buf *o = scratch_out(L);
        if (rt_buf_reserve(o, len, SIZE_MAX)) {
            reader_judge(r, 1009, "out of memory for a frame of %.0f bytes", (double)len);
            return reader_failed(L, r);
        }
        mask_copy((unsigned char *)o->p, payload, len, key);
        lua_pushlstring(L, o->p, len);
        rt_buf_release(o, WS_SCRATCH_KEEP);
    }
    lua_pushboolean(L, b0 & 0x80);
    lua_pushboolean(L, b0 & 0x40);
    if ((b0 & 0x0f) < 8) r->fragmented = !(b0 & 0x80);
    consume(L, r, h + len);
    return 4;
}

static int reader_gc(lua_State *L) {
    ws_reader *r = luaL_checkudata(L, 1, READER_MT);
    rt_buf_release(&r->buf, 0);
    return 0;
}

static int opt_flag(lua_State *L, const char *name) {
    lua_getfield(L, 1, name);
    int t = lua_type(L, -1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_argerror(L, 1, lua_pushfstring(L, "%s must be a boolean", name));
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* reader{ masked = bool, rsv1 = bool, max_size = n } -> a frame reader.
 * Without max_size, and above RT_STRING_MAX, frames stop at RT_STRING_MAX. */
static int l_reader(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int masked = opt_flag(L, "masked"), rsv1 = opt_flag(L, "rsv1");
    uint64_t max = RT_STRING_MAX;
    lua_getfield(L, 1, "max_size");
    if (!lua_isnil(L, -1)) {
        lua_Number m = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(m >= 0))
            luaL_argerror(L, 1, "max_size must be a number >= 0");
        if (m < (lua_Number)max) max = (uint64_t)m;
    }
    ws_reader *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    r->masked = masked;
    r->rsv1 = rsv1;
    r->max_size = max;
    luaL_getmetatable(L, READER_MT);
    lua_setmetatable(L, -2);
    lua_createtable(L, 1, 0);
    lua_setfenv(L, -2);
    return 1;
}

/* ---- UTF-8 (RFC 3629 section 4; RFC 6455 8.1) ----
 * A DFA over byte classes. Its states remember how many continuation bytes
 * are due and, after E0, ED, F0 and F4, the narrower range of the next one
 * that rules out overlong forms, surrogates (U+D800-DFFF) and code points
 * above U+10FFFF. */

enum { A, C8, C9, CA, L2, E0, E1, ED, F0, F1, F4, XX };
/* One row of 16 byte values each. */
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
#define ROW_C XX, XX, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2
#define ROW_E E0, E1, E1, E1, E1, E1, E1, E1, E1, E1, E1, E1, E1, ED, E1, E1
#define ROW_F F0, F1, F1, F1, F4, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX
static const unsigned char utf8_class[256] = {
    R16(A),  R16(A), R16(A), R16(A), R16(A), R16(A), R16(A), R16(A), /* 00-7F: ASCII */
    R16(C8), /* 80-8F: continuation bytes, split by what E0, ED, F0, F4 allow */
    R16(C9), /* 90-9F */
    R16(CA), /* A0-AF */
    R16(CA), /* B0-BF */
    ROW_C,   /* C0-CF: two bytes (C0 and C1 only begin overlong forms) */
    R16(L2), /* D0-DF */
    ROW_E,   /* E0-EF: three bytes */
    ROW_F,   /* F0-F4: four bytes; F5-FF never */
};

/* A state is the offset of its row, which keeps a multiplication off the
 * path from one byte to the next. */
enum { U_OK = 0, U_1 = 12, U_2 = 24, U_3 = 36, U_E0 = 48, U_ED = 60, U_F0 = 72, U_F4 = 84 };
enum { U_BAD = 96 };
#define B U_BAD
#define ROW(...) __VA_ARGS__
static const unsigned char utf8_next[9 * 12] = {
    /* one row per state, one column per byte class (in the enum's order) */
    ROW(U_OK, B, B, B, U_1, U_E0, U_2, U_ED, U_F0, U_3, U_F4, B), /* OK */
    ROW(B, U_OK, U_OK, U_OK, B, B, B, B, B, B, B, B),             /* 1 */
    ROW(B, U_1, U_1, U_1, B, B, B, B, B, B, B, B),                /* 2 */
    ROW(B, U_2, U_2, U_2, B, B, B, B, B, B, B, B),                /* 3 */
    ROW(B, B, B, U_1, B, B, B, B, B, B, B, B),                    /* E0: A0-BF, not overlong */
    ROW(B, U_1, U_1, B, B, B, B, B, B, B, B, B),                  /* ED: 80-9F, no surrogate */
    ROW(B, B, U_2, U_2, B, B, B, B, B, B, B, B),                  /* F0: 90-BF, not overlong */
    ROW(B, U_2, B, B, B, B, B, B, B, B, B, B),                    /* F4: 80-8F, <= U+10FFFF */
    ROW(B, B, B, B, B, B, B, B, B, B, B, B),                      /* BAD */
};
#undef ROW
#undef B

typedef struct {
    int state;
} ws_utf8;

static int utf8_run(int state, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n && state != U_BAD) {
        if (state == U_OK) {
            /* Between characters: skip ASCII eight bytes at a time. */
            for (uint64_t w; i + 8 <= n; i += 8) {
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) break;
            }
            if (i == n) break;
        }
        state = utf8_next[state + utf8_class[p[i++]]];
    }
    return state;
}

/* v:feed(bytes) -> whether the bytes so far can still be valid UTF-8. */
static int utf8_feed(lua_State *L) {
    ws_utf8 *v = luaL_checkudata(L, 1, UTF8_MT);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    v->state = utf8_run(v->state, (const unsigned char *)s, n);
    lua_pushboolean(L, v->state != U_BAD);
    return 1;
}

/* v:finish() -> whether the bytes so far are valid UTF-8 with no sequence
 * left incomplete. */
static int utf8_finish(lua_State *L) {
    ws_utf8 *v = luaL_checkudata(L, 1, UTF8_MT);
    lua_pushboolean(L, v->state == U_OK);
    return 1;
}

static int utf8_reset(lua_State *L) {
    ws_utf8 *v = luaL_checkudata(L, 1, UTF8_MT);
    v->state = U_OK;
    return 0;
}

static int l_utf8(lua_State *L) {
    ws_utf8 *v = lua_newuserdata(L, sizeof *v);
    v->state = U_OK;
    luaL_getmetatable(L, UTF8_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- permessage-deflate (RFC 7692 7) ---- */

typedef struct {
    z_stream z;
    int live;        /* z is initialised and must be freed */
    int no_takeover; /* *_no_context_takeover: every message starts afresh (7.1.1) */
    int ended;       /* inflater: a final block ended the stream, no byte came since */
    const char *ename;
    char err[160]; /* a failed inflater's error, returned again by later calls */
} ws_zlib;

static void zlib_free(ws_zlib *d, int inflater) {
    if (!d->live) return;
    d->live = 0;
    if (inflater)
        inflateEnd(&d->z);
    else
        deflateEnd(&d->z);
}

/* A deflater or an inflater (what: its name) that was not closed; a failed
 * inflater is still there to report its error. */
static ws_zlib *check_zlib(lua_State *L, const char *mt, const char *what) {
    ws_zlib *d = luaL_checkudata(L, 1, mt);
    if (!d->live && !d->ename) luaL_argerror(L, 1, lua_pushfstring(L, "%s is closed", what));
    return d;
}

/* window_bits: RFC 7692 7.1.2 allows 8 to 15. zlib's deflate has no 256-byte
 * window for raw deflate (deflateInit2 refuses -8, zlib.h), so 8 compresses
 * with a 512-byte window; for the same reason an inflater asked for 8 takes
 * 9, which reads what zlib-based peers send when they were asked for 8. A
 * larger inflate window reads anything a smaller one would: raw deflate
 * carries no window size. */
static int zlib_bits(lua_State *L) {
    lua_Integer bits = luaL_optinteger(L, 1, 15);
    luaL_argcheck(L, bits >= 8 && bits <= 15, 1, "window bits must be 8 to 15");
    return bits < 9 ? 9 : (int)bits;
}

/* window_bits and no_context_takeover at 1 and 2 */
static ws_zlib *new_zlib(lua_State *L, const char *mt) {
    int no_takeover = lua_toboolean(L, 2);
    ws_zlib *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    d->no_takeover = no_takeover;
    luaL_getmetatable(L, mt);
    lua_setmetatable(L, -2);
    return d;
}

/* deflater([window_bits[, no_context_takeover]]) -> a message compressor. */
static int l_deflater(lua_State *L) {
    int bits = zlib_bits(L);
    ws_zlib *d = new_zlib(L, DEFLATER_MT);
    if (deflateInit2(&d->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return nomem(L, "a deflater");
    d->live = 1;
    return 1;
}

/* inflater([window_bits[, no_context_takeover]]) -> a message decompressor. */
static int l_inflater(lua_State *L) {
    int bits = zlib_bits(L);
    ws_zlib *d = new_zlib(L, INFLATER_MT);
    if (inflateInit2(&d->z, -bits) != Z_OK) return nomem(L, "an inflater");
    d->live = 1;
    return 1;
}

/* d:compress(message) -> its compressed bytes without the final 00 00 FF FF
 * (RFC 7692 7.2.1), or nil, "ENOMEM: ...", "ENOMEM". */
static int deflater_compress(lua_State *L) {
    ws_zlib *d = check_zlib(L, DEFLATER_MT, "deflater");
    size_t n;
    const char *m = luaL_checklstring(L, 2, &n);
    rt_buf *o = scratch_out(L);
    z_stream *z = &d->z;
    z->next_in = (Bytef *)m;
    z->avail_in = (uInt)n; /* LuaJIT strings are under 2 GiB */
    /* Enough for one deflate call, and more than the 6 bytes that keep
     * Z_SYNC_FLUSH from repeating its marker (zlib.h). */
    size_t need = deflateBound(z, (uLong)n) + 16;
    for (;;) {
        if (rt_buf_reserve(o, need, SIZE_MAX)) {
            /* The next message starts a stream of its own: nothing of
             * this one was sent, and the peer can still read what follows. */
            deflateReset(z);
            return nomem(L, "a compressed message");
        }
        size_t room = o->cap - o->len;
        uInt out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        z->next_out = (Bytef *)o->p + o->len;
        z->avail_out = out;
        int rc = deflate(z, Z_SYNC_FLUSH);
        o->len += out - z->avail_out;
        /* Only a broken z_stream fails (a bug, not input): raise. */
        if (rc != Z_OK && rc != Z_BUF_ERROR) luaL_error(L, "zlib deflate failed (%d)", rc);
        if (z->avail_in == 0 && z->avail_out != 0) break;
        need = o->cap;
    }
    /* Z_SYNC_FLUSH ends the output with the empty stored block, except
     * after an empty message that left nothing to flush: that one is the
     * single 00 of 7.2.3.6, which the receiver's 00 00 FF FF makes a whole
     * empty stored block (an empty payload would leave one unfinished). */
    if (o->len == 0)
        lua_pushlstring(L, "", 1);
    else if (o->len >= 4 && memcmp(o->p + o->len - 4, ws_tail, 4) == 0)
        lua_pushlstring(L, o->p, o->len - 4);
    else
        luaL_error(L, "zlib deflate output without its flush marker");
    rt_buf_release(o, WS_SCRATCH_KEEP);
    if (d->no_takeover) deflateReset(z);
    return 1;
}

/* The inflater fails for good: "ENAME: message" (or just the name). */
static int zlib_fail(ws_zlib *d, const char *ename, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    d->ename = ename;
    return -1;
}

/* RFC 7692 7.2.3.4: a sender may flush with a block that has BFINAL set.
 * That ends zlib's stream but not the message, nor the window the next
 * blocks may refer to: start a new stream with the old window. */
static int inflate_restart(ws_zlib *d) {
    unsigned char window[32768]; /* the largest window, 15 bits */
    uInt n = 0;
    if (inflateGetDictionary(&d->z, window, &n) != Z_OK || inflateReset(&d->z) != Z_OK ||
        (n && inflateSetDictionary(&d->z, window, n) != Z_OK))
        return zlib_fail(d, "EDECODE", "EDECODE: cannot go on after a final deflate block");
    return 0;
}

/* Inflate n bytes into o, failing d once o holds more than max bytes. */
static int inflate_run(ws_zlib *d, rt_buf *o, const unsigned char *p, size_t n, size_t max) {
    z_stream *z = &d->z;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        size_t need = max + 1 - o->len < WS_OUT_MIN_FREE ? max + 1 - o->len : WS_OUT_MIN_FREE;
        if (rt_buf_reserve(o, need, max + 1))
            return zlib_fail(d, "ENOMEM", "ENOMEM: out of memory for a message");
        size_t room = o->cap - o->len;
        if (room > max + 1 - o->len) room = max + 1 - o->len;
        uInt in = z->avail_in, out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        z->next_out = (Bytef *)o->p + o->len;
        z->avail_out = out;
        int rc = inflate(z, Z_SYNC_FLUSH);
        size_t used = in - z->avail_in, made = out - z->avail_out;
        o->len += made;
        if (used) d->ended = 0;
        /* Checked at every step: a deflate bomb stops here, at max + 1. */
        if (o->len > max) return zlib_fail(d, "EMSGSIZE", "EMSGSIZE");
        if (rc == Z_STREAM_END) {
            if (inflate_restart(d)) return -1;
            d->ended = 1;
            if (z->avail_in == 0) return 0;
            continue;
        }
        if (rc == Z_MEM_ERROR) return zlib_fail(d, "ENOMEM", "ENOMEM: out of memory in zlib");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return zlib_fail(d, "EDECODE", "EDECODE: invalid compressed message (%s)",
                             z->msg ? z->msg : zError(rc));
        if (z->avail_in == 0 && z->avail_out != 0) return 0;
        if (!used && !made) return zlib_fail(d, "EDECODE", "EDECODE: inflate made no progress");
    }
}

/* i:decompress(bytes[, max]) -> the message; nil, "EMSGSIZE", "EMSGSIZE"
 * as soon as more than max bytes come out; nil, "EDECODE: ...", "EDECODE"
 * on corrupt data. A failed inflater keeps failing. */
static int inflater_decompress(lua_State *L) {
    ws_zlib *d = check_zlib(L, INFLATER_MT, "inflater");
    size_t n;
    const char *in = luaL_checklstring(L, 2, &n);
    lua_Number m = luaL_optnumber(L, 3, (lua_Number)RT_STRING_MAX);
    luaL_argcheck(L, m >= 0, 3, "max must be >= 0");
    size_t max = m < (lua_Number)RT_STRING_MAX ? (size_t)m : RT_STRING_MAX;
    if (n == 0 && !d->ename) {
        /* No payload at all: an empty message that some senders send
         * instead of 7.2.3.6's 00, and that zlib need not see. */
        lua_pushliteral(L, "");
        return 1;
    }
    if (!d->ename) {
        rt_buf *o = scratch_out(L);
        int rc = inflate_run(d, o, (const unsigned char *)in, n, max);
        /* 7.2.2: put back the 4 octets the sender removed, unless the
         * message ended with a final block (7.2.3.4 without its 00). */
        if (!rc && !d->ended) rc = inflate_run(d, o, ws_tail, sizeof ws_tail, max);
        if (!rc) {
            d->ended = 0;
            if (d->no_takeover) inflateReset(&d->z);
            lua_pushlstring(L, o->p ? o->p : "", o->len);
            rt_buf_release(o, WS_SCRATCH_KEEP);
            return 1;
        }
        rt_buf_release(o, WS_SCRATCH_KEEP);
        zlib_free(d, 1);
    }
    lua_pushnil(L);
    lua_pushstring(L, d->err);
    lua_pushstring(L, d->ename);
    return 3;
}

/* close(): free the zlib state now rather than at collection. */
static int zlib_close(lua_State *L) {
    ws_zlib *d = luaL_testudata(L, 1, INFLATER_MT);
    int inflater = d != NULL;
    if (!d) d = luaL_checkudata(L, 1, DEFLATER_MT);
    zlib_free(d, inflater);
    d->ename = NULL;
    return 0;
}

static int zlib_gc(lua_State *L) {
    return zlib_close(L);
}

/* ---- the module ---- */

static int scratch_gc(lua_State *L) {
    ws_scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    rt_buf_release(&s->out, 0);
    return 0;
}

/* A class whose methods share the scratch buffer at index sc. */
static void new_class(lua_State *L, int sc, const char *mt, const luaL_Reg *methods,
                      lua_CFunction gc) {
    const luaL_Reg none[] = {{NULL, NULL}}, meta[] = {{"__gc", gc}, {NULL, NULL}};
    rt_new_class(L, mt, none, gc ? meta : none);
    luaL_getmetatable(L, mt);
    lua_getfield(L, -1, "__index");
    lua_pushvalue(L, sc);
    luaL_openlib(L, NULL, methods, 1);
    lua_pop(L, 2);
}

int rt_open_ws(lua_State *L) {
    static const luaL_Reg reader[] = {{"feed", reader_feed}, {"next", reader_next}, {NULL, NULL}},
                          utf8[] = {{"feed", utf8_feed},
                                    {"finish", utf8_finish},
                                    {"reset", utf8_reset},
                                    {NULL, NULL}},
                          deflater[] = {{"compress", deflater_compress},
                                        {"close", zlib_close},
                                        {NULL, NULL}},
                          inflater[] = {{"decompress", inflater_decompress},
                                        {"close", zlib_close},
                                        {NULL, NULL}},
                          fns[] = {{"key", l_key},
                                   {"accept", l_accept},
                                   {"frame", l_frame},
                                   {"frame_pieces", l_frame_pieces},
                                   {"reader", l_reader},
                                   {"utf8", l_utf8},
                                   {"deflater", l_deflater},
                                   {"inflater", l_inflater},
                                   {NULL, NULL}};
    static const luaL_Reg none[] = {{NULL, NULL}},
                          scratch_meta[] = {{"__gc", scratch_gc}, {NULL, NULL}};
    rt_new_class(L, SCRATCH_MT, none, scratch_meta);
    ws_scratch *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->pool_used = WS_POOL; /* filled on first use */
    luaL_getmetatable(L, SCRATCH_MT);
    lua_setmetatable(L, -2);
    int sc = lua_gettop(L);
    new_class(L, sc, READER_MT, reader, reader_gc);
    new_class(L, sc, UTF8_MT, utf8, NULL);
    new_class(L, sc, DEFLATER_MT, deflater, zlib_gc);
    new_class(L, sc, INFLATER_MT, inflater, zlib_gc);
    lua_newtable(L);
    lua_pushvalue(L, sc);
    luaL_openlib(L, NULL, fns, 1);
    lua_remove(L, sc);
    return 1;
}
