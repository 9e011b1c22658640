/* core.tls.context{...}: an OpenSSL SSL_CTX as a Lua object. Building one
 * reads CA stores, certificates and keys, so the Lua side makes each once
 * and shares it; every connection made with it holds a reference to it.
 * A context also keeps sessions of the servers it talked to, for resumption
 * (RFC 8446 section 2.2). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"

tls_context *tls_context_check(lua_State *L, int idx) {
    tls_context *x = luaL_checkudata(L, idx, TLS_CONTEXT_MT);
    if (!x->ctx) luaL_argerror(L, idx, "TLS context is freed");
    return x;
}

/* The reasons in OpenSSL's error queue, earliest (the cause) first, each
 * once: "No such file or directory, system lib". */
void tls_push_reason(lua_State *L, const char *fallback) {
    luaL_Buffer b;
    const char *seen[8];
    int n = 0;
    unsigned long e;
    luaL_buffinit(L, &b);
    while ((e = ERR_get_error()) != 0) {
        const char *r =
            ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
        int dup = !r;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(seen[i], r) == 0;
        if (dup || n == 8) continue;
        if (n) luaL_addstring(&b, ", ");
        luaL_addstring(&b, r);
        seen[n++] = r;
    }
    if (!n) luaL_addstring(&b, fallback);
    luaL_pushresult(&b);
}

/* ---- sessions ---- */

static void clear_slot(tls_session_slot *s) {
    free(s->key);
    if (s->session) SSL_SESSION_free(s->session);
    s->key = NULL;
    s->session = NULL;
}

static int is_for(const tls_session_slot *s, const char *key) {
    return s->key && strcmp(s->key, key) == 0;
}

/* TLS 1.3 tickets are meant to be used once (RFC 8446 appendix C.4), and
 * OpenSSL stops resuming the session object a handshake used: a ticket is
 * taken out of the cache while the server has others. The last one stays
 * and connections get copies of it, so that a burst of new connections
 * still resumes (a reused ticket costs privacy, not security). TLS 1.2
 * sessions are reused as they are. */
SSL_SESSION *tls_context_take_session(tls_context *x, const char *key) {
    tls_session_slot *best = NULL;
    int count = 0;
    for (int i = 0; i < TLS_SESSIONS; i++) {
        tls_session_slot *s = &x->sessions[i];
        if (!is_for(s, key)) continue;
        count++;
        if (!best || s->seq > best->seq) best = s;
    }
    if (!best) return NULL;
    SSL_SESSION *session = best->session;
    if (count == 1 || SSL_SESSION_get_protocol_version(session) < TLS1_3_VERSION)
        return SSL_SESSION_dup(session);
    best->session = NULL;
    clear_slot(best);
    return session;
}

/* Where a new session of key goes: the server's oldest when it has its
 * share, else a free slot, else the oldest of all. NULL when the session is
 * in the cache already (OpenSSL reports a TLS 1.2 session again when it was
 * resumed). */
static tls_session_slot *slot_for(tls_context *x, const char *key, SSL_SESSION *session) {
    tls_session_slot *own = NULL, *any = NULL;
    int count = 0;
    for (int i = 0; i < TLS_SESSIONS; i++) {
        tls_session_slot *s = &x->sessions[i];
        if (s->session == session) return NULL;
        if (is_for(s, key)) {
            count++;
            if (!own || s->seq < own->seq) own = s;
        }
        if (!any || (any->key && (!s->key || s->seq < any->seq))) any = s;
    }
    return count >= TLS_SESSIONS_PER_SERVER ? own : any;
}

int tls_context_keep_session(SSL *ssl, SSL_SESSION *session) {
    const char *key = tls_session_key(ssl);
    tls_context *x = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!key || !x || !SSL_SESSION_is_resumable(session)) return 0;
    tls_session_slot *s = slot_for(x, key, session);
    if (!s) return 0;
    char *copy = strdup(key);
    if (!copy) return 0;
    clear_slot(s);
    s->key = copy;
    s->session = session;
    s->seq = ++x->seq;
    return 1; /* the slot owns the reference OpenSSL handed over */
}

/* ---- options ---- */

/* A string option of the table at index 1, or NULL. */
static const char *opt_string(lua_State *L, const char *name) {
    lua_getfield(L, 1, name);
    const char *v = lua_tostring(L, -1);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "TLS context option '%s' must be a string", name);
    lua_pop(L, 1); /* the table keeps the string alive */
    return v;
}

