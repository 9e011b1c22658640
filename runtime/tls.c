/* TLS on a stream. OpenSSL works on two memory BIOs (the link, tls.h, which
 * the engine of tls_engine.c shares) and the stream carries their bytes over
 * the socket, so TLS runs on the same libuv reads and writes as plain TCP
 * and the Lua connection code sees one kind of stream (stream.h). The end
 * of the socket is the end of the stream, close_notify or not: whether the
 * body was complete is the HTTP parser's call. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "stream.h"
#include "tls.h"

struct tls_conn {
    tls_link k;
    int done_ref; /* the handshake's callback */
};

/* ---- the link ---- */

const char *tls_session_key(SSL *ssl) {
    tls_link *k = SSL_get_app_data(ssl);
    return k ? k->session_key : NULL;
}

/* SNI names a host, never an address (RFC 6066 section 3); verification
 * checks either one against the certificate (RFC 6125; RFC 5280 iPAddress). */
static int set_peer_name(SSL *ssl, int verify, const char *host) {
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip && !SSL_set_tlsext_host_name(ssl, host)) return 0;
    if (!verify) return 1;
    if (is_ip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(ssl, host);
}

/* The SSL of a new connection, set up as client or server of context x. */
static int new_ssl(tls_link *k, tls_context *x, const char *host, const char *session_key,
                   const char *alpn, size_t alpn_len) {
    k->ssl = SSL_new(x->ctx);
    k->rbio = BIO_new(BIO_s_mem());
    k->wbio = BIO_new(BIO_s_mem());
    if (!k->ssl || !k->rbio || !k->wbio) return 0;
    SSL_set_bio(k->ssl, k->rbio, k->wbio); /* the SSL owns them now */
    SSL_set_app_data(k->ssl, k);
    if (x->server) {
        SSL_set_accept_state(k->ssl);
        return 1;
    }
    SSL_set_connect_state(k->ssl);
    if (host && !set_peer_name(k->ssl, x->verify, host)) return 0;
    /* SSL_set_alpn_protos returns 0 on success */
    if (alpn && !x->alpn_given &&
        SSL_set_alpn_protos(k->ssl, (const unsigned char *)alpn, (unsigned int)alpn_len))
        return 0;
    if (!session_key) return 1;
    if (!(k->session_key = strdup(session_key))) return 0;
    SSL_SESSION *saved = tls_context_take_session(x, session_key);
    if (!saved) return 1;
    int ok = SSL_set_session(k->ssl, saved);
    SSL_SESSION_free(saved);
    return ok;
}

