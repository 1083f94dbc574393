#include "ctls_verify.h"

#include <arpa/inet.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>
#include <string.h>

void ctls_peer_parse(ctls_peer *peer, const char *host) {
    char text[64];
    size_t length = strlen(host);
    peer->length = 0;
    if (length == 0 || length >= sizeof text) return;
    if (host[0] == '[' && host[length - 1] == ']') {  // an IPv6 URL host
        memcpy(text, host + 1, length - 2);
        text[length - 2] = 0;
    } else {
        memcpy(text, host, length + 1);
    }
    char *zone = strchr(text, '%');  // fe80::1%eth0: the zone is not part of the address
    if (zone) *zone = 0;
    if (inet_pton(AF_INET, text, peer->address) == 1) {
        peer->length = 4;
    } else if (inet_pton(AF_INET6, text, peer->address) == 1) {
        peer->length = 16;
    }
}

#if MBEDTLS_VERSION_MAJOR == 2

// mbedTLS calls this for every certificate of the chain, the server's own last (depth 0),
// with the flags its own checks set; what it leaves in *flags is the verdict.
static int verify_ip_san(void *context, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
    const ctls_peer *peer = context;
    if (depth != 0 || peer->length == 0 || !(*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)) return 0;
    if (!(crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME)) return 0;
    // mbedTLS 2.28 keeps every subjectAltName entry with its tag, also those it does not
    // interpret: iPAddress is [7] IMPLICIT OCTET STRING (4 or 16 bytes).
    for (const mbedtls_x509_sequence *san = &crt->subject_alt_names; san != NULL; san = san->next) {
        if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && san->buf.p != NULL &&
            san->buf.len == (size_t)peer->length && memcmp(san->buf.p, peer->address, (size_t)peer->length) == 0) {
            *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
            break;
        }
    }
    return 0;
}

// curl calls this once per TLS connection, before the handshake, with the connection's
// mbedtls_ssl_config. The effective URL is the one being connected to (after redirects).
static CURLcode install(CURL *curl, void *sslctx, void *userdata) {
    ctls_peer *peer = userdata;
    peer->length = 0;
    char *url = NULL;
    if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url != NULL) {
        CURLU *parsed = curl_url();
        char *host = NULL;
        if (parsed != NULL && curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != NULL) {
            ctls_peer_parse(peer, host);
        }
        curl_free(host);
        curl_url_cleanup(parsed);
    }
    if (peer->length != 0) {
        mbedtls_ssl_config *config = sslctx;
        mbedtls_ssl_conf_verify(config, verify_ip_san, peer);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
        // `peer` lives for one transfer, the connection possibly longer (curl keeps it for
        // the next request): with renegotiation (which curl enables) a later handshake on
        // it would call verify_ip_san with a stale `peer`. No registry needs TLS 1.2
        // renegotiation, so connections that carry the callback refuse it.
        mbedtls_ssl_conf_renegotiation(config, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    }
    return CURLE_OK;
}

CURLcode ctls_enable_ip_san_check(CURL *curl, ctls_peer *peer) {
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    if (info == NULL || info->ssl_version == NULL || strncmp(info->ssl_version, "mbedTLS/2.", 10) != 0) {
        return CURLE_NOT_BUILT_IN;
    }
    peer->length = 0;
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, (void *)peer);
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, install);
    return rc;
}

#else

CURLcode ctls_enable_ip_san_check(CURL *curl, ctls_peer *peer) {
    (void)curl;
    (void)peer;
    return CURLE_NOT_BUILT_IN;
}

#endif
