#include "csignature.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <stdlib.h>
#include <string.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#define CSIG_GRP_ID(ec) ((ec)->MBEDTLS_PRIVATE(grp).id)
#define CSIG_SHA256(in, len, out) mbedtls_sha256((in), (len), (out), 0)
#define CSIG_PARSE_KEY(pk, key, len, rng, prng) mbedtls_pk_parse_key((pk), (key), (len), NULL, 0, (rng), (prng))
#define CSIG_PK_SIGN(pk, hash, sig, cap, len, rng, prng) \
    mbedtls_pk_sign((pk), MBEDTLS_MD_SHA256, (hash), 32, (sig), (cap), (len), (rng), (prng))
#else
#define CSIG_PARSE_KEY(pk, key, len, rng, prng) mbedtls_pk_parse_key((pk), (key), (len), NULL, 0)
#define CSIG_PK_SIGN(pk, hash, sig, cap, len, rng, prng) \
    mbedtls_pk_sign((pk), MBEDTLS_MD_SHA256, (hash), 32, (sig), (len), (rng), (prng))
#define CSIG_GRP_ID(ec) ((ec)->grp.id)
#define CSIG_SHA256(in, len, out) mbedtls_sha256_ret((in), (len), (out), 0)
#endif

// mbedtls_pk_parse_public_key wants PEM NUL-terminated, with the NUL counted in the length.
static int parse_key(mbedtls_pk_context *pk, const unsigned char *pem, size_t length) {
    unsigned char *copy = malloc(length + 1);
    if (copy == NULL) return -1;
    memcpy(copy, pem, length);
    copy[length] = 0;
    int rc = mbedtls_pk_parse_public_key(pk, copy, length + 1);
    free(copy);
    if (rc != 0) return -1;
    if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY) return -2;
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
    if (ec == NULL || CSIG_GRP_ID(ec) != MBEDTLS_ECP_DP_SECP256R1) return -2;
    return 0;
}

int csignature_check_key_p256(const unsigned char *pem, size_t pemLength) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = parse_key(&pk, pem, pemLength);
    mbedtls_pk_free(&pk);
    return rc;
}

int csignature_verify_p256(const unsigned char *pem, size_t pemLength,
                           const unsigned char *message, size_t messageLength,
                           const unsigned char *signature, size_t signatureLength) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = parse_key(&pk, pem, pemLength);
    if (rc == 0) {
        unsigned char hash[32];
        static const unsigned char empty[1] = {0};
        if (CSIG_SHA256(message != NULL ? message : empty, messageLength, hash) != 0) {
            rc = -3;
        } else {
            rc = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof hash, signature, signatureLength) == 0 ? 0 : 1;
        }
    }
    mbedtls_pk_free(&pk);
    return rc;
}

// The private-key side, for `bundle create --sign`. ECDSA needs fresh randomness per
// signature: a CTR-DRBG seeded from the platform's entropy (getrandom / /dev/urandom).
typedef struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} csig_rng;

static int rng_start(csig_rng *rng) {
    static const unsigned char personal[] = "satellite-lite bundle signature";
    mbedtls_entropy_init(&rng->entropy);
    mbedtls_ctr_drbg_init(&rng->drbg);
    return mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy, personal, sizeof personal - 1);
}

static void rng_stop(csig_rng *rng) {
    mbedtls_ctr_drbg_free(&rng->drbg);
    mbedtls_entropy_free(&rng->entropy);
}

// A private key (or, failing that, a public key) from PEM, checked to be P-256.
static int parse_any_key(mbedtls_pk_context *pk, const unsigned char *pem, size_t length, csig_rng *rng, int *isPrivate) {
    unsigned char *copy = malloc(length + 1);
    if (copy == NULL) return -1;
    memcpy(copy, pem, length);
    copy[length] = 0;
    int rc = CSIG_PARSE_KEY(pk, copy, length + 1, mbedtls_ctr_drbg_random, &rng->drbg);
    *isPrivate = rc == 0;
    if (rc != 0) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
        rc = mbedtls_pk_parse_public_key(pk, copy, length + 1);
    }
    mbedtls_platform_zeroize(copy, length + 1);
    free(copy);
    if (rc != 0) return -1;
    if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY) return -2;
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
    if (ec == NULL || CSIG_GRP_ID(ec) != MBEDTLS_ECP_DP_SECP256R1) return -2;
    return 0;
}

int csignature_sign_p256(const unsigned char *pem, size_t pemLength,
                         const unsigned char *message, size_t messageLength,
                         unsigned char *signature, size_t *signatureLength) {
    csig_rng rng;
    if (rng_start(&rng) != 0) {
        rng_stop(&rng);
        return -3;
    }
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int isPrivate = 0;
    int rc = parse_any_key(&pk, pem, pemLength, &rng, &isPrivate);
    if (rc == 0 && !isPrivate) rc = -1;
    if (rc == 0) {
        unsigned char hash[32];
        static const unsigned char empty[1] = {0};
        if (CSIG_SHA256(message != NULL ? message : empty, messageLength, hash) != 0) {
            rc = -3;
        } else if (CSIG_PK_SIGN(&pk, hash, signature, CSIGNATURE_MAX_SIGNATURE, signatureLength,
                                mbedtls_ctr_drbg_random, &rng.drbg) != 0) {
            rc = -4;
        }
    }
    mbedtls_pk_free(&pk);
    rng_stop(&rng);
    return rc;
}

int csignature_public_der_p256(const unsigned char *pem, size_t pemLength,
                               unsigned char *der, size_t capacity, size_t *derLength) {
    csig_rng rng;
    if (rng_start(&rng) != 0) {
        rng_stop(&rng);
        return -3;
    }
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int isPrivate = 0;
    int rc = parse_any_key(&pk, pem, pemLength, &rng, &isPrivate);
    if (rc == 0) {
        // mbedtls_pk_write_pubkey_der writes at the END of the buffer and returns the length.
        int written = mbedtls_pk_write_pubkey_der(&pk, der, capacity);
        if (written <= 0) {
            rc = -4;
        } else {
            memmove(der, der + capacity - (size_t)written, (size_t)written);
            *derLength = (size_t)written;
        }
    }
    mbedtls_pk_free(&pk);
    rng_stop(&rng);
    return rc;
}
