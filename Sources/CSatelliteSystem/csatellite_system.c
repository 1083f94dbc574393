#define _GNU_SOURCE
#include "csatellite_system.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

int csystem_start_writeback(int fd, int64_t offset, int64_t length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)length;
    return -1;
#endif
}

// The next three are declared by the C library only under _GNU_SOURCE, which Swift's Glibc
// module does not set. Calling them from C links them directly, also into a fully static
// binary (looking them up with dlsym finds nothing there).

int csystem_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int csystem_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    return posix_spawn_file_actions_addchdir_np(actions, path);
#else
    (void)actions; (void)path;
    return ENOSYS;
#endif
}

int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
#else
    (void)actions; (void)from;
    return ENOSYS;
#endif
}

int csystem_crypt_hash(const char *password, const char *setting, char *output, int capacity) {
    // struct crypt_data is about 32 KiB: on the heap, not on a pool thread's stack.
    struct crypt_data *data = calloc(1, sizeof *data);
    if (data == NULL) return -1;
    const char *hashed = crypt_r(password, setting, data);
    int status = -1;
    // libxcrypt answers an unsupported or malformed setting with a string starting '*'.
    if (hashed != NULL && hashed[0] != '*') {
        size_t length = strlen(hashed);
        if (capacity > 0 && length < (size_t)capacity) {
            memcpy(output, hashed, length + 1);
            status = 0;
        }
    }
    explicit_bzero(data, sizeof *data);
    free(data);
    return status;
}
