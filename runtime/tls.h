/* TLS contexts (tls_context.c), and the link on memory BIOs (tls.c) that the
 * stream transport (tls.c) and the engine (tls_engine.c) are built on. */
#ifndef LURL_TLS_H
#define LURL_TLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "rt.h"

#define TLS_CONTEXT_MT "lurl.ssl_context"
#define TLS_SESSIONS 256           /* saved sessions per context */
#define TLS_SESSIONS_PER_SERVER 16 /* of them for one server (host:port) */

/* A session (a TLS 1.3 ticket, or a TLS 1.2 session) of one server, so that
 * a later connection to it resumes instead of doing a full handshake. */
typedef struct {
    char *key; /* host:port */
    SSL_SESSION *session;
    unsigned long seq; /* when it was saved: the newest is used first */
} tls_session_slot;

typedef struct {
    SSL_CTX *ctx;
    int server; /* accepts connections (the test server) */
    int verify; /* checks the peer's certificate and name */
    char *password;
    unsigned char *alpn; /* the protocols offered or accepted, RFC 7301 3.1's wire format */
    unsigned int alpn_len;
    int alpn_given; /* the script chose them: a connection's own offer does not replace them */
    tls_session_slot sessions[TLS_SESSIONS];
    unsigned long seq;
} tls_context;

tls_context *tls_context_check(lua_State *L, int idx);

/* A saved session for key, or NULL; the caller owns the reference. */
SSL_SESSION *tls_context_take_session(tls_context *x, const char *key);

/* OpenSSL's new-session callback: keeps the session under the connection's key. */
int tls_context_keep_session(SSL *ssl, SSL_SESSION *session);

/* The session key of a connection (tls.c keeps it). */
const char *tls_session_key(SSL *ssl);

/* Push OpenSSL's reason for the last failure (or fallback) and clear the queue. */
void tls_push_reason(lua_State *L, const char *fallback);

/* nil, "ESSL: <the reasons, or fallback>", "ESSL": TLS could not start. */
int tls_push_start_failure(lua_State *L, const char *fallback);

/* SSL_get_error needs an empty error queue before each call; emptying one
 * that is empty, on every record, costs more than looking. */
static inline void tls_clear_errors(void) {
    if (ERR_peek_error()) ERR_clear_error();
}

/* One TLS connection on two memory BIOs: OpenSSL takes the peer's bytes from
 * rbio and leaves what goes to the peer in wbio, and its owner carries them:
 * over a socket (the stream transport, tls.c) or over another stream, TLS or
 * not, from Lua (the engine, tls_engine.c). */
typedef struct {
    SSL *ssl;
    BIO *rbio, *wbio;  /* the network side: bytes from the peer, bytes for it */
    int ctx_ref;       /* keeps the context (and its session cache) alive */
    int broken;        /* TLS failed (handshake or records): no more reads or writes */
    char *session_key; /* host:port, when sessions are saved and resumed */
} tls_link;

/* Set up k (zeroed) as client or server of the context at ctx_idx (checked
 * by the caller): host names the server for SNI and verification,
 * session_key saves and resumes sessions, alpn (RFC 7301 3.1's wire format,
 * or NULL) is this connection's offer unless the context's alpn option set
 * one. 0 on failure (the reason is in OpenSSL's queue); tls_link_free cleans
 * up either way. */
int tls_link_open(lua_State *L, tls_link *k, int ctx_idx, const char *host, const char *session_key,
                  const char *alpn, size_t alpn_len);

/* The optional alpn argument at idx: a string in RFC 7301 3.1's wire
 * format (checked), or NULL for none. */
const char *tls_opt_alpn(lua_State *L, int idx, size_t *len);

/* Free the SSL, keeping its session resumable unless TLS failed. */
void tls_link_free(lua_State *L, tls_link *k);

/* One handshake step: 1 done, 0 waiting for the peer, -1 failed (the reason
 * is in OpenSSL's queue). What it produced is in wbio. */
int tls_link_handshake(tls_link *k);

/* Decrypt into buf until it is full or OpenSSL stops: *len bytes, and
 * SSL_ERROR_NONE (full) or why it stopped (SSL_ERROR_WANT_READ: needs more
 * of the peer's bytes; SSL_ERROR_ZERO_RETURN: close_notify). */
int tls_link_read(tls_link *k, char *buf, size_t size, size_t *len);

/* Encrypt data into wbio: 1, or 0 (the half-made records are dropped). */
int tls_link_write(tls_link *k, const char *data, size_t len);

/* Put close_notify into wbio: 1, or 0 when OpenSSL could not. */
int tls_link_close_notify(tls_link *k);

/* OpenSSL's reason for the last failure of a read or write. */
const char *tls_link_reason(void);

/* fn's failure arguments: nil, message (NULL: from OpenSSL), ename, verify
 * code. ECERT when the certificate did not verify (verify_code is OpenSSL's
 * X509_V_ERR_*), ename (ESSL, EOF, ...) otherwise. Clears the queue. */
int tls_push_failure(lua_State *L, SSL *ssl, const char *message, const char *ename);

/* { protocol, cipher, alpn, resumed, verified, peer } of a finished handshake. */
int tls_push_info(lua_State *L, SSL *ssl);

/* core.tls.engine, added to the table on top of L's stack (rt_open_tls). */
void tls_open_engine(lua_State *L);

#endif
