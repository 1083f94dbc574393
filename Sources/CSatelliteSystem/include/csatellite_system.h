#ifndef SATELLITE_CSYSTEM_H
#define SATELLITE_CSYSTEM_H

#include <stdint.h>

/// Starts writeback of a file range without waiting for it (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); a later fsync then has little left to flush. Returns 0, or -1
/// where the call does not exist (the caller just carries on).
int csystem_start_writeback(int fd, int64_t offset, int64_t length);

#endif
