// shim_test: exercises the C side of satellite-lite on a target (built by cross/build-c.sh,
// run under qemu-user-static): the typed libcurl setopt/getinfo shims of Sources/CCurl,
// SHA-256/512 through the mbedTLS shims of Sources/CMbedTLS, the hardware SHA-256 of
// Sources/CSHA256, gzip inflate through Sources/CZlib, sync_file_range through
// Sources/CSatelliteSystem, and the 64-bit file offset and time
// ABI (_FILE_OFFSET_BITS=64, _TIME_BITS=64) that 32-bit targets need.
//
// The curl part makes one request to a tiny HTTP server on a thread of this process
// (127.0.0.1, ephemeral port): no network. The request resumes at 5 GiB through
// ccurl_setopt_off(CURLOPT_RESUME_FROM_LARGE), so the server sees whether the 64-bit
// curl_off_t went through the variadic curl_easy_setopt intact (it would not on armv7 if
// passed as a 32-bit long).
//
// Usage: shim_test [--expect-tls NAME] [--expect-sha BACKEND]   (prints one line per
// check, then "shim_test: N checks, F failures"; exit status 0 only without failures).

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "CCurl/shim.h"
#include "CMbedTLS/shim.h"
#include "CZlib/shim.h"
#include "csha256.h"
#if __has_include("ctls_verify.h")
#include "ctls_verify.h"
#define HAVE_CTLS_VERIFY 1
#endif
#if __has_include("csatellite_system.h")
#include "csatellite_system.h"
#define HAVE_CSATELLITE_SYSTEM 1
#endif

static int checks, failures;

#define CHECK(cond, ...)                              \
    do {                                              \
        checks++;                                     \
        int ok_ = (cond);                             \
        if (!ok_) failures++;                         \
        printf("%s ", ok_ ? "ok  " : "FAIL");         \
        printf(__VA_ARGS__);                          \
        printf("\n");                                 \
    } while (0)

static void hex(const unsigned char *bytes, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", bytes[i]);
    out[2 * n] = 0;
}

// ------------------------------------------------------------------ ABI sizes
static void test_abi(void) {
    CHECK(sizeof(off_t) == 8, "sizeof(off_t) == %zu (_FILE_OFFSET_BITS=64)", sizeof(off_t));
    CHECK(sizeof(time_t) == 8, "sizeof(time_t) == %zu (_TIME_BITS=64)", sizeof(time_t));
    CHECK(sizeof(curl_off_t) == 8, "sizeof(curl_off_t) == %zu", sizeof(curl_off_t));
    printf("info sizeof(long) == %zu, sizeof(void *) == %zu, sizeof(size_t) == %zu\n", sizeof(long),
           sizeof(void *), sizeof(size_t));

    // A file larger than 2 GiB (sparse): write one byte at 3 GiB, stat it, read it back.
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/shim_test.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "mkstemp in %s: %s", dir, strerror(errno));
        return;
    }
    const off_t big = (off_t)3 << 30;
    const char byte = 'x';
    ssize_t w = pwrite(fd, &byte, 1, big);
    struct stat st;
    int s = fstat(fd, &st);
    char back = 0;
    ssize_t r = pread(fd, &back, 1, big);
    CHECK(w == 1 && s == 0 && st.st_size == big + 1 && r == 1 && back == 'x',
          "sparse file: pwrite/fstat/pread at 3 GiB (st_size %lld)", (long long)st.st_size);
    off_t end = lseek(fd, 0, SEEK_END);
    CHECK(end == big + 1, "lseek(SEEK_END) == %lld", (long long)end);
#ifdef HAVE_CSATELLITE_SYSTEM
    // sync_file_range over a range beyond 2 GiB (ENOSYS where the kernel or emulator lacks it).
    errno = 0;
    int wb = csystem_start_writeback(fd, (int64_t)big - 4096, 8192);
    int wb_errno = errno;
    CHECK(wb == 0 || wb_errno == ENOSYS, "csystem_start_writeback at 3 GiB: %d (%s)", wb,
          wb == 0 ? "started" : strerror(wb_errno));
    // The hook runner's spawn helpers: linked from the C library (bookworm's glibc 2.36 has
    // all three), pipe ends close-on-exec.
    int fds[2] = {-1, -1};
    int p = csystem_pipe_cloexec(fds);
    CHECK(p == 0 && (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) && (fcntl(fds[1], F_GETFD) & FD_CLOEXEC),
          "csystem_pipe_cloexec: both ends close-on-exec");
    if (p == 0) { close(fds[0]); close(fds[1]); }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int cd = csystem_spawn_addchdir(&actions, "/");
    int cf = csystem_spawn_addclosefrom(&actions, 3);
    posix_spawn_file_actions_destroy(&actions);
    CHECK(cd == 0 && cf == 0, "csystem_spawn_addchdir %d, csystem_spawn_addclosefrom %d (glibc 2.36: both 0)", cd, cf);
