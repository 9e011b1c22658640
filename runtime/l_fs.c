/* core.fs: files through libuv's thread pool, so that streaming an upload
 * from disk or a download to disk never blocks the loop. A file is a
 * userdata holding the descriptor; every operation takes a callback, like
 * the rest of lurl.core: fn(result) or fn(nil, "ENAME: message", "ENAME"). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define FILE_MT "lurl.file"

typedef struct {
    uv_file fd;
    int closed;  /* close() was called: no new operations */
    int pending; /* operations in flight: the descriptor stays open for them */
} l_file;

typedef struct {
    uv_fs_t req;
    lurl_runtime *rt;
    l_file *file; /* the file an operation works on, or NULL */
    int cb_ref;
    int file_ref; /* the file, alive until done */
    int data_ref; /* the string a write writes */
    char buf[];   /* what a read reads into */
} fs_req;

static l_file *check_file(lua_State *L) {
    l_file *f = luaL_checkudata(L, 1, FILE_MT);
    if (f->closed) luaL_argerror(L, 1, "file is closed");
    return f;
}

/* A request calling the function at fn_idx, keeping the file at file_idx
 * and the string at data_idx (0: none) alive; bufsize bytes of buffer. */
static fs_req *new_req(lua_State *L, int fn_idx, int file_idx, int data_idx, size_t bufsize) {
    luaL_checktype(L, fn_idx, LUA_TFUNCTION);
    fs_req *r = malloc(sizeof *r + bufsize);
    if (!r) luaL_error(L, "out of memory");
    r->rt = rt_get(L);
    r->req.data = r;
    r->file = file_idx ? lua_touserdata(L, file_idx) : NULL;
    lua_pushvalue(L, fn_idx);
    r->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->file_ref = r->data_ref = LUA_NOREF;
    if (file_idx) {
        lua_pushvalue(L, file_idx);
        r->file_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (data_idx) {
        lua_pushvalue(L, data_idx);
        r->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return r;
}

static void drop_req(lua_State *L, fs_req *r) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->file_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->data_ref);
    free(r);
}

/* After uv_fs_*: a failure to start is returned at once; otherwise the
 * request is counted until its callback ran (lurl_free waits for it). */
static int started(lua_State *L, fs_req *r, int err) {
    if (err < 0) {
        drop_req(L, r);
        return rt_fail(L, err);
    }
    r->rt->pending_reqs++;
    if (r->file) r->file->pending++;
    lua_pushboolean(L, 1);
    return 1;
}

static void push_file(lua_State *L, uv_file fd) {
    l_file *f = lua_newuserdata(L, sizeof *f);
    f->fd = fd;
    f->closed = f->pending = 0;
    luaL_getmetatable(L, FILE_MT);
    lua_setmetatable(L, -2);
}

static void push_stat(lua_State *L, const uv_stat_t *st) {
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (lua_Number)st->st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushstring(L, S_ISREG(st->st_mode) ? "file" : S_ISDIR(st->st_mode) ? "directory" : "other");
    lua_setfield(L, -2, "type");
}

/* The result of a finished request, by kind; returns how many values. */
static int push_result(lua_State *L, fs_req *r) {
    ssize_t res = r->req.result;
    if (res < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", uv_err_name((int)res), uv_strerror((int)res));
        lua_pushstring(L, uv_err_name((int)res));
        return 3;
    }
    switch (r->req.fs_type) {
    case UV_FS_OPEN:
        push_file(L, (uv_file)res);
        break;
    case UV_FS_READ:
        lua_pushlstring(L, r->buf, (size_t)res);
        break;
    case UV_FS_STAT:
        push_stat(L, &r->req.statbuf);
        break;
    default:
        lua_pushnumber(L, (lua_Number)res);
    }
    return 1;
}

static void close_fd(uv_file fd) {
    uv_fs_t req;
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
}

