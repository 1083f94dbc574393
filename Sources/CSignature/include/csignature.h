#ifndef SATELLITE_CSIGNATURE_H
#define SATELLITE_CSIGNATURE_H

#include <stddef.h>

/// Verifies an ASN.1 DER ECDSA signature over SHA-256(`message`) with a PEM
/// SubjectPublicKeyInfo P-256 public key, through mbedTLS's `pk` API.
/// Returns 0 when valid, 1 when the signature does not verify, -1 when the key cannot be
/// parsed, -2 when the key is not ECDSA P-256, -3 on an internal hashing error.
int csignature_verify_p256(const unsigned char *_Nonnull pem, size_t pemLength,
                           const unsigned char *_Nullable message, size_t messageLength,
                           const unsigned char *_Nonnull signature, size_t signatureLength);

/// 0 when `pem` is a PEM P-256 public key; a negative code as above otherwise.
int csignature_check_key_p256(const unsigned char *_Nonnull pem, size_t pemLength);

/// Signs SHA-256(`message`) with a PEM P-256 private key (SEC1 `EC PRIVATE KEY` or PKCS#8
/// `PRIVATE KEY`, unencrypted) through mbedTLS's `pk` API; writes the ASN.1 DER signature
/// to `signature` (at least 72 bytes: CSIGNATURE_MAX_SIGNATURE) and its length to
/// `signatureLength`. Returns 0 on success, -1 when the key cannot be parsed, -2 when it is
/// not ECDSA P-256, -3 on an internal hashing or random-generator error, -4 when signing fails.
int csignature_sign_p256(const unsigned char *_Nonnull pem, size_t pemLength,
                         const unsigned char *_Nullable message, size_t messageLength,
                         unsigned char *_Nonnull signature, size_t *_Nonnull signatureLength);

/// Writes the DER SubjectPublicKeyInfo of a PEM P-256 key (public or private) to `der`
/// (`capacity` bytes; 128 suffice) and its length to `derLength`. Returns 0, or a negative
/// code as above.
int csignature_public_der_p256(const unsigned char *_Nonnull pem, size_t pemLength,
                               unsigned char *_Nonnull der, size_t capacity, size_t *_Nonnull derLength);

#define CSIGNATURE_MAX_SIGNATURE 80

#endif
