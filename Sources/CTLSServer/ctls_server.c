#include "ctls_server.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctls_server_config {
    atomic_int refs;
    mbedtls_ssl_config ssl;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    pthread_mutex_t drbg_lock;
};

struct ctls_conn {
    ctls_server_config *config;
    mbedtls_ssl_context ssl;
    // Both ciphertext buffers exist only while they hold bytes, so an idle connection keeps
    // mbedTLS's own record buffers and nothing more.
    uint8_t *in;  // CTLS_INBOUND_CAPACITY bytes when allocated
    size_t in_start, in_end;
    uint8_t *out;
    size_t out_len, out_cap;
};

// Only ECDHE key exchange (forward secrecy) with AEAD ciphers; ECDSA or RSA certificates.
// In the server's order of preference (mbedTLS picks the first one the client offers):
// ChaCha20-Poly1305 first, because mbedTLS 2.28's AES-GCM is the slower of the two even
// with AES-NI (one block per call; bench/tls.sh measured 206 vs 306 MiB/s encrypting 16 KiB
// records on x86-64, ARM cores without AES instructions gain more), see docs/security.md.
static const int ctls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

static int ctls_random(void *ctx, unsigned char *out, size_t len) {
    ctls_server_config *config = ctx;
    pthread_mutex_lock(&config->drbg_lock);
    int ret = mbedtls_ctr_drbg_random(&config->drbg, out, len);
    pthread_mutex_unlock(&config->drbg_lock);
    return ret;
}

void ctls_strerror(int code, char *out, size_t out_len) {
    if (out_len == 0) return;
    mbedtls_strerror(code, out, out_len);
}

static void config_free(ctls_server_config *config) {
    mbedtls_ssl_config_free(&config->ssl);
    mbedtls_x509_crt_free(&config->chain);
    mbedtls_pk_free(&config->key);
    mbedtls_ctr_drbg_free(&config->drbg);
    mbedtls_entropy_free(&config->entropy);
    pthread_mutex_destroy(&config->drbg_lock);
    free(config);
}

static ctls_server_config *fail(ctls_server_config *config, char *error, size_t error_len, const char *what, int code) {
    char text[160] = "";
    if (code != 0) mbedtls_strerror(code, text, sizeof text);
    snprintf(error, error_len, "%s%s%s", what, code != 0 ? ": " : "", text);
    config_free(config);
    return NULL;
}

ctls_server_config *ctls_server_config_new(const char *cert_path, const char *key_path, char *error, size_t error_len) {
    ctls_server_config *config = calloc(1, sizeof *config);
    if (config == NULL) {
        snprintf(error, error_len, "out of memory");
        return NULL;
    }
    atomic_init(&config->refs, 1);
    pthread_mutex_init(&config->drbg_lock, NULL);
    mbedtls_ssl_config_init(&config->ssl);
    mbedtls_x509_crt_init(&config->chain);
    mbedtls_pk_init(&config->key);
    mbedtls_entropy_init(&config->entropy);
    mbedtls_ctr_drbg_init(&config->drbg);
    static const unsigned char personal[] = "satellite-lite registry tls";
    int ret = mbedtls_ctr_drbg_seed(&config->drbg, mbedtls_entropy_func, &config->entropy, personal, sizeof personal - 1);
    if (ret != 0) return fail(config, error, error_len, "cannot seed the random generator", ret);
    ret = mbedtls_x509_crt_parse_file(&config->chain, cert_path);
    if (ret != 0) {
        char what[512];
        snprintf(what, sizeof what, "%s is not a readable PEM certificate (chain)", cert_path);
        return fail(config, error, error_len, what, ret < 0 ? ret : 0);
    }
#if MBEDTLS_VERSION_MAJOR >= 3
    ret = mbedtls_pk_parse_keyfile(&config->key, key_path, NULL, ctls_random, config);
#else
    ret = mbedtls_pk_parse_keyfile(&config->key, key_path, NULL);
#endif
    if (ret != 0) {
        char what[512];
        snprintf(what, sizeof what, "%s is not a readable unencrypted PEM private key", key_path);
        return fail(config, error, error_len, what, ret);
    }
#if MBEDTLS_VERSION_MAJOR >= 3
    ret = mbedtls_pk_check_pair(&config->chain.pk, &config->key, ctls_random, config);
#else
    ret = mbedtls_pk_check_pair(&config->chain.pk, &config->key);
#endif
    if (ret != 0) {
        char what[1100];
        snprintf(what, sizeof what, "the key %s does not belong to the certificate %s", key_path, cert_path);
        return fail(config, error, error_len, what, 0);
    }
    ret = mbedtls_ssl_config_defaults(&config->ssl, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) return fail(config, error, error_len, "mbedtls_ssl_config_defaults", ret);
    mbedtls_ssl_conf_rng(&config->ssl, ctls_random, config);
    mbedtls_ssl_conf_min_version(&config->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&config->ssl, ctls_suites);
    mbedtls_ssl_conf_authmode(&config->ssl, MBEDTLS_SSL_VERIFY_NONE);
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_SSL_RENEGOTIATION)
    mbedtls_ssl_conf_renegotiation(&config->ssl, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    ret = mbedtls_ssl_conf_own_cert(&config->ssl, &config->chain, &config->key);
    if (ret != 0) return fail(config, error, error_len, "mbedtls_ssl_conf_own_cert", ret);
    return config;
}

void ctls_server_config_retain(ctls_server_config *config) {
    atomic_fetch_add(&config->refs, 1);
}