static void fs_done(uv_fs_t *uvreq) {
    fs_req *r = uvreq->data;
    lurl_runtime *rt = r->rt;
    rt->pending_reqs--;
    /* a close() that came while this ran happens now: closing earlier could
     * hand the number to a new file and this operation would touch that */
    if (r->file && --r->file->pending == 0 && r->file->closed) close_fd(r->file->fd);
    rt_push_ref(rt, r->cb_ref);
    int n = push_result(rt->L, r);
    uv_fs_req_cleanup(uvreq);
    drop_req(rt->L, r);
    rt_callback(rt, n);
}

/* fs.open(path, mode, fn): mode "r" (read), "w" (create or truncate), "a"
 * (create, append); fn(file) once open. */
static int l_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_checkstring(L, 2);
    int flags;
    if (strcmp(mode, "r") == 0)
        flags = O_RDONLY;
    else if (strcmp(mode, "w") == 0)
        flags = O_WRONLY | O_CREAT | O_TRUNC;
    else if (strcmp(mode, "a") == 0)
        flags = O_WRONLY | O_CREAT | O_APPEND;
    else
        return luaL_argerror(L, 2, "mode must be \"r\", \"w\" or \"a\"");
    fs_req *r = new_req(L, 3, 0, 0, 0);
    return started(L, r, uv_fs_open(r->rt->loop, &r->req, path, flags | O_CLOEXEC, 0644, fs_done));
}

/* fs.stat(path, fn): fn({ size, mtime, type = "file" | "directory" | "other" }). */
static int l_stat(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    fs_req *r = new_req(L, 2, 0, 0, 0);
    return started(L, r, uv_fs_stat(r->rt->loop, &r->req, path, fs_done));
}

/* file:read(size, offset, fn): fn(data), "" at the end of the file; offset
 * -1 reads from the current position. */
static int file_read(lua_State *L) {
    l_file *f = check_file(L);
    lua_Integer size = luaL_checkinteger(L, 2);
    lua_Integer offset = luaL_checkinteger(L, 3);
    luaL_argcheck(L, size > 0 && size <= 64 * 1024 * 1024, 2, "size must be 1 byte to 64 MiB");
    fs_req *r = new_req(L, 4, 1, 0, (size_t)size);
    uv_buf_t buf = uv_buf_init(r->buf, (unsigned)size);
    return started(L, r, uv_fs_read(r->rt->loop, &r->req, f->fd, &buf, 1, offset, fs_done));
}

/* file:write(data, offset, fn): fn(bytes written); offset -1 writes at the
 * current position. */
static int file_write(lua_State *L) {
    l_file *f = check_file(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer offset = luaL_checkinteger(L, 3);
    fs_req *r = new_req(L, 4, 1, 2, 0);
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    return started(L, r, uv_fs_write(r->rt->loop, &r->req, f->fd, &buf, 1, offset, fs_done));
}

/* file:close(): at once (closing is quick; no callback to wait for), or
 * when the operations still in flight are done. */
static int file_close(lua_State *L) {
    l_file *f = luaL_checkudata(L, 1, FILE_MT);
    if (f->closed) return 0;
    f->closed = 1;
    if (!f->pending) close_fd(f->fd);
    lua_pushboolean(L, 1);
    return 1;
}

static int file_gc(lua_State *L) {
    l_file *f = luaL_checkudata(L, 1, FILE_MT);
    if (!f->closed) file_close(L);
    return 0;
}

static int file_tostring(lua_State *L) {
    l_file *f = luaL_checkudata(L, 1, FILE_MT);
    lua_pushfstring(L, "lurl.file (%d%s)", f->fd, f->closed ? ", closed" : "");
    return 1;
}

int rt_open_fs(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"read", file_read}, {"write", file_write}, {"close", file_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", file_gc}, {"__tostring", file_tostring}, {NULL, NULL}};
    static const luaL_Reg fns[] = {{"open", l_open}, {"stat", l_stat}, {NULL, NULL}};
    rt_new_class(L, FILE_MT, methods, meta);
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
