/* TLS contexts (tls_context.c) as the engine (tls.c) sees them. */
#ifndef LURL_TLS_H
#define LURL_TLS_H

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

#endif