#endif
    close(fd);
    unlink(path);

    // A time after 2038 round-trips through gmtime_r.
    time_t t = (time_t)4102444800LL;  // 2100-01-01T00:00:00Z
    struct tm tm;
    CHECK(gmtime_r(&t, &tm) && tm.tm_year == 200 && tm.tm_mon == 0 && tm.tm_mday == 1,
          "gmtime_r(4102444800) is 2100-01-01");
}

// ------------------------------------------------------------------ SHA-256 / SHA-512
static const struct {
    const char *input;
    size_t repeat;
    const char *sha256;
} vectors[] = {
    // FIPS 180-2 appendix B
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
};

static void sha256_mbedtls(const char *input, size_t repeat, char out[65]) {
    mbedtls_sha256_context ctx;
    unsigned char digest[32];
    cmbedtls_sha256_init(&ctx);
    int rc = cmbedtls_sha256_starts(&ctx);
    for (size_t i = 0; i < repeat; i++) rc |= cmbedtls_sha256_update(&ctx, (const unsigned char *)input, strlen(input));
    rc |= cmbedtls_sha256_finish(&ctx, digest);
    cmbedtls_sha256_free(&ctx);
    hex(digest, 32, out);
    if (rc) strcpy(out, "error");
}

static void sha256_hw(const char *input, size_t repeat, char out[65]) {
    csha256_ctx ctx;
    uint8_t digest[32];
    csha256_init(&ctx);
    for (size_t i = 0; i < repeat; i++) csha256_update(&ctx, input, strlen(input));
    csha256_digest(&ctx, digest);
    hex(digest, 32, out);
}

static void test_sha(const char *expect_backend) {
    char got[129];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        sha256_mbedtls(vectors[i].input, vectors[i].repeat, got);
        CHECK(strcmp(got, vectors[i].sha256) == 0, "mbedTLS SHA-256 FIPS vector %zu (\"%.8s\"%s): %s", i,
              vectors[i].input, vectors[i].repeat > 1 ? " x1e6" : "", got);
    }
    mbedtls_sha512_context c512;
    unsigned char d512[64];
    cmbedtls_sha512_init(&c512);
    cmbedtls_sha512_starts(&c512);
    cmbedtls_sha512_update(&c512, (const unsigned char *)"abc", 3);
    cmbedtls_sha512_finish(&c512, d512);
    cmbedtls_sha512_free(&c512);
    hex(d512, 64, got);
    CHECK(strcmp(got, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f") == 0,
          "mbedTLS SHA-512(\"abc\")");

    const char *backend = csha256_backend();
    printf("info csha256 backend: %s (available: %d)\n", backend, csha256_available());
    if (expect_backend) {
        CHECK(strcmp(backend, expect_backend) == 0, "csha256 backend is %s (expected %s)", backend, expect_backend);
    }
    if (!csha256_available()) {
        printf("skip csha256 vectors: no SHA-256 instructions on this CPU (callers use mbedTLS)\n");
        return;
    }
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        sha256_hw(vectors[i].input, vectors[i].repeat, got);
        CHECK(strcmp(got, vectors[i].sha256) == 0, "csha256 (%s) FIPS vector %zu: %s", backend, i, got);
    }
    // Hardware vs mbedTLS on pseudo-random data, fed in odd-sized pieces.
    static unsigned char data[70000];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof data; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    int mismatches = 0;
    for (size_t len = 0; len < sizeof data; len = len * 3 + 1) {
        csha256_ctx hw;
        mbedtls_sha256_context sw;
        uint8_t a[32], b[32];
        csha256_init(&hw);
        cmbedtls_sha256_init(&sw);
        cmbedtls_sha256_starts(&sw);
        for (size_t off = 0, step = 1; off < len; off += step, step = step * 2 + 1) {
            size_t n = off + step > len ? len - off : step;
            csha256_update(&hw, data + off, n);
            cmbedtls_sha256_update(&sw, data + off, n);
        }
        csha256_digest(&hw, a);
        cmbedtls_sha256_finish(&sw, b);
        cmbedtls_sha256_free(&sw);
        mismatches += memcmp(a, b, 32) != 0;
    }
    CHECK(mismatches == 0, "csha256 == mbedTLS on random data of 12 lengths up to 70000 bytes");
}

