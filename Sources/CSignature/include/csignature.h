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

#endif
