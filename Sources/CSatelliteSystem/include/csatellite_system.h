#ifndef SATELLITE_CSYSTEM_H
#define SATELLITE_CSYSTEM_H

#include <spawn.h>
#include <stdint.h>

/// Starts writeback of a file range without waiting for it (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); a later fsync then has little left to flush. Returns 0, or -1
/// where the call does not exist (the caller just carries on).
int csystem_start_writeback(int fd, int64_t offset, int64_t length);

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start. 0, or -1 with errno.
int csystem_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addchdir_np (glibc 2.29+): 0, an error number, or ENOSYS where
/// the C library lacks it (the caller then changes directory in the child's shell).
int csystem_spawn_addchdir(posix_spawn_file_actions_t *_Nonnull actions, const char *_Nonnull path);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): the child closes every
/// descriptor from `from` up. 0, an error number, or ENOSYS where the C library lacks it.
int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *_Nonnull actions, int from);

/// Hashes `password` with the salt and parameters of `setting` (an htpasswd entry: bcrypt
/// `$2y$`, SHA-crypt `$5$`/`$6$`) through libxcrypt's crypt_r, writing the NUL-terminated
/// result into `output`. 0 on success; -1 when the setting is not a supported hash or the
/// result does not fit. The caller compares `output` with the entry in constant time.
int csystem_crypt_hash(const char *_Nonnull password, const char *_Nonnull setting, char *_Nonnull output, int capacity);

#endif
