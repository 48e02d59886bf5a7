/* race.cpp — the emulator's shared-memory race check, for kernels compiled
 * with GCC's -fsanitize=thread (the race build, CMakeLists.txt): that
 * instrumentation calls these hooks at every load and store, and no
 * ThreadSanitizer runtime is linked, so they are ours. Each hands the
 * access to the engine (emu.cpp's shared_access), which ignores everything
 * but shared memory touched by a kernel thread. */
#include "kernels/cuda/emu/emu.h"

extern "C" {
void __tsan_init() {}
void __tsan_read1(void *p) { emu::shared_access(p, 1, false); }
void __tsan_read2(void *p) { emu::shared_access(p, 2, false); }
void __tsan_read4(void *p) { emu::shared_access(p, 4, false); }
void __tsan_read8(void *p) { emu::shared_access(p, 8, false); }
void __tsan_read16(void *p) { emu::shared_access(p, 16, false); }
void __tsan_write1(void *p) { emu::shared_access(p, 1, true); }
void __tsan_write2(void *p) { emu::shared_access(p, 2, true); }
void __tsan_write4(void *p) { emu::shared_access(p, 4, true); }
void __tsan_write8(void *p) { emu::shared_access(p, 8, true); }
void __tsan_write16(void *p) { emu::shared_access(p, 16, true); }
void __tsan_read_range(void *p, unsigned long n) {
  if (n) emu::shared_access(p, n, false);
}
void __tsan_write_range(void *p, unsigned long n) {
  if (n) emu::shared_access(p, n, true);
}
}
