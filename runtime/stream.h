/* The stream userdata shared by l_stream.c (sockets) and tls.c (TLS on top of
 * them). A stream moves bytes through its transport: plain passes them
 * straight between the socket and Lua, TLS encrypts and decrypts them in
 * between. Everything above the transport (reading, writing, closing, the Lua
 * callbacks) is the same code for both. */
#ifndef LURL_STREAM_H
#define LURL_STREAM_H

#include "rt.h"

#define STREAM_MT "lurl.stream"

typedef struct l_stream l_stream;
typedef struct tls_conn tls_conn;

typedef struct {
    /* Bytes from the socket (nread > 0; base is the runtime's read buffer),
     * or its end (UV_EOF) or a failure (nread < 0). */
    void (*received)(l_stream *t, char *base, ssize_t nread);
    /* Send the strings (stream:write's data at index 2 of L's stack, its
     * optional completion function at 3): 1 when sent at once, 0 when queued
     * (the function follows), or a libuv error code. */
    int (*write)(lua_State *L, l_stream *t, uv_buf_t *bufs, int n);
} stream_transport;

struct l_stream {
    rt_handle h;
    const stream_transport *tp;
    tls_conn *tls;   /* TLS state, or NULL */
    int is_pipe;     /* a Unix socket rather than TCP */
    int reading;     /* Lua asked for data (read_start without read_stop) */
    int handshaking; /* a TLS handshake is running: it reads for itself */
    int read_ref;    /* read callback while reading */
    int listen_ref;  /* connection callback of a listener */
};

extern const stream_transport tls_transport;

l_stream *stream_check(lua_State *L, int idx);

/* Hand data to the Lua read callback. */
void stream_deliver(l_stream *t, const char *data, size_t len);

/* End the reading with fn(nil, message, ename); message NULL: libuv's for status. */
void stream_deliver_end(l_stream *t, int status, const char *message, const char *ename);

/* Start or stop socket reads, whoever asks (Lua or the TLS handshake). */
int stream_read_socket(l_stream *t, int on);

/* Send bytes the stream does not own: what the socket does not take at once
 * is copied. fn_idx: a function on L's stack to call when a queued send
 * completes (0: none). Returns 1 (sent), 0 (queued) or a libuv error. */
int stream_send_copy(lua_State *L, l_stream *t, const char *data, size_t len, int fn_idx);

/* stream:send_file(path, offset, length, fn) (l_sendfile.c). */
int stream_send_file(lua_State *L);

/* TLS hooks of the stream's methods (tls.c). */
int tls_start(lua_State *L);
int tls_info(lua_State *L);
void tls_free(l_stream *t);
/* Send close_notify (best effort: the socket closes right after) and free. */
void tls_close(l_stream *t);

#endif
