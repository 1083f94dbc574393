#ifndef SATELLITE_CZLIB_SHIM_H
#define SATELLITE_CZLIB_SHIM_H

#include <zlib.h>

// inflateInit2 and deflateInit2 are macros (they pass the version and struct size), which
// Swift does not import.

static inline int czlib_inflate_init2(z_stream *_Nonnull stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

static inline int czlib_deflate_init2(z_stream *_Nonnull stream, int level, int windowBits) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}

#endif