void ctls_server_config_release(ctls_server_config *config) {
    if (atomic_fetch_sub(&config->refs, 1) == 1) config_free(config);
}

void ctls_server_config_describe(const ctls_server_config *config, char *out, size_t out_len) {
    if (out_len == 0) return;
    char subject[256] = "";
    mbedtls_x509_dn_gets(subject, sizeof subject, &config->chain.subject);
    const mbedtls_x509_time *t = &config->chain.valid_to;
    snprintf(out, out_len, "%s, valid until %04d-%02d-%02dT%02d:%02d:%02dZ", subject, t->year, t->mon, t->day, t->hour, t->min, t->sec);
}

const char *ctls_protocols(void) {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    return "TLSv1.2, TLSv1.3";
#else
    return "TLSv1.2";
#endif
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
    ctls_conn *conn = ctx;
    if (conn->out_len >= CTLS_OUTBOUND_CAPACITY) return MBEDTLS_ERR_SSL_WANT_WRITE;
    size_t room = CTLS_OUTBOUND_CAPACITY - conn->out_len;
    if (len > room) len = room;
    if (conn->out_len + len > conn->out_cap) {
        size_t cap = conn->out_cap == 0 ? 20480 : conn->out_cap;
        while (cap < conn->out_len + len) cap *= 2;
        if (cap > CTLS_OUTBOUND_CAPACITY) cap = CTLS_OUTBOUND_CAPACITY;
        uint8_t *grown = realloc(conn->out, cap);
        if (grown == NULL) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        conn->out = grown;
        conn->out_cap = cap;
    }
    memcpy(conn->out + conn->out_len, buf, len);
    conn->out_len += len;
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
    ctls_conn *conn = ctx;
    size_t have = conn->in_end - conn->in_start;
    if (have == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > have) len = have;
    memcpy(buf, conn->in + conn->in_start, len);
    conn->in_start += len;
    if (conn->in_start == conn->in_end) {
        conn->in_start = conn->in_end = 0;
        free(conn->in);
        conn->in = NULL;
    }
    return (int)len;
}

ctls_conn *ctls_conn_new(ctls_server_config *config) {
    ctls_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) return NULL;
    mbedtls_ssl_init(&conn->ssl);
    if (mbedtls_ssl_setup(&conn->ssl, &config->ssl) != 0) {
        mbedtls_ssl_free(&conn->ssl);
        free(conn);
        return NULL;
    }
    ctls_server_config_retain(config);
    conn->config = config;
    mbedtls_ssl_set_bio(&conn->ssl, conn, bio_send, bio_recv, NULL);
    return conn;
}

void ctls_conn_free(ctls_conn *conn) {
    if (conn == NULL) return;
    mbedtls_ssl_free(&conn->ssl);
    ctls_server_config_release(conn->config);
    free(conn->in);
    free(conn->out);
    free(conn);
}

size_t ctls_conn_inbound_free(const ctls_conn *conn) {
    return CTLS_INBOUND_CAPACITY - (conn->in_end - conn->in_start);
}

size_t ctls_conn_feed(ctls_conn *conn, const uint8_t *data, size_t len) {
    if (len == 0) return 0;
    if (conn->in == NULL) {
        conn->in = malloc(CTLS_INBOUND_CAPACITY);
        if (conn->in == NULL) return 0;  // the caller fails the connection when nothing is taken
    }
    if (conn->in_start > 0 && conn->in_end + len > CTLS_INBOUND_CAPACITY) {
        memmove(conn->in, conn->in + conn->in_start, conn->in_end - conn->in_start);
        conn->in_end -= conn->in_start;
        conn->in_start = 0;
    }
    size_t room = CTLS_INBOUND_CAPACITY - conn->in_end;
    if (len > room) len = room;
    memcpy(conn->in + conn->in_end, data, len);
    conn->in_end += len;
    return len;
}

int ctls_conn_handshake(ctls_conn *conn) {
    return mbedtls_ssl_handshake(&conn->ssl);
}

int ctls_conn_read(ctls_conn *conn, uint8_t *out, size_t len) {
    int ret = mbedtls_ssl_read(&conn->ssl, out, len);
    if (ret == 0) return CTLS_CLOSED;  // EOF inside TLS: treat as a close
    return ret;
}

int ctls_conn_write(ctls_conn *conn, const uint8_t *data, size_t len) {
    return mbedtls_ssl_write(&conn->ssl, data, len);
}

int ctls_conn_close_notify(ctls_conn *conn) {
    return mbedtls_ssl_close_notify(&conn->ssl);
}

size_t ctls_conn_outbound_pending(const ctls_conn *conn) {
    return conn->out_len;
}

size_t ctls_conn_take_outbound(ctls_conn *conn, uint8_t *out, size_t cap) {
    size_t n = conn->out_len < cap ? conn->out_len : cap;
    memcpy(out, conn->out, n);
    memmove(conn->out, conn->out + n, conn->out_len - n);
    conn->out_len -= n;
    if (conn->out_len == 0) {
        free(conn->out);
        conn->out = NULL;
        conn->out_cap = 0;
    }
    return n;
}

const char *ctls_conn_version(const ctls_conn *conn) {
    return mbedtls_ssl_get_version(&conn->ssl);
}

const char *ctls_conn_ciphersuite(const ctls_conn *conn) {
    return mbedtls_ssl_get_ciphersuite(&conn->ssl);
}
