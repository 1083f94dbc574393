#ifndef SATELLITE_CTLS_SERVER_H
#define SATELLITE_CTLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

// A TLS server over mbedTLS's ssl module with memory BIOs: the caller (a SwiftNIO channel
// handler) feeds the ciphertext it read and takes the ciphertext to write. Nothing here
// touches a socket, so the event loop never blocks.

/// The certificate, key and mbedTLS config of a listener; shared by its connections
/// (read-only once made; the random generator is locked). Reference counted: a
/// connection holds its config alive after a reload replaced it.
typedef struct ctls_server_config ctls_server_config;
typedef struct ctls_conn ctls_conn;

/// Results besides byte counts (>= 0) and mbedTLS error codes (< 0).
#define CTLS_WANT_READ (-0x6900)   /* MBEDTLS_ERR_SSL_WANT_READ */
#define CTLS_WANT_WRITE (-0x6880)  /* MBEDTLS_ERR_SSL_WANT_WRITE */
#define CTLS_CLOSED (-0x7880)      /* MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY */

/// The inbound ciphertext a connection buffers before mbedTLS takes it (bytes).
#define CTLS_INBOUND_CAPACITY 20480
/// Outbound ciphertext beyond this waits (WANT_WRITE) until the caller takes it.
#define CTLS_OUTBOUND_CAPACITY 65536

/// Reads the PEM certificate chain and private key, checks that they belong together and
/// makes a TLS 1.2 server config (ECDHE with AES-GCM or ChaCha20-Poly1305 only). NULL with
/// a message in `error` on failure.
ctls_server_config *_Nullable ctls_server_config_new(
    const char *_Nonnull cert_path, const char *_Nonnull key_path, char *_Nonnull error, size_t error_len);
void ctls_server_config_retain(ctls_server_config *_Nonnull config);
void ctls_server_config_release(ctls_server_config *_Nonnull config);
/// The subject and expiry of the leaf certificate, for logs.
void ctls_server_config_describe(const ctls_server_config *_Nonnull config, char *_Nonnull out, size_t out_len);
/// The negotiated-protocol summary the config allows (e.g. "TLSv1.2"), for logs.
const char *_Nonnull ctls_protocols(void);

/// A connection; retains `config`. NULL when out of memory.
ctls_conn *_Nullable ctls_conn_new(ctls_server_config *_Nonnull config);
void ctls_conn_free(ctls_conn *_Nullable conn);
/// Copies up to the free inbound capacity from `data`; returns the bytes taken.
size_t ctls_conn_feed(ctls_conn *_Nonnull conn, const uint8_t *_Nonnull data, size_t len);
size_t ctls_conn_inbound_free(const ctls_conn *_Nonnull conn);
/// Advances the handshake: 0 when complete, CTLS_WANT_READ/WRITE, or an mbedTLS error.
int ctls_conn_handshake(ctls_conn *_Nonnull conn);
/// Decrypts into `out`: bytes (> 0), CTLS_WANT_READ, CTLS_CLOSED, or an mbedTLS error.
int ctls_conn_read(ctls_conn *_Nonnull conn, uint8_t *_Nonnull out, size_t len);
/// Encrypts up to `len` bytes of `data` (at most one record): bytes taken (> 0),
/// CTLS_WANT_WRITE (take the outbound bytes and call again), or an mbedTLS error.
int ctls_conn_write(ctls_conn *_Nonnull conn, const uint8_t *_Nonnull data, size_t len);
/// Queues the close_notify alert.
int ctls_conn_close_notify(ctls_conn *_Nonnull conn);
size_t ctls_conn_outbound_pending(const ctls_conn *_Nonnull conn);
/// Moves up to `cap` bytes of pending ciphertext to `out`; returns the bytes moved.
size_t ctls_conn_take_outbound(ctls_conn *_Nonnull conn, uint8_t *_Nonnull out, size_t cap);
/// The negotiated version and cipher suite ("TLSv1.2", "TLS-ECDHE-...").
const char *_Nonnull ctls_conn_version(const ctls_conn *_Nonnull conn);
const char *_Nonnull ctls_conn_ciphersuite(const ctls_conn *_Nonnull conn);
/// mbedTLS's text for an error code.
void ctls_strerror(int code, char *_Nonnull out, size_t out_len);

#endif