// ------------------------------------------------------------------ zlib
static const unsigned char gzip_data[] = {
    // gzip (Python, mtime 0) of "satellite-lite: gzip via czlib_inflate_init2\n" x 3
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x2b, 0x4e, 0x2c, 0x49, 0xcd, 0xc9,
    0xc9, 0x2c, 0x49, 0xd5, 0x05, 0x11, 0x56, 0x0a, 0xe9, 0x55, 0x99, 0x05, 0x0a, 0x65, 0x99, 0x89,
    0x0a, 0xc9, 0x55, 0x39, 0x99, 0x49, 0xf1, 0x99, 0x79, 0x69, 0x39, 0x40, 0x15, 0x40, 0x3a, 0xb3,
    0xc4, 0x88, 0xab, 0x98, 0x66, 0x8a, 0x01, 0x6f, 0x3e, 0x3f, 0xa6, 0x87, 0x00, 0x00, 0x00,
};

static void test_zlib(void) {
    const char *line = "satellite-lite: gzip via czlib_inflate_init2\n";
    char expected[256] = "";
    for (int i = 0; i < 3; i++) strcat(expected, line);

    unsigned char out[512];
    z_stream s;
    memset(&s, 0, sizeof s);
    int rc = czlib_inflate_init2(&s, 16 + MAX_WBITS);  // gzip wrapper only
    s.next_in = (Bytef *)gzip_data;
    s.avail_in = sizeof gzip_data;
    s.next_out = out;
    s.avail_out = sizeof out;
    int end = inflate(&s, Z_FINISH);
    size_t n = sizeof out - s.avail_out;
    inflateEnd(&s);
    CHECK(rc == Z_OK && end == Z_STREAM_END && n == strlen(expected) && memcmp(out, expected, n) == 0,
          "czlib_inflate_init2(16+MAX_WBITS) inflates a gzip buffer (%zu bytes, zlib %s)", n, zlibVersion());

    // Round trip: gzip with czlib_deflate_init2, inflate with automatic header detection.
    unsigned char packed[512], unpacked[512];
    memset(&s, 0, sizeof s);
    rc = czlib_deflate_init2(&s, 6, 16 + MAX_WBITS);
    s.next_in = (Bytef *)expected;
    s.avail_in = (uInt)strlen(expected);
    s.next_out = packed;
    s.avail_out = sizeof packed;
    end = deflate(&s, Z_FINISH);
    size_t packed_len = sizeof packed - s.avail_out;
    deflateEnd(&s);
    memset(&s, 0, sizeof s);
    int rc2 = czlib_inflate_init2(&s, 32 + MAX_WBITS);
    s.next_in = packed;
    s.avail_in = (uInt)packed_len;
    s.next_out = unpacked;
    s.avail_out = sizeof unpacked;
    int end2 = inflate(&s, Z_FINISH);
    n = sizeof unpacked - s.avail_out;
    inflateEnd(&s);
    CHECK(rc == Z_OK && end == Z_STREAM_END && rc2 == Z_OK && end2 == Z_STREAM_END && packed[0] == 0x1f &&
              n == strlen(expected) && memcmp(unpacked, expected, n) == 0,
          "czlib_deflate_init2 -> gzip (%zu bytes) -> inflate round trip", packed_len);
}

// ------------------------------------------------------------------ curl
struct server {
    int fd;
    int port;
    char request[4096];
};

