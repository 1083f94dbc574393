// bench/tls-cipher-speed.c: how fast Debian's static libmbedcrypto (the one the static
// satellite-lite links) encrypts TLS-record-sized (16 KiB) buffers with the listener's two
// AEAD ciphers. Built and run by bench/tls.sh; prints MiB/s, median of 5 passes over 256 MiB.
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned char in[16384], out[16384], tag[16], key[32] = {1}, iv[12] = {2};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    enum { PASSES = 5, RECORDS = 16384 };  // 16384 x 16 KiB = 256 MiB per pass
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128) != 0) return 1;
    mbedtls_chachapoly_context chacha;
    mbedtls_chachapoly_init(&chacha);
    if (mbedtls_chachapoly_setkey(&chacha, key) != 0) return 1;
    double aes[PASSES], cha[PASSES];
    for (int p = 0; p < PASSES; p++) {
        double t0 = now();
        for (int i = 0; i < RECORDS; i++)
            mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, sizeof in, iv, sizeof iv, NULL, 0, in, out, sizeof tag, tag);
        double t1 = now();
        for (int i = 0; i < RECORDS; i++)
            mbedtls_chachapoly_encrypt_and_tag(&chacha, sizeof in, iv, NULL, 0, in, out, tag);
        double t2 = now();
        aes[p] = 256 / (t1 - t0);
        cha[p] = 256 / (t2 - t1);
    }
    qsort(aes, PASSES, sizeof aes[0], by_value);
    qsort(cha, PASSES, sizeof cha[0], by_value);
    printf("  AES-128-GCM       %6.0f MiB/s\n  ChaCha20-Poly1305 %6.0f MiB/s\n", aes[PASSES / 2], cha[PASSES / 2]);
    return 0;
}
