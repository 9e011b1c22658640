/* stream:send_file(path, offset, length, fn): a file's bytes onto a plain
 * stream with no Lua string per piece (a Lua string per 124 KiB piece, read
 * and then written in turn, ran at 0.73x curl's MiB/s). Two buffers take
 * turns: the next piece is read into one while the socket takes the other.
 * A piece in the page cache is read at once on the loop (preadv2 with
 * RWF_NOWAIT, which never waits for the disk); one that is not, through
 * libuv's thread pool, so that a slow disk never blocks the loop. fn(true, sent) once every byte
 * was written, or fn(nil, "ENAME: message", "ENAME", where): where is "open" or "read" when the
 * file failed (ESHORT: it ended before offset + length), nil when the
 * socket did. The stream takes no other write until fn runs. On a TLS stream
 * it returns false and starts nothing: TLS writes Lua strings (its transport
 * encrypts from them), so the caller sends the file piece by piece. */
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "stream.h"

#define PUMP_PIECE (256 * 1024)
#define PUMP_SHORT 1 /* status: the file ended before length bytes */

typedef struct {
    lurl_runtime *rt;
    l_stream *t;
    uv_fs_t fs;    /* the file operation in flight: open or read */
    uv_write_t wr; /* the socket write in flight */
    uv_file fd;    /* -1 until the file is open */
    int64_t off;   /* where the next read starts */
    uint64_t left; /* bytes still to read */
    uint64_t sent; /* bytes the socket took */
    char *buf[2];
    size_t len[2];    /* bytes a buffer holds and has not written yet */
    int rnext, wnext; /* the buffer the next read fills, the next write empties */
    int reading, writing;
    int status;        /* 0, PUMP_SHORT or the first libuv error */
    const char *where; /* what failed when the file did: "open" or "read" */
    int cb_ref, stream_ref;
} pump;

static void kick(pump *p);

static void finish(pump *p) {
    lurl_runtime *rt = p->rt;
    lua_State *L = rt->L;
    if (p->fd >= 0) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, p->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    rt_push_ref(rt, p->cb_ref);
    int n = 2;
    if (p->status == 0) {
        lua_pushboolean(L, 1);
        lua_pushnumber(L, (lua_Number)p->sent);
    } else if (p->status == PUMP_SHORT) {
        lua_pushnil(L);
        lua_pushliteral(L, "ESHORT: the file ended before the bytes to send");
        lua_pushliteral(L, "ESHORT");
        n = 3;
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", uv_err_name(p->status), uv_strerror(p->status));
        lua_pushstring(L, uv_err_name(p->status));
        n = 3;
    }
    if (p->where) {
        lua_pushstring(L, p->where);
        n = 4;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, p->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, p->stream_ref);
    free(p->buf[0]);
    free(p->buf[1]);
    free(p);
    rt_callback(rt, n);
}

/* The first failure stays; where: NULL when the socket failed. */
static void fail(pump *p, int status, const char *where) {
    if (p->status) return;
    p->status = status;
    p->where = where;
}

/* What a read gave: got bytes, 0 (the file ended early) or a libuv error. */
static void took(pump *p, ssize_t got) {
    if (got < 0)
        fail(p, (int)got, "read");
    else if (got == 0)
        fail(p, PUMP_SHORT, "read");
    else {
        p->len[p->rnext] = (size_t)got;
        p->off += got;
        p->left -= (uint64_t)got;
        p->rnext ^= 1;
    }
}

/* The file operation in flight is done: its result. */
static ssize_t fs_done(pump *p) {
    ssize_t res = p->fs.result;
    uv_fs_req_cleanup(&p->fs);
    p->rt->pending_reqs--;
    p->reading = 0;
    return res;
}

static void on_read(uv_fs_t *req) {
    pump *p = req->data;
    took(p, fs_done(p));
    kick(p);
}

static size_t piece(const pump *p) {
    return p->left < PUMP_PIECE ? (size_t)p->left : PUMP_PIECE;
}