static void *serve_one(void *arg) {
    struct server *srv = arg;
    int c = accept(srv->fd, NULL, NULL);
    if (c < 0) return NULL;
    size_t used = 0;
    while (used < sizeof srv->request - 1) {
        ssize_t n = recv(c, srv->request + used, sizeof srv->request - 1 - used, 0);
        if (n <= 0) break;
        used += (size_t)n;
        srv->request[used] = 0;
        if (strstr(srv->request, "\r\n\r\n")) break;
    }
    const char *reply =
        "HTTP/1.1 206 Partial Content\r\n"
        "Content-Range: bytes 5368709120-5368709124/5368709125\r\n"
        "Content-Length: 5\r\n"
        "X-Shim-Test: yes\r\n"
        "Connection: close\r\n\r\n"
        "hello";
    send(c, reply, strlen(reply), 0);
    close(c);
    return NULL;
}

struct sink {
    char body[64];
    size_t length;
    int header_lines;
    int progress_calls;
};

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
    struct sink *sink = userdata;
    size_t n = size * count;
    size_t room = sizeof sink->body - 1 - sink->length;
    memcpy(sink->body + sink->length, data, n < room ? n : room);
    sink->length += n < room ? n : room;
    return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
    (void)data;
    ((struct sink *)userdata)->header_lines++;
    return size * count;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    ((struct sink *)userdata)->progress_calls++;
    return 0;
}

static void test_curl(const char *expect_tls) {
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "curl_global_init");
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    char protocols[256] = "";
    for (const char *const *p = info->protocols; p && *p; p++) {
        strcat(protocols, *p);
        strcat(protocols, " ");
    }
    printf("info %s\n", curl_version());
    printf("info protocols: %s\n", protocols);
    if (expect_tls) {
        CHECK(info->ssl_version && strncmp(info->ssl_version, expect_tls, strlen(expect_tls)) == 0,
              "libcurl TLS backend is %s (expected %s)", info->ssl_version ? info->ssl_version : "none", expect_tls);
        if (strcmp(expect_tls, "mbedTLS") == 0) {
            CHECK(strcmp(protocols, "http https ") == 0, "static libcurl speaks exactly http and https");
        }
    }
    CHECK(info->libz_version != NULL, "libcurl has zlib (%s)", info->libz_version ? info->libz_version : "none");
#ifdef HAVE_CTLS_VERIFY
    // The iPAddress SAN check installs itself on curl's mbedTLS 2.x backend only.
    {
        ctls_peer peer;
        ctls_peer_parse(&peer, "[fe80::1%eth0]");
        int v6 = peer.length == 16 && peer.address[0] == 0xfe && peer.address[15] == 1;
        ctls_peer_parse(&peer, "10.0.0.5");
        CHECK(v6 && peer.length == 4 && peer.address[0] == 10 && peer.address[3] == 5, "ctls_peer_parse of IPv6 and IPv4");
        CURL *probe = curl_easy_init();
        CURLcode rc = probe ? ctls_enable_ip_san_check(probe, &peer) : CURLE_FAILED_INIT;
        int mbedtls2 = info->ssl_version && strncmp(info->ssl_version, "mbedTLS/2.", 10) == 0;
        CHECK(rc == (mbedtls2 ? CURLE_OK : CURLE_NOT_BUILT_IN), "ctls_enable_ip_san_check with %s: %d",
              info->ssl_version ? info->ssl_version : "no TLS", (int)rc);
        if (probe) curl_easy_cleanup(probe);
    }
