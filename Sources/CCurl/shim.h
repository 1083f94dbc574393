#ifndef SATELLITE_CCURL_SHIM_H
#define SATELLITE_CCURL_SHIM_H

#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
// wrapper per argument kind. The *_LARGE options take curl_off_t, which is 64-bit even
// where `long` is 32-bit (armv7), so they get their own wrapper.

static inline CURLcode ccurl_setopt_long(CURL *_Nonnull curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_off(CURL *_Nonnull curl, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_ptr(CURL *_Nonnull curl, CURLoption option, void *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_string(CURL *_Nonnull curl, CURLoption option, const char *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_slist(CURL *_Nonnull curl, CURLoption option, struct curl_slist *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

typedef size_t (*ccurl_data_callback)(char *_Nonnull data, size_t size, size_t count, void *_Nullable userdata);
typedef int (*ccurl_xferinfo_callback)(void *_Nullable userdata, curl_off_t dltotal, curl_off_t dlnow,
                                       curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode ccurl_setopt_write_function(CURL *_Nonnull curl, ccurl_data_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fn);
}

static inline CURLcode ccurl_setopt_header_function(CURL *_Nonnull curl, ccurl_data_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, fn);
}

static inline CURLcode ccurl_setopt_read_function(CURL *_Nonnull curl, ccurl_data_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_READFUNCTION, fn);
}

static inline CURLcode ccurl_setopt_xferinfo_function(CURL *_Nonnull curl, ccurl_xferinfo_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, fn);
}

static inline CURLcode ccurl_getinfo_long(CURL *_Nonnull curl, CURLINFO info, long *_Nonnull value) {
    return curl_easy_getinfo(curl, info, value);
}

static inline CURLcode ccurl_getinfo_off(CURL *_Nonnull curl, CURLINFO info, curl_off_t *_Nonnull value) {
    return curl_easy_getinfo(curl, info, value);
}

static inline CURLcode ccurl_getinfo_string(CURL *_Nonnull curl, CURLINFO info, const char *_Nullable *_Nonnull value) {
    return curl_easy_getinfo(curl, info, value);
}

#endif