static void on_open(uv_fs_t *req) {
    pump *p = req->data;
    ssize_t fd = fs_done(p);
    if (fd < 0)
        fail(p, (int)fd, "open");
    else
        p->fd = (uv_file)fd;
    kick(p);
}

static void on_write(uv_write_t *req, int status) {
    pump *p = req->data;
    p->writing = 0;
    if (status < 0)
        fail(p, status, NULL);
    else {
        p->sent += p->len[p->wnext];
        p->len[p->wnext] = 0;
        p->wnext ^= 1;
    }
    kick(p);
}

/* The next piece read on the loop when the page cache has it: 1 when the
 * read is done (or failed), 0 when it would wait for the disk. */
static int read_now(pump *p) {
    struct iovec v = {p->buf[p->rnext], piece(p)};
    ssize_t got = preadv2(p->fd, &v, 1, p->off, RWF_NOWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS)) return 0;
    took(p, got < 0 ? uv_translate_sys_error(errno) : got);
    return 1;
}

static void start_read(pump *p) {
    uv_buf_t b = uv_buf_init(p->buf[p->rnext], (unsigned)piece(p));
    int err = uv_fs_read(p->rt->loop, &p->fs, p->fd, &b, 1, p->off, on_read);
    if (err) {
        fail(p, err, "read");
        return;
    }
    p->rt->pending_reqs++;
    p->reading = 1;
}

static void start_write(pump *p) {
    uv_buf_t b = uv_buf_init(p->buf[p->wnext], (unsigned)p->len[p->wnext]);
    int err = p->t->h.closed ? UV_ECANCELED : uv_write(&p->wr, &p->t->h.uv.stream, &b, 1, on_write);
    if (err) {
        fail(p, err, NULL);
        return;
    }
    p->writing = 1;
}

/* Start whatever can start; finish once nothing is in flight and either
 * every byte went or something failed. */
static void kick(pump *p) {
    for (;;) {
        if (!p->status && !p->writing && p->len[p->wnext]) start_write(p);
        if (p->status || p->reading || !p->left || p->fd < 0 || p->len[p->rnext]) break;
        if (!read_now(p)) {
            start_read(p);
            break;
        }
    }
    if (p->reading || p->writing) return;
    if (p->status || (!p->left && !p->len[0] && !p->len[1])) finish(p);
}

int stream_send_file(lua_State *L) {
    l_stream *t = stream_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_Number offset = luaL_checknumber(L, 3), length = luaL_checknumber(L, 4);
    luaL_checktype(L, 5, LUA_TFUNCTION);
    luaL_argcheck(L, offset >= 0 && offset < 9.0e15, 3, "offset must be 0 or more");
    luaL_argcheck(L, length > 0 && length < 9.0e15, 4, "length must be 1 byte or more");
    if (t->tls || t->handshaking) {
        lua_pushboolean(L, 0);
        return 1;
    }
    pump *p = calloc(1, sizeof *p);
    if (p) p->buf[0] = malloc(PUMP_PIECE), p->buf[1] = malloc(PUMP_PIECE);
    if (!p || !p->buf[0] || !p->buf[1]) {
        if (p) free(p->buf[0]), free(p->buf[1]);
        free(p);
        return luaL_error(L, "out of memory");
    }
    p->rt = rt_get(L);
    p->t = t;
    p->fd = -1;
    p->off = (int64_t)offset;
    p->left = (uint64_t)length;
    p->fs.data = p->wr.data = p;
    int err = uv_fs_open(p->rt->loop, &p->fs, path, O_RDONLY | O_CLOEXEC, 0, on_open);
    if (err) {
        free(p->buf[0]);
        free(p->buf[1]);
        free(p);
        return rt_fail(L, err);
    }
    p->rt->pending_reqs++;
    p->reading = 1;
    lua_pushvalue(L, 5);
    p->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    p->stream_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 1);
    return 1;
}