#endif

    struct server srv = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    int one = 1;
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(srv.fd, 1) != 0 ||
        getsockname(srv.fd, (struct sockaddr *)&addr, &alen) != 0) {
        CHECK(0, "loopback listener: %s", strerror(errno));
        return;
    }
    srv.port = ntohs(addr.sin_port);
    pthread_t thread;
    pthread_create(&thread, NULL, serve_one, &srv);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/library/test/blobs/sha256:00", srv.port);
    CURL *h = curl_easy_init();
    CHECK(h != NULL, "curl_easy_init");
    if (!h) return;
    struct sink sink = {0};
    const curl_off_t resume = (curl_off_t)5 << 30;  // 5 GiB: does not fit 32 bits
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/octet-stream");
    char errbuf[CURL_ERROR_SIZE + 1] = "";
    CURLcode set = CURLE_OK;
    set |= ccurl_setopt_string(h, CURLOPT_URL, url);
    set |= ccurl_setopt_long(h, CURLOPT_NOSIGNAL, 1);
    set |= ccurl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https");
    set |= ccurl_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set |= ccurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, 5000);
    set |= ccurl_setopt_long(h, CURLOPT_TIMEOUT_MS, 20000);
    set |= ccurl_setopt_long(h, CURLOPT_BUFFERSIZE, 65536);
    set |= ccurl_setopt_string(h, CURLOPT_USERAGENT, "satellite-lite-shim-test");
    set |= ccurl_setopt_ptr(h, CURLOPT_ERRORBUFFER, errbuf);
    set |= ccurl_setopt_off(h, CURLOPT_RESUME_FROM_LARGE, resume);
    set |= ccurl_setopt_off(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)3 << 31);
    set |= ccurl_setopt_slist(h, CURLOPT_HTTPHEADER, headers);
    set |= ccurl_setopt_ptr(h, CURLOPT_WRITEDATA, &sink);
    set |= ccurl_setopt_write_function(h, on_body);
    set |= ccurl_setopt_ptr(h, CURLOPT_HEADERDATA, &sink);
    set |= ccurl_setopt_header_function(h, on_header);
    set |= ccurl_setopt_long(h, CURLOPT_NOPROGRESS, 0);
    set |= ccurl_setopt_ptr(h, CURLOPT_XFERINFODATA, &sink);
    set |= ccurl_setopt_xferinfo_function(h, on_progress);
    CHECK(set == CURLE_OK, "typed setopt shims (long, off, ptr, string, slist, callbacks) accepted");
    // TLS options are accepted even without a connection (CAINFO is only read on connect).
    CHECK(ccurl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1) == CURLE_OK &&
              ccurl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2) == CURLE_OK &&
              ccurl_setopt_string(h, CURLOPT_CAINFO, "/nonexistent/ca.pem") == CURLE_OK,
          "TLS setopts (VERIFYPEER, VERIFYHOST, CAINFO)");

    CURLcode rc = curl_easy_perform(h);
    pthread_join(thread, NULL);
    close(srv.fd);
    CHECK(rc == CURLE_OK, "curl_easy_perform against the loopback server: %s",
          rc == CURLE_OK ? "ok" : (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    CHECK(strstr(srv.request, "Range: bytes=5368709120-\r\n") != NULL,
          "CURLOPT_RESUME_FROM_LARGE via ccurl_setopt_off reached the wire as bytes=5368709120-");
    CHECK(strstr(srv.request, "Accept: application/octet-stream\r\n") && strstr(srv.request, "User-Agent: satellite-lite-shim-test\r\n"),
          "header slist and user agent sent");
    long status = 0;
    curl_off_t downloaded = -1, length = -1;
    const char *effective = NULL;
    CHECK(ccurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 206,
          "ccurl_getinfo_long(RESPONSE_CODE) == %ld", status);
    CHECK(ccurl_getinfo_off(h, CURLINFO_SIZE_DOWNLOAD_T, &downloaded) == CURLE_OK && downloaded == 5,
          "ccurl_getinfo_off(SIZE_DOWNLOAD_T) == %lld", (long long)downloaded);
    CHECK(ccurl_getinfo_off(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK && length == 5,
          "ccurl_getinfo_off(CONTENT_LENGTH_DOWNLOAD_T) == %lld", (long long)length);
    CHECK(ccurl_getinfo_string(h, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective &&
              strcmp(effective, url) == 0,
          "ccurl_getinfo_string(EFFECTIVE_URL)");
    CHECK(sink.length == 5 && memcmp(sink.body, "hello", 5) == 0 && sink.header_lines >= 6 && sink.progress_calls > 0,
          "write/header/xferinfo callbacks (body \"%.*s\", %d header lines, %d progress calls)", (int)sink.length,
          sink.body, sink.header_lines, sink.progress_calls);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    curl_global_cleanup();
}

int main(int argc, char **argv) {
    const char *expect_tls = NULL, *expect_sha = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-tls") == 0 && i + 1 < argc) {
            expect_tls = argv[++i];
        } else if (strcmp(argv[i], "--expect-sha") == 0 && i + 1 < argc) {
            expect_sha = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--expect-tls NAME] [--expect-sha BACKEND]\n", argv[0]);
            return 64;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_abi();
    test_sha(expect_sha);
    test_zlib();
    test_curl(expect_tls);
    printf("shim_test: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
