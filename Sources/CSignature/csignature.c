#include "csignature.h"

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <stdlib.h>
#include <string.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#define CSIG_GRP_ID(ec) ((ec)->MBEDTLS_PRIVATE(grp).id)
#define CSIG_SHA256(in, len, out) mbedtls_sha256((in), (len), (out), 0)
#else
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