static int opt_bool(lua_State *L, const char *name, int dflt) {
    lua_getfield(L, 1, name);
    int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* nil, "ESSL: cannot load <what> '<path>': <OpenSSL's reason>", "ESSL" */
static int load_failed(lua_State *L, const char *what, const char *path) {
    lua_pushnil(L);
    lua_pushfstring(L, "ESSL: cannot load %s '%s': ", what, path ? path : "");
    tls_push_reason(L, "unknown error");
    lua_concat(L, 2);
    lua_pushliteral(L, "ESSL");
    return 3;
}

/* Never prompt on the terminal for a key's password (OpenSSL's default):
 * the password option or nothing. */
static int password_cb(char *buf, int size, int rwflag, void *u) {
    (void)rwflag;
    const char *pw = u;
    int n = pw ? (int)strlen(pw) : 0;
    if (!pw || n > size) return -1;
    memcpy(buf, pw, (size_t)n);
    return n;
}

static int set_min_version(SSL_CTX *ctx, const char *v) {
    if (!v || strcmp(v, "TLSv1.2") == 0) return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (strcmp(v, "TLSv1.3") == 0) return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    return 0;
}

/* ALPN (RFC 7301): a server picks the first protocol of its own list that
 * the client offers (3.2), or none: the client then speaks its default. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const tls_context *x = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, x->alpn, x->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The alpn option (a list of protocol names, in order of preference) in
 * RFC 7301 3.1's wire format: each name after its length. Without it only
 * http/1.1 is offered or accepted. */
static void load_alpn(lua_State *L, tls_context *x) {
    lua_getfield(L, 1, "alpn");
    x->alpn_given = !lua_isnil(L, -1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 1, 0);
        lua_pushliteral(L, "http/1.1");
        lua_rawseti(L, -2, 1);
    }
    if (!lua_istable(L, -1)) luaL_error(L, "TLS context option 'alpn' must be a list of strings");
    size_t n = lua_objlen(L, -1), total = 0;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        size_t len = 0;
        if (lua_type(L, -1) == LUA_TSTRING) lua_tolstring(L, -1, &len);
        if (len < 1 || len > 255)
            luaL_error(L, "TLS context option 'alpn' must list names of 1 to 255 bytes");
        total += 1 + len;
        lua_pop(L, 1);
    }
    if (!n || total > 65535) luaL_error(L, "TLS context option 'alpn' must list 1 to 255 names");
    if (!(x->alpn = malloc(total))) luaL_error(L, "out of memory");
    x->alpn_len = (unsigned int)total;
    unsigned char *p = x->alpn;
    for (size_t i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, -1, (int)i);
        const char *name = lua_tolstring(L, -1, &len);
        *p++ = (unsigned char)len;
        memcpy(p, name, len);
        p += len;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Whether dir holds the hash links OpenSSL looks CAs up by ("5ad8a5d6.0"). */
static int has_hash_links(const char *dir) {
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        found = n == 10 && e->d_name[8] == '.' && strspn(e->d_name, "0123456789abcdef") == 8;
    }
    if (d) closedir(d);
    return found;
}

/* The system's CA store, where OpenSSL's default paths and SSL_CERT_FILE /
 * SSL_CERT_DIR say. Loading the bundle file (/etc/ssl/certs/ca-certificates.crt
 * on Debian) parses every CA, 30 ms or more; the hashed directory beside it,
 * which the ca-certificates package keeps, is read one CA at a time as
 * handshakes need them. So the directory alone when it is there and no file
 * was asked for. */
static int load_system_cas(SSL_CTX *ctx) {
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir) dir = X509_get_default_cert_dir();
    if (!getenv(X509_get_default_cert_file_env()) && has_hash_links(dir))
        return SSL_CTX_set_default_verify_dir(ctx);
    return SSL_CTX_set_default_verify_paths(ctx);
}

/* CA store: the given files (loaded even when nothing is verified, so a bad
 * path is an error either way), or the system's when none are given and
 * certificates are verified, as Python's create_default_context does. */
static int load_cas(lua_State *L, tls_context *x) {
    const char *cafile = opt_string(L, "cafile"), *capath = opt_string(L, "capath");
    if (!cafile && !capath) {
        if (x->server || !x->verify || load_system_cas(x->ctx)) return 0;
        return load_failed(L, "the system CA store", "");
    }
    if (!SSL_CTX_load_verify_locations(x->ctx, cafile, capath))
        return load_failed(L, cafile ? "cafile" : "capath", cafile ? cafile : capath);
    return 0;
}