int tls_link_open(lua_State *L, tls_link *k, int ctx_idx, const char *host, const char *session_key,
                  const char *alpn, size_t alpn_len) {
    k->ctx_ref = LUA_NOREF;
    if (!new_ssl(k, lua_touserdata(L, ctx_idx), host, session_key, alpn, alpn_len)) return 0;
    lua_pushvalue(L, ctx_idx);
    k->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

const char *tls_opt_alpn(lua_State *L, int idx, size_t *len) {
    *len = 0;
    const char *alpn = luaL_optlstring(L, idx, NULL, len);
    if (!alpn) return NULL;
    /* each name after its length byte, none empty (RFC 7301 section 3.1) */
    size_t at = 0;
    while (at < *len) {
        size_t n = (unsigned char)alpn[at];
        if (!n || at + 1 + n > *len) luaL_argerror(L, idx, "ALPN list in wire format expected");
        at += 1 + n;
    }
    if (!*len || *len > 65535) luaL_argerror(L, idx, "ALPN list in wire format expected");
    return alpn;
}

void tls_link_free(lua_State *L, tls_link *k) {
    /* OpenSSL forgets the session of a connection freed without close_notify,
     * which TLS no longer asks for (RFC 5246 section 7.2.1, RFC 8446 section
     * 6.1): keep it resumable unless TLS itself failed. */
    if (k->ssl && !k->broken) SSL_set_shutdown(k->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    luaL_unref(L, LUA_REGISTRYINDEX, k->ctx_ref);
    if (k->ssl)
        SSL_free(k->ssl);
    else {
        BIO_free(k->rbio);
        BIO_free(k->wbio);
    }
    free(k->session_key);
}

int tls_link_handshake(tls_link *k) {
    tls_clear_errors();
    int r = SSL_do_handshake(k->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(k->ssl, r);
    if (e == SSL_ERROR_NONE) return 1;
    return e == SSL_ERROR_WANT_READ ? 0 : -1;
}

int tls_link_read(tls_link *k, char *buf, size_t size, size_t *len) {
    *len = 0;
    while (1) {
        size_t got = 0;
        tls_clear_errors();
        int ok = SSL_read_ex(k->ssl, buf + *len, size - *len, &got);
        *len += got;
        if (!ok) return SSL_get_error(k->ssl, 0);
        if (*len == size) return SSL_ERROR_NONE;
    }
}

int tls_link_write(tls_link *k, const char *data, size_t len) {
    size_t done;
    if (!len || SSL_write_ex(k->ssl, data, len, &done)) return 1;
    (void)BIO_reset(k->wbio);
    return 0;
}

int tls_link_close_notify(tls_link *k) {
    ERR_clear_error();
    int ok = SSL_shutdown(k->ssl) >= 0;
    ERR_clear_error();
    return ok;
}

const char *tls_link_reason(void) {
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    return reason ? reason : "TLS failure";
}

int tls_push_failure(lua_State *L, SSL *ssl, const char *message, const char *ename) {
    long verify = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_last_error();
    int cert = verify != X509_V_OK && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
    lua_pushnil(L);
    if (message)
        lua_pushstring(L, message);
    else if (cert)
        lua_pushfstring(L, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
    else
        tls_push_reason(L, "TLS handshake failed");
    lua_pushstring(L, cert ? "ECERT" : ename);
    lua_pushinteger(L, cert ? verify : 0);
    ERR_clear_error();
    return 4;
}

int tls_push_start_failure(lua_State *L, const char *fallback) {
    lua_pushnil(L);
    lua_pushliteral(L, "ESSL: ");
    tls_push_reason(L, fallback);
    lua_concat(L, 2);
    lua_pushliteral(L, "ESSL");
    return 3;
}

/* ---- the stream transport ---- */

/* Send what OpenSSL wrote into the network BIO. */
static int flush(lua_State *L, l_stream *t, int fn_idx) {
    char *data;
    long n = BIO_get_mem_data(t->tls->k.wbio, &data);
    if (n <= 0) return 1;
    int r = stream_send_copy(L, t, data, (size_t)n, fn_idx);
    (void)BIO_reset(t->tls->k.wbio);
    return r;
}

/* ---- handshake ---- */

static void end_handshake(l_stream *t) {
    tls_conn *c = t->tls;
    t->handshaking = 0;
    if (!t->reading) stream_read_socket(t, 0);
    rt_push_ref(t->h.rt, c->done_ref);
    luaL_unref(t->h.rt->L, LUA_REGISTRYINDEX, c->done_ref);
    c->done_ref = LUA_NOREF;
}

/* fn(nil, message, ename, verify_code) (tls_push_failure). */
static void fail_handshake(l_stream *t, const char *message, const char *ename) {
    tls_conn *c = t->tls;
    c->k.broken = 1;
    end_handshake(t);
    rt_callback(t->h.rt, tls_push_failure(t->h.rt->L, c->k.ssl, message, ename));
}

/* One step of the handshake (tls_link_handshake). Sends whatever the step
 * produced: the next flight, or the alert that tells the peer why it failed. */
static int handshake_step(l_stream *t) {
    int r = tls_link_handshake(&t->tls->k);
    flush(t->h.rt->L, t, 0);
    return r;
}

static void pump(l_stream *t);

static void handshake_received(l_stream *t) {
    int r = handshake_step(t);
    if (r == 0) return;
    if (r < 0) {
        fail_handshake(t, NULL, "ESSL");
        return;
    }
    end_handshake(t);
    lua_pushboolean(t->h.rt->L, 1);
    rt_callback(t->h.rt, 1);
    /* The scheduler ran after the callback, so a reader the callback woke is
     * in place for data that came with the last flight (a request right
     * behind the client's Finished, on the server side). */
    if (!t->h.closed && t->tls && t->reading) pump(t);
}

static void handshake_broken(l_stream *t, int status) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s during the TLS handshake",
             status == UV_EOF ? "connection closed by the peer" : uv_strerror(status));
    fail_handshake(t, msg, status == UV_EOF ? "EOF" : uv_err_name(status));
}

/* ---- the data path ---- */

static void deliver_failure(l_stream *t) {
    char msg[256];
    t->tls->k.broken = 1;
    snprintf(msg, sizeof msg, "ESSL: %s", tls_link_reason());
    ERR_clear_error();
    stream_deliver_end(t, 0, msg, "ESSL");
}

/* Decrypt everything the socket brought and hand it to Lua, in pieces of
 * at most RT_DELIVERY_SIZE. Lua may close the stream in any delivery. */
static void pump(l_stream *t) {
    char *buf = t->h.rt->read_buf;
    while (t->tls && !t->tls->k.broken) {
        size_t len;
        int e = tls_link_read(&t->tls->k, buf, RT_DELIVERY_SIZE, &len);
        if (len) {
            stream_deliver(t, buf, len);
            if (t->h.closed) return;
        }
        if (e == SSL_ERROR_NONE) continue;
        flush(t->h.rt->L, t, 0); /* key updates and other replies */
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_ZERO_RETURN)
            stream_deliver_end(t, UV_EOF, NULL, NULL); /* close_notify */
        else
            deliver_failure(t);
        return;
    }
}

static void tls_received(l_stream *t, char *base, ssize_t nread) {
    if (nread < 0) {
        if (t->handshaking)
            handshake_broken(t, (int)nread);
        else
            stream_deliver_end(t, (int)nread, NULL, NULL);
        return;
    }
    if (BIO_write(t->tls->k.rbio, base, (int)nread) != (int)nread) {
        stream_deliver_end(t, UV_ENOMEM, NULL, NULL);
        return;
    }
    if (t->handshaking)
        handshake_received(t);
    else
        pump(t);
}

/* Encrypt the strings into records and send them; the copy of the records
 * is what a queued write keeps, not the strings. */
static int tls_write(lua_State *L, l_stream *t, uv_buf_t *bufs, int n) {
    tls_link *k = &t->tls->k;
    if (k->broken) return UV_EPROTO;
    tls_clear_errors();
    for (int i = 0; i < n; i++) {
        if (!tls_link_write(k, bufs[i].base, bufs[i].len)) {
            ERR_clear_error();
            return UV_EPROTO;
        }
    }
    return flush(L, t, 3);
}

const stream_transport tls_transport = {tls_received, tls_write};

/* ---- starting and ending ---- */

void tls_free(l_stream *t) {
    tls_conn *c = t->tls;
    lua_State *L = t->h.rt->L;
    t->tls = NULL;
    t->handshaking = 0;
    luaL_unref(L, LUA_REGISTRYINDEX, c->done_ref);
    tls_link_free(L, &c->k);
    free(c);
}

void tls_close(l_stream *t) {
    tls_conn *c = t->tls;
    if (!t->handshaking && !c->k.broken && tls_link_close_notify(&c->k)) flush(t->h.rt->L, t, 0);
    tls_free(t);
}

/* nil, "ESSL: <reason>", "ESSL", after taking TLS off the stream again. */
static int start_failed(lua_State *L, l_stream *t, const stream_transport *plain) {
    int n = tls_push_start_failure(L, "cannot start TLS");
    tls_free(t);
    t->tp = plain;
    return n;
}

/* stream:tls_start(context, host, session_key, fn[, alpn]) -> true, or nil,
 * err, ename. Runs the handshake as client (the host names the server for
 * SNI and verification; session_key, usually "host:port", saves and resumes
 * sessions; alpn, as tls_link_open takes it, is this connection's offer) or
 * as server, as the context says. fn(true) once it is done,
 * or fn(nil, message, ename, verify_code) (fail_handshake). Start reading
 * from fn or a task it wakes: data behind the handshake is delivered then. */
int tls_start(lua_State *L) {
    l_stream *t = stream_check(L, 1);
    int server = tls_context_check(L, 2)->server;
    const char *host = luaL_optstring(L, 3, NULL);
    const char *session_key = luaL_optstring(L, 4, NULL);
    luaL_checktype(L, 5, LUA_TFUNCTION);
    size_t alpn_len;
    const char *alpn = tls_opt_alpn(L, 6, &alpn_len);
    if (t->tls) return luaL_argerror(L, 1, "TLS is already started");
    tls_conn *c = calloc(1, sizeof *c);
    if (!c) return luaL_error(L, "out of memory");
    c->done_ref = LUA_NOREF;
    const stream_transport *plain = t->tp;
    t->tls = c;
    if (!tls_link_open(L, &c->k, 2, host, session_key, alpn, alpn_len))
        return start_failed(L, t, plain);
    int err = stream_read_socket(t, 1);
    if (err) {
        tls_free(t);
        return rt_fail(L, err);
    }
    t->tp = &tls_transport;
    t->handshaking = 1;
    if (!server && handshake_step(t) < 0) {
        stream_read_socket(t, 0);
        return start_failed(L, t, plain);
    }
    lua_pushvalue(L, 5);
    c->done_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- what was negotiated ---- */

static void set_string(lua_State *L, const char *key, const char *value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

/* RFC 2253 form: "CN=localhost,O=Example". */
static void set_name(lua_State *L, const char *key, const X509_NAME *name) {
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    if (!b) return;
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
    long n = BIO_get_mem_data(b, &data);
    lua_pushlstring(L, data, n > 0 ? (size_t)n : 0);
    lua_setfield(L, -2, key);
    BIO_free(b);
}

/* ISO 8601 in UTC: "2027-11-22T20:07:52Z". */
static void set_time(lua_State *L, const char *key, const ASN1_TIME *at) {
    struct tm tm;
    char buf[32];
    if (!at || !ASN1_TIME_to_tm(at, &tm)) return;
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    set_string(L, key, buf);
}

static void set_hex(lua_State *L, const char *key, const unsigned char *bytes, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    lua_pushlstring(L, hex, 2 * n);
    lua_setfield(L, -2, key);
}

static void set_serial(lua_State *L, X509 *cert) {
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex) set_string(L, "serial", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* subject_alt_names = { "DNS:localhost", "IP:127.0.0.1", ... } */
static void set_alt_names(lua_State *L, X509 *cert) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    lua_newtable(L);
    for (int i = 0, n = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char ip[INET6_ADDRSTRLEN];
        if (g->type == GEN_DNS) {
            lua_pushfstring(L, "DNS:%s", (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD &&
                   (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, ip,
                      sizeof ip);
            lua_pushfstring(L, "IP:%s", ip);
        } else {
            continue;
        }
        lua_rawseti(L, -2, ++n);
    }
    GENERAL_NAMES_free(names);
    lua_setfield(L, -2, "subject_alt_names");
}

static void push_certificate(lua_State *L, X509 *cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    lua_createtable(L, 0, 8);
    set_name(L, "subject", X509_get_subject_name(cert));
    set_name(L, "issuer", X509_get_issuer_name(cert));
    set_time(L, "not_before", X509_get0_notBefore(cert));
    set_time(L, "not_after", X509_get0_notAfter(cert));
    set_serial(L, cert);
    if (X509_digest(cert, EVP_sha256(), md, &mdlen)) set_hex(L, "fingerprint", md, mdlen);
    set_alt_names(L, cert);
}

/* { protocol, cipher, alpn, resumed, verified, peer = { subject, issuer,
 * not_before, not_after, serial, fingerprint (SHA-256 of the DER
 * certificate, hex), subject_alt_names } } */
int tls_push_info(lua_State *L, SSL *ssl) {
    const unsigned char *alpn;
    unsigned int alpn_len;
    lua_createtable(L, 0, 6);
    set_string(L, "protocol", SSL_get_version(ssl));
    set_string(L, "cipher", SSL_get_cipher_name(ssl));
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len) {
        lua_pushlstring(L, (const char *)alpn, alpn_len);
        lua_setfield(L, -2, "alpn");
    }
    lua_pushboolean(L, SSL_session_reused(ssl));
    lua_setfield(L, -2, "resumed");
    X509 *peer = SSL_get0_peer_certificate(ssl);
    lua_pushboolean(L, peer && SSL_get_verify_result(ssl) == X509_V_OK);
    lua_setfield(L, -2, "verified");
    if (peer) {
        push_certificate(L, peer);
        lua_setfield(L, -2, "peer");
    }
    return 1;
}

/* stream:tls_info() -> tls_push_info's table, or nil without TLS or before
 * the handshake finished. */
int tls_info(lua_State *L) {
    l_stream *t = stream_check(L, 1);
    if (!t->tls || t->handshaking || t->tls->k.broken) return 0;
    return tls_push_info(L, t->tls->k.ssl);
}
