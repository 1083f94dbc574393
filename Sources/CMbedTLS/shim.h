#ifndef SATELLITE_CMBEDTLS_SHIM_H
#define SATELLITE_CMBEDTLS_SHIM_H

#include <mbedtls/version.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>

// mbedTLS 2.x names the returning SHA-256 functions *_ret; 3.x dropped the suffix (and the
// 2.x void variants). These wrappers give one name for both.

static inline void cmbedtls_sha256_init(mbedtls_sha256_context *_Nonnull ctx) {
    mbedtls_sha256_init(ctx);
}

static inline void cmbedtls_sha256_free(mbedtls_sha256_context *_Nonnull ctx) {
    mbedtls_sha256_free(ctx);
}

static inline int cmbedtls_sha256_starts(mbedtls_sha256_context *_Nonnull ctx) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha256_starts(ctx, 0);
#else
    return mbedtls_sha256_starts_ret(ctx, 0);
#endif
}

static inline int cmbedtls_sha256_update(mbedtls_sha256_context *_Nonnull ctx, const unsigned char *_Nullable input, size_t length) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha256_update(ctx, input, length);
#else
    return mbedtls_sha256_update_ret(ctx, input, length);
#endif
}

static inline int cmbedtls_sha256_finish(mbedtls_sha256_context *_Nonnull ctx, unsigned char output[_Nonnull 32]) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha256_finish(ctx, output);
#else
    return mbedtls_sha256_finish_ret(ctx, output);
#endif
}

static inline void cmbedtls_sha256_clone(mbedtls_sha256_context *_Nonnull dst, const mbedtls_sha256_context *_Nonnull src) {
    mbedtls_sha256_clone(dst, src);
}

static inline void cmbedtls_sha512_init(mbedtls_sha512_context *_Nonnull ctx) {
    mbedtls_sha512_init(ctx);
}

static inline void cmbedtls_sha512_free(mbedtls_sha512_context *_Nonnull ctx) {
    mbedtls_sha512_free(ctx);
}

static inline int cmbedtls_sha512_starts(mbedtls_sha512_context *_Nonnull ctx) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha512_starts(ctx, 0);
#else
    return mbedtls_sha512_starts_ret(ctx, 0);
#endif
}

static inline int cmbedtls_sha512_update(mbedtls_sha512_context *_Nonnull ctx, const unsigned char *_Nullable input, size_t length) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha512_update(ctx, input, length);
#else
    return mbedtls_sha512_update_ret(ctx, input, length);
#endif
}

static inline int cmbedtls_sha512_finish(mbedtls_sha512_context *_Nonnull ctx, unsigned char output[_Nonnull 64]) {
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_sha512_finish(ctx, output);
#else
    return mbedtls_sha512_finish_ret(ctx, output);
#endif
}

static inline void cmbedtls_sha512_clone(mbedtls_sha512_context *_Nonnull dst, const mbedtls_sha512_context *_Nonnull src) {
    mbedtls_sha512_clone(dst, src);
}

#endif