static int load_identity(lua_State *L, tls_context *x) {
    const char *certfile = opt_string(L, "certfile"), *keyfile = opt_string(L, "keyfile");
    const char *password = opt_string(L, "password");
    if (password && !(x->password = strdup(password))) return luaL_error(L, "out of memory");
    SSL_CTX_set_default_passwd_cb(x->ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(x->ctx, x->password);
    if (!certfile) return 0;
    if (!SSL_CTX_use_certificate_chain_file(x->ctx, certfile))
        return load_failed(L, "certfile", certfile);
    if (!keyfile) keyfile = certfile;
    if (!SSL_CTX_use_PrivateKey_file(x->ctx, keyfile, SSL_FILETYPE_PEM))
        return load_failed(L, "keyfile", keyfile);
    if (!SSL_CTX_check_private_key(x->ctx)) return load_failed(L, "keyfile", keyfile);
    return 0;
}

static void setup_peer_checks(tls_context *x) {
    int mode = SSL_VERIFY_NONE;
    if (x->verify)
        mode = x->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(x->ctx, mode, NULL);
    if (x->server) {
        SSL_CTX_set_alpn_select_cb(x->ctx, select_alpn, x);
        return;
    }
    SSL_CTX_set_alpn_protos(x->ctx, x->alpn, x->alpn_len);
    SSL_CTX_set_session_cache_mode(x->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(x->ctx, tls_context_keep_session);
}

/* Everything of a context but its CA store and identity. */
static int configure(lua_State *L, tls_context *x) {
    const char *min_version = opt_string(L, "min_version"), *ciphers = opt_string(L, "ciphers");
    if (!set_min_version(x->ctx, min_version))
        return luaL_error(L, "TLS context option 'min_version' must be TLSv1.2 or TLSv1.3");
    if (ciphers && !SSL_CTX_set_cipher_list(x->ctx, ciphers))
        return load_failed(L, "ciphers", ciphers);
    /* idle pooled connections keep no read or write buffers */
    SSL_CTX_set_mode(x->ctx, SSL_MODE_RELEASE_BUFFERS);
    load_alpn(L, x);
    setup_peer_checks(x);
    return 0;
}

/* core.tls.context{ server, verify, cafile, capath, certfile, keyfile,
 * password, min_version, ciphers, alpn } -> context, or nil, "ESSL: ...", "ESSL"
 * when a file or setting does not load. */
static int l_context(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tls_context *x = lua_newuserdata(L, sizeof *x);
    memset(x, 0, sizeof *x);
    luaL_getmetatable(L, TLS_CONTEXT_MT);
    lua_setmetatable(L, -2);
    x->server = opt_bool(L, "server", 0);
    x->verify = opt_bool(L, "verify", !x->server);
    x->ctx = SSL_CTX_new(x->server ? TLS_server_method() : TLS_client_method());
    if (!x->ctx) return load_failed(L, "a TLS context", "");
    SSL_CTX_set_app_data(x->ctx, x);
    int r = configure(L, x);
    if (!r) r = load_cas(L, x);
    if (!r) r = load_identity(L, x);
    if (r) return r;
    lua_settop(L, 2);
    return 1;
}

static int context_gc(lua_State *L) {
    tls_context *x = luaL_checkudata(L, 1, TLS_CONTEXT_MT);
    for (int i = 0; i < TLS_SESSIONS; i++)
        clear_slot(&x->sessions[i]);
    if (x->ctx) SSL_CTX_free(x->ctx);
    x->ctx = NULL;
    free(x->alpn);
    x->alpn = NULL;
    if (x->password) {
        OPENSSL_cleanse(x->password, strlen(x->password));
        free(x->password);
        x->password = NULL;
    }
    return 0;
}

/* context:sessions() -> how many sessions are saved (of all servers). */
static int context_sessions(lua_State *L) {
    tls_context *x = tls_context_check(L, 1);
    int n = 0;
    for (int i = 0; i < TLS_SESSIONS; i++)
        n += x->sessions[i].session != NULL;
    lua_pushinteger(L, n);
    return 1;
}

/* context:forget_sessions(): the next connections do full handshakes. */
static int context_forget_sessions(lua_State *L) {
    tls_context *x = tls_context_check(L, 1);
    for (int i = 0; i < TLS_SESSIONS; i++)
        clear_slot(&x->sessions[i]);
    return 0;
}

static int context_tostring(lua_State *L) {
    tls_context *x = luaL_checkudata(L, 1, TLS_CONTEXT_MT);
    lua_pushfstring(L, "lurl.ssl_context (%p%s%s)", (void *)x, x->server ? ", server" : "",
                    x->verify ? ", verified" : ", unverified");
    return 1;
}

int rt_open_tls(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"sessions", context_sessions}, {"forget_sessions", context_forget_sessions}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", context_gc}, {"__tostring", context_tostring}, {NULL, NULL}};
    rt_new_class(L, TLS_CONTEXT_MT, methods, meta);
    lua_newtable(L);
    lua_pushcfunction(L, l_context);
    lua_setfield(L, -2, "context");
    tls_open_engine(L);
    return 1;
}
