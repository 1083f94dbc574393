#ifndef SATELLITE_CSHA256_H
#define SATELLITE_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256 on the CPU's own instructions (x86 SHA-NI, ARMv8 crypto extensions). Where the
/// CPU has neither, csha256_available() is 0 and callers use mbedTLS instead.
typedef struct {
    uint32_t state[8];
    uint64_t length;
    uint8_t buffer[64];
    uint32_t used;
} csha256_ctx;

/// 1 when this CPU has SHA-256 instructions (and SATELLITE_SHA256 is not "mbedtls").
int csha256_available(void);
/// "sha-ni", "armv8-ce" or "none".
const char *_Nonnull csha256_backend(void);

void csha256_init(csha256_ctx *_Nonnull ctx);
void csha256_update(csha256_ctx *_Nonnull ctx, const void *_Nullable data, size_t length);
/// Writes the digest of everything fed so far; the context is left unchanged.
void csha256_digest(const csha256_ctx *_Nonnull ctx, uint8_t out[_Nonnull 32]);

#endif
