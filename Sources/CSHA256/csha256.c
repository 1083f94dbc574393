// Hardware SHA-256: the compression function on SHA-NI (x86-64) or the ARMv8 crypto
// extensions (aarch64, and armv7 cores that have them), selected at run time; buffering and
// padding in plain C. The round structure follows Intel's SHA extensions white paper and
// ARM's ACLE intrinsics; test vectors and a comparison against mbedTLS on random data run
// in the test suite.
#include "csha256.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

typedef void (*compress_fn)(uint32_t state[8], const uint8_t *data, size_t blocks);

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("sha,sse4.1,ssse3")))
static void compress_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);            // CDAB
    state1 = _mm_shuffle_epi32(state1, 0x1B);      // EFGH
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);   // CDGH

    while (blocks--) {
        const __m128i abef = state0, cdgh = state1;
        __m128i msg[4];
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) {
            if (i < 4) {
                msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), mask);
            }
            __m128i m = _mm_add_epi32(msg[i & 3], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, m);
            if (i >= 3 && i < 15) {
                __m128i t = _mm_alignr_epi8(msg[i & 3], msg[(i + 3) & 3], 4);
                msg[(i + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(msg[(i + 1) & 3], t), msg[i & 3]);
            }
            m = _mm_shuffle_epi32(m, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, m);
            if (i >= 1 && i < 13) {
                msg[(i + 3) & 3] = _mm_sha256msg1_epu32(msg[(i + 3) & 3], msg[i & 3]);
            }
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);         // FEBA
    state1 = _mm_shuffle_epi32(state1, 0xB1);      // DCHG
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);   // DCBA
    state1 = _mm_alignr_epi8(state1, tmp, 8);      // ABEF
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

static compress_fn detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    const int sha = (b >> 29) & 1;
    return (ssse3 && sse41 && sha) ? compress_shani : NULL;
}
static const char *const hardware_name = "sha-ni";

#elif defined(__aarch64__) || (defined(__ARM_ARCH) && __ARM_ARCH >= 8)
#include <arm_neon.h>
#include <sys/auxv.h>

__attribute__((target("+crypto")))
static void compress_armv8(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32x4_t state0 = vld1q_u32(&state[0]);
    uint32x4_t state1 = vld1q_u32(&state[4]);
    while (blocks--) {
        const uint32x4_t abcd = state0, efgh = state1;
        uint32x4_t msg[4];
        for (int i = 0; i < 4; i++) {
            msg[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(data + 16 * i)));
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) {
            const uint32x4_t t = vaddq_u32(msg[i & 3], vld1q_u32(&K256[4 * i]));
            if (i < 12) msg[i & 3] = vsha256su0q_u32(msg[i & 3], msg[(i + 1) & 3]);
            const uint32x4_t previous = state0;
            state0 = vsha256hq_u32(state0, state1, t);
            state1 = vsha256h2q_u32(state1, previous, t);
            if (i < 12) msg[i & 3] = vsha256su1q_u32(msg[i & 3], msg[(i + 2) & 3], msg[(i + 3) & 3]);
        }
        state0 = vaddq_u32(state0, abcd);
        state1 = vaddq_u32(state1, efgh);
        data += 64;
    }
    vst1q_u32(&state[0], state0);
    vst1q_u32(&state[4], state1);
}

static compress_fn detect(void) {
#if defined(__aarch64__)
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)
#endif
    return (getauxval(AT_HWCAP) & HWCAP_SHA2) ? compress_armv8 : NULL;
#else
#ifndef HWCAP2_SHA2
#define HWCAP2_SHA2 (1 << 3)
#endif
    return (getauxval(AT_HWCAP2) & HWCAP2_SHA2) ? compress_armv8 : NULL;
#endif
}
static const char *const hardware_name = "armv8-ce";

#else
static compress_fn detect(void) { return NULL; }
static const char *const hardware_name = "none";
#endif

static compress_fn selected(void) {
    static int done = 0;
    static compress_fn fn = NULL;
    if (!done) {
        const char *forced = getenv("SATELLITE_SHA256");
        fn = (forced && strcmp(forced, "mbedtls") == 0) ? NULL : detect();
        done = 1;
    }
    return fn;
}

int csha256_available(void) { return selected() != NULL; }

const char *csha256_backend(void) { return selected() ? hardware_name : "none"; }

void csha256_init(csha256_ctx *ctx) {
    static const uint32_t initial[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, initial, sizeof initial);
    ctx->length = 0;
    ctx->used = 0;
}

void csha256_update(csha256_ctx *ctx, const void *data, size_t length) {
    const compress_fn compress = selected();
    const uint8_t *bytes = data;
    if (!compress || !bytes || length == 0) return;
    ctx->length += length;
    if (ctx->used) {
        size_t take = 64 - ctx->used;
        if (take > length) take = length;
        memcpy(ctx->buffer + ctx->used, bytes, take);
        ctx->used += (uint32_t)take;
        bytes += take;
        length -= take;
        if (ctx->used < 64) return;
        compress(ctx->state, ctx->buffer, 1);
        ctx->used = 0;
    }
    if (length >= 64) {
        compress(ctx->state, bytes, length / 64);
        bytes += length / 64 * 64;
        length %= 64;
    }
    if (length) {
        memcpy(ctx->buffer, bytes, length);
        ctx->used = (uint32_t)length;
    }
}

void csha256_digest(const csha256_ctx *ctx, uint8_t out[32]) {
    const compress_fn compress = selected();
    uint32_t state[8];
    memcpy(state, ctx->state, sizeof state);
    uint8_t block[128];
    memset(block, 0, sizeof block);
    memcpy(block, ctx->buffer, ctx->used);
    block[ctx->used] = 0x80;
    const size_t total = ctx->used + 9 <= 64 ? 64 : 128;
    const uint64_t bits = ctx->length * 8;
    for (int i = 0; i < 8; i++) block[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    if (compress) compress(state, block, total / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(state[i] >> 8);
        out[4 * i + 3] = (uint8_t)state[i];
    }
}
