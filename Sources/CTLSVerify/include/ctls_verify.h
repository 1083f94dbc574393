#ifndef SATELLITE_CTLS_VERIFY_H
#define SATELLITE_CTLS_VERIFY_H

#include <curl/curl.h>

/// The host of the connection being verified, when it is an IP address literal.
typedef struct ctls_peer {
    int length;                 // 4 (IPv4), 16 (IPv6), 0 (a name, or unknown)
    unsigned char address[16];
} ctls_peer;

/// Makes a curl handle whose TLS is mbedTLS 2.x accept a server certificate for an IP
/// address literal by its iPAddress subjectAltName, which mbedTLS 2.28 does not compare
/// (it compares the host text with dNSName entries and the CN only). Nothing else of the
/// verification changes: the chain must still verify against the CA, and a certificate
/// without that exact address still fails with BADCERT_CN_MISMATCH.
///
/// `peer` is scratch space for the handle's connections; it must stay valid until the
/// transfer is over (connections that use it refuse TLS renegotiation, so nothing reads it
/// after their handshake). Returns CURLE_OK, or CURLE_NOT_BUILT_IN where curl's TLS is not
/// mbedTLS 2.x (OpenSSL and mbedTLS 3.5+ compare iPAddress entries themselves).
CURLcode ctls_enable_ip_san_check(CURL *_Nonnull curl, ctls_peer *_Nonnull peer);

/// Parses an IP address literal ("10.0.0.5", "::1", "[::1]") into `peer`; length 0 when the
/// text is not one. (Exposed for tests.)
void ctls_peer_parse(ctls_peer *_Nonnull peer, const char *_Nonnull host);

#endif
