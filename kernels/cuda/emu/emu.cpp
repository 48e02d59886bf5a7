/* emu.cpp — the SIMT host emulator's engine: fibers, barriers, warp
 * collectives and launches (emu.h); device memory, streams and events are
 * runtime.cpp's. */
#include "kernels/cuda/emu/emu.h"
#include "kernels/cuda/emu/emu_stats.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <xmmintrin.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define EMU_ASAN 0
#endif

/* The bounds of the section "emu_shared" (every static __shared__ variable);
 * the linker defines them, weak for a program that declares none. */
extern "C" unsigned char __start_emu_shared[] __attribute__((weak));
extern "C" unsigned char __stop_emu_shared[] __attribute__((weak));

#if !defined(__x86_64__)
#error "the emulator's fiber switch is written for x86-64"
#endif

/* Saves the callee-saved registers on the current stack, stores the stack
 * pointer in *save and continues on the stack `next` (System V x86-64). A
 * hand-written switch: swapcontext would add a signal-mask system call to
 * every barrier. */
extern "C" void emu_ctx_switch(void **save, void *next);
__asm__(".text\n"
        ".globl emu_ctx_switch\n"
        ".type emu_ctx_switch,@function\n"
        "emu_ctx_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size emu_ctx_switch, .-emu_ctx_switch\n");

namespace emu {

enum fiber_state { F_READY, F_BLOCK_BARRIER, F_WARP, F_DONE };

/* AddressSanitizer grows stack frames; 256 KiB leaves room for its redzones. */
constexpr size_t STACK_BYTES = 256 * 1024;
constexpr unsigned MAX_THREADS = 1024;
constexpr size_t MAX_SHARED = 48 * 1024;

struct fiber {
  void *sp = nullptr;
  char *stack = nullptr;
  uint3 tid{0, 0, 0};
  unsigned linear = 0;
  fiber_state state = F_DONE;
  const char *file = nullptr; /* site of the barrier or collective it waits at */
  int line = 0;
  unsigned mask = 0;   /* warp collective: lanes taking part */
  uint64_t value = 0;  /* warp collective: this lane's contribution */
  int src = 0;         /* warp collective: lane whose value this lane reads */
  uint64_t result = 0; /* warp collective: the value read */
  void *fake_stack = nullptr;
};

fiber *g_cur = nullptr;
uint3 g_block_idx{0, 0, 0};
dim3 g_block_dim, g_grid_dim;

namespace {

std::vector<fiber> fibers; /* a pool: the first nthr are the threads of the block */
unsigned nthr = 0;
void *sched_sp = nullptr; /* the scheduler's saved stack pointer */
#if EMU_ASAN
const void *sched_stack_bottom = nullptr; /* its stack, for AddressSanitizer */
size_t sched_stack_size = 0;
#endif
void (*cur_body)(void *) = nullptr;
void *cur_ctx = nullptr;
const char *cur_kernel = "";
std::vector<unsigned char> dyn_buf; /* dynamic shared memory of the launch */
unsigned char *dyn_ptr = nullptr;
uint64_t rng_state = 0;

/* The shared-memory race check (race.cpp's hooks call shared_access): the
 * last plain write of each 4-byte word of shared memory, and the intervals
 * it was made in. A block's barriers and each warp's collectives end an
 * interval; a read in the writer's interval by another thread is a race. */
struct word_rec {
  uint32_t block;  /* block_serial of the write; a stale block's record is void */
  uint32_t thread; /* 1 + the writer's linear thread index */
  uint32_t bar;    /* bar_epoch at the write */
  uint32_t warp;   /* the writer warp's warp_epoch at the write */
};
std::vector<word_rec> static_recs, dyn_recs; /* by word of emu_shared, of dyn_buf */
uint32_t block_serial = 0, bar_epoch = 0;
uint32_t warp_epoch[MAX_THREADS / 32];
int atomic_depth = 0; /* inside an atomic: exempt, as the hardware orders them */

[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u): ", cur_kernel, g_block_idx.x,
               g_block_idx.y, g_block_idx.z);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::_Exit(70); /* an exit status, not a signal: ctest matches the report */
}

uint64_t next_random() {
  rng_state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = rng_state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Shared memory holds this at the start of each block, 8 bytes at a time:
 * bytes 0-3 are a signalling NaN as a float, all 8 a signalling NaN as a
 * double (bytes 4-7 alone are a quiet NaN as a float: no single pattern is a
 * signalling NaN both ways). Launches unmask FE_INVALID, so the first
 * arithmetic on a value no thread of the block wrote traps (on_fpe). */
constexpr uint32_t POISON_LO = 0x7fa5a5a5u, POISON_HI = 0x7ff4a5a5u;
constexpr uint64_t POISON = uint64_t(POISON_HI) << 32 | POISON_LO;
constexpr unsigned MXCSR_INVALID_MASK = 0x80;

void poison(unsigned char *p, size_t n) {
  size_t i = 0;
  if (!(reinterpret_cast<uintptr_t>(p) & 7)) /* the usual case: whole words, every block */
    for (; i + 8 <= n; i += 8)
      std::memcpy(p + i, &POISON, 8);
  for (; i < n; i += 4) {
    uint32_t w = (reinterpret_cast<uintptr_t>(p + i) & 4) ? POISON_HI : POISON_LO;
    std::memcpy(p + i, &w, n - i < 4 ? n - i : 4);
  }
}

bool is_poison32(uint32_t w) { return w == POISON_LO || w == POISON_HI; }

/* The address of the memory operand of the legacy-SSE instruction at the
 * trapping pc (prefixes, REX, 0F opcode, ModRM, SIB, displacement), or 0. */
uintptr_t sse_mem_operand(const ucontext_t *uc) {
  static const int gpr[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                              REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                              REG_R12, REG_R13, REG_R14, REG_R15};
  const greg_t *g = uc->uc_mcontext.gregs;
  const unsigned char *p = reinterpret_cast<const unsigned char *>(g[REG_RIP]);
  while (*p == 0x66 || *p == 0xf2 || *p == 0xf3)
    p++;
  unsigned rex = (*p & 0xf0) == 0x40 ? *p++ : 0;
  if (*p++ != 0x0f) return 0;
  unsigned op = *p++;
  bool imm8 = op == 0xc2 || op == 0x3a; /* cmpss/cmpsd, 0F 3A (roundss, ...) */
  if (op == 0x38 || op == 0x3a) p++;
  unsigned modrm = *p++, mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3) return 0;
  uintptr_t ea = 0;
  int32_t d32;
  if (rm == 4) {
    unsigned sib = *p++, idx = (sib >> 3 & 7) | (rex & 2) << 2, base = (sib & 7) | (rex & 1) << 3;
    if (idx != 4) ea += static_cast<uintptr_t>(g[gpr[idx]]) << (sib >> 6);
    if ((sib & 7) == 5 && mod == 0) {
      std::memcpy(&d32, p, 4), p += 4, ea += static_cast<uintptr_t>(static_cast<intptr_t>(d32));
    } else {
      ea += static_cast<uintptr_t>(g[gpr[base]]);
    }
  } else if (rm == 5 && mod == 0) { /* RIP-relative: from the end of the instruction */
    std::memcpy(&d32, p, 4), p += 4;
    return reinterpret_cast<uintptr_t>(p + imm8) +
           static_cast<uintptr_t>(static_cast<intptr_t>(d32));
  } else {
    ea = static_cast<uintptr_t>(g[gpr[rm | (rex & 1) << 3]]);
  }
  if (mod == 1) ea += static_cast<uintptr_t>(static_cast<intptr_t>(static_cast<int8_t>(*p)));
  if (mod == 2) std::memcpy(&d32, p, 4), ea += static_cast<uintptr_t>(static_cast<intptr_t>(d32));
  return ea;
}

/* Whether the trapping instruction works on the poison: an XMM register or
 * its memory operand holds it (the operand was readable: the trap came after
 * the load). */
__attribute__((no_sanitize_address)) bool poison_operand(const ucontext_t *uc) {
  const auto *fp = uc->uc_mcontext.fpregs;
  for (int r = 0; r < 16; r++) {
    const uint32_t *e = fp->_xmm[r].element;
    for (int l = 0; l < 4; l++)
      if (e[l] == POISON_LO) return true;
    if ((uint64_t(e[1]) << 32 | e[0]) == POISON || (uint64_t(e[3]) << 32 | e[2]) == POISON)
      return true;
  }
  uintptr_t ea = sse_mem_operand(uc);
  uint32_t w;
  if (!ea) return false;
  std::memcpy(&w, reinterpret_cast<const void *>(ea), 4);
  return is_poison32(w);
}

struct sigaction prev_fpe;

/* FE_INVALID inside a kernel: on the poison, a read of shared memory no
 * thread wrote (reported; the previous handler, AddressSanitizer's, then
 * gives the stack). Otherwise a NaN a GPU makes too (0*inf, log(-1)): the
 * trap is masked until the next block. Anything else goes to the previous
 * handler. */
void on_fpe(int, siginfo_t *si, void *ctx) {
  ucontext_t *uc = static_cast<ucontext_t *>(ctx);
  if (si->si_code == FPE_FLTINV && g_cur && !poison_operand(uc)) {
    uc->uc_mcontext.fpregs->mxcsr |= MXCSR_INVALID_MASK;
    return;
  }
  if (si->si_code == FPE_FLTINV && g_cur) {
    char where[256];
    void *pc = reinterpret_cast<void *>(uc->uc_mcontext.gregs[REG_RIP]);
#if EMU_ASAN
    __sanitizer_symbolize_pc(pc, "%p %F %L", where, sizeof where);
#else
    std::snprintf(where, sizeof where, "%p", pc);
#endif
    std::fprintf(stderr,
                 "emu: kernel %s, block (%u,%u,%u): thread (%u,%u,%u) reads __shared__ memory "
                 "that no thread of the block wrote (the signalling NaN the emulator fills it "
                 "with reached a floating-point operation at %s)\n",
                 cur_kernel, g_block_idx.x, g_block_idx.y, g_block_idx.z, g_cur->tid.x,
                 g_cur->tid.y, g_cur->tid.z, where);
  }
  sigaction(SIGFPE, &prev_fpe, nullptr); /* the instruction traps again, there */
}

void init_once() {
  static bool done = false;
  if (done) return;
  done = true;
  const char *s = std::getenv("EMU_SEED");
  rng_state = s ? std::strtoull(s, nullptr, 0) : 0x5eedULL;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fpe;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGFPE, &sa, &prev_fpe);
}

/* Static and dynamic shared memory as a block finds it on a GPU: holding
 * nothing any thread wrote. */
void poison_shared() {
  unsigned char *start = __start_emu_shared, *stop = __stop_emu_shared;
  if (start && stop > start) poison(start, static_cast<size_t>(stop - start));
  if (!dyn_buf.empty()) poison(dyn_buf.data(), dyn_buf.size());
  _mm_setcsr(_mm_getcsr() & ~MXCSR_INVALID_MASK);
}

/* Switches from fiber f back to the scheduler. `dying`: f will not resume. */
void to_scheduler(fiber *f, bool dying) {
#if EMU_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &f->fake_stack, sched_stack_bottom,
                                 sched_stack_size);
#endif
  (void)dying;
  emu_ctx_switch(&f->sp, sched_sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &sched_stack_bottom, &sched_stack_size);
#endif
}

[[noreturn]] void fiber_entry() {
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom, &sched_stack_size);
#endif
  fiber *f = g_cur;
  cur_body(cur_ctx);
  f->state = F_DONE;
  to_scheduler(f, true);
  std::abort(); /* a finished fiber is never resumed */
}

void resume(fiber *f) {
  g_cur = f;
#if EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack, STACK_BYTES);
#endif
  emu_ctx_switch(&sched_sp, f->sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  g_cur = nullptr;
}

/* A fresh stack frame that enters fiber_entry on the first switch: six zero
 * callee-saved registers under the entry address, aligned as after a call. */
void start_fiber(fiber *f) {
  if (!f->stack) {
    void *m =
        mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("cannot map a fiber stack");
    f->stack = static_cast<char *>(m);
  }
#if EMU_ASAN
  __asan_unpoison_memory_region(f->stack, STACK_BYTES);
#endif
  uintptr_t top = (reinterpret_cast<uintptr_t>(f->stack) + STACK_BYTES) & ~uintptr_t(15);
  void **slot = reinterpret_cast<void **>(top - 16);
  slot[1] = nullptr;
  slot[0] = reinterpret_cast<void *>(&fiber_entry);
  for (int i = 1; i <= 6; i++)
    slot[-i] = nullptr;
  f->sp = slot - 6;
  f->state = F_READY;
  f->fake_stack = nullptr;
}

unsigned warp_lanes(unsigned warp, unsigned nthreads) {
  unsigned first = warp * 32, n = nthreads - first < 32 ? nthreads - first : 32;
  return n == 32 ? 0xffffffffu : (1u << n) - 1;
}

void describe(const fiber &f, char *buf, size_t len) {
  std::snprintf(buf, len, "thread (%u,%u,%u)", f.tid.x, f.tid.y, f.tid.z);
}

/* Lanes of warp w in a collective: when every lane of the mask has arrived
 * at the same site, each reads its source lane and all continue. */
void try_release_warp(unsigned w, std::vector<unsigned> &ready) {
  fiber *lane0 = &fibers[w * 32];
  unsigned lanes = warp_lanes(w, nthr);
  const fiber *first = nullptr;
  for (unsigned l = 0; l < 32; l++) {
    if (!(lanes >> l & 1)) continue;
    const fiber &f = lane0[l];
    if (f.state == F_WARP) {
      first = &f;
      break;
    }
  }
  if (!first) return;
  unsigned mask = first->mask;
  for (unsigned l = 0; l < 32; l++) {
    if (!(mask >> l & 1)) continue;
    const fiber &f = lane0[l];
    if (f.state == F_READY) return; /* still on its way */
    char a[64], b[64];
    describe(*first, a, sizeof a);
    describe(f, b, sizeof b);
    if (f.state == F_DONE)
      fail("warp collective at %s:%d: %s waits for lane %u, which has exited", first->file,
           first->line, a, l);
    if (f.state == F_BLOCK_BARRIER) return; /* reported as a deadlock if it persists */
    if (f.mask != mask || f.file != first->file || f.line != first->line)
      fail("divergent warp collective: %s at %s:%d (mask %#x), %s at %s:%d (mask %#x)", a,
           first->file, first->line, mask, b, f.file, f.line, f.mask);
  }
  for (unsigned l = 0; l < 32; l++) {
    if (!(mask >> l & 1)) continue;
    fiber &f = lane0[l];
    unsigned src = static_cast<unsigned>(f.src);
    if (src >= 32 || !(mask >> src & 1)) {
      char a[64];
      describe(f, a, sizeof a);
      fail("warp collective at %s:%d: %s reads lane %u, which is not in mask %#x", f.file, f.line,
           a, src, mask);
    }
    f.result = lane0[src].value;
  }
  for (unsigned l = 0; l < 32; l++)
    if (mask >> l & 1) {
      lane0[l].state = F_READY;
      ready.push_back(w * 32 + l);
    }
  warp_epoch[w]++;
}

void run_block() {
  unsigned n = nthr;
  for (unsigned i = 0; i < n; i++)
    start_fiber(&fibers[i]);
  poison_shared();
  std::vector<unsigned> ready(n);
  for (unsigned i = 0; i < n; i++)
    ready[i] = i;
  for (;;) {
    while (!ready.empty()) {
      size_t pick = next_random() % ready.size();
      unsigned id = ready[pick];
      ready[pick] = ready.back();
      ready.pop_back();
      fiber *f = &fibers[id];
      resume(f);
      if (f->state == F_WARP) try_release_warp(id / 32, ready);
    }
    /* Nothing can run: every thread has exited or waits at a barrier. */
    const fiber *waiting = nullptr, *done = nullptr;
    for (unsigned i = 0; i < n; i++) {
      const fiber &f = fibers[i];
      if (f.state == F_DONE) {
        if (!done) done = &f;
      } else if (f.state == F_WARP) {
        char a[64];
        describe(f, a, sizeof a);
        fail("deadlock: %s waits at the warp collective at %s:%d while lanes of its mask wait "
             "at __syncthreads",
             a, f.file, f.line);
      } else if (!waiting) {
        waiting = &f;
      }
    }
    if (!waiting) return;
    char a[64], b[64];
    describe(*waiting, a, sizeof a);
    if (done) {
      describe(*done, b, sizeof b);
      fail("divergent barrier: %s waits at __syncthreads at %s:%d but %s has exited", a,
           waiting->file, waiting->line, b);
    }
    for (unsigned i = 0; i < n; i++) {
      const fiber &f = fibers[i];
      if (f.file != waiting->file || f.line != waiting->line) {
        describe(f, b, sizeof b);
        fail("divergent barrier: %s waits at __syncthreads at %s:%d, %s at %s:%d", a, waiting->file,
             waiting->line, b, f.file, f.line);
      }
    }
    bar_epoch++;
    for (unsigned i = 0; i < n; i++) {
      fibers[i].state = F_READY;
      ready.push_back(i);
    }
  }
}

} // namespace

const uint3 &thread_idx() {
  if (!g_cur) {
    std::fprintf(stderr, "emu: threadIdx read outside a kernel\n");
    std::abort();
  }
  return g_cur->tid;
}

int lane_id() { return static_cast<int>(g_cur->linear % 32); }

void syncthreads(const char *file, int line) {
  fiber *f = g_cur;
  f->state = F_BLOCK_BARRIER;
  f->file = file;
  f->line = line;
  to_scheduler(f, false);
}

uint64_t warp_collective(unsigned mask, uint64_t value, int src_lane, const char *file, int line) {
  fiber *f = g_cur;
  unsigned lane = f->linear % 32, w = f->linear / 32;
  unsigned lanes = warp_lanes(w, nthr);
  char a[64];
  describe(*f, a, sizeof a);
  if (!(mask >> lane & 1))
    fail("warp collective at %s:%d: %s calls it with mask %#x, which leaves out its own lane %u",
         file, line, a, mask, lane);
  if (mask & ~lanes)
    fail("warp collective at %s:%d: %s names lanes (mask %#x) beyond the block's threads "
         "(its warp has lanes %#x)",
         file, line, a, mask, lanes);
  f->state = F_WARP;
  f->mask = mask;
  f->value = value;
  f->src = src_lane;
  f->file = file;
  f->line = line;
  to_scheduler(f, false);
  return f->result;
}

int shfl_src_idx(int src, int width) {
  int lane = lane_id();
  return (lane & ~(width - 1)) + (src & (width - 1));
}

int shfl_src_down(unsigned delta, int width) {
  int lane = lane_id();
  int seg = lane & (width - 1);
  return seg + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
}

int shfl_src_xor(int lane_mask, int width) {
  int lane = lane_id();
  int src = lane ^ lane_mask;
  return (src & ~(width - 1)) == (lane & ~(width - 1)) ? src : lane;
}

void *dyn_shared() {
  if (!dyn_ptr) fail("dynamic shared memory used by a launch that asked for none");
  return dyn_ptr;
}

void atomic_enter() { atomic_depth++; }
void atomic_leave() { atomic_depth--; }

void shared_access(const void *p, size_t bytes, bool write) {
  if (!g_cur || atomic_depth) return; /* host code, or an atomic */
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uintptr_t sbase = reinterpret_cast<uintptr_t>(__start_emu_shared);
  uintptr_t dbase = reinterpret_cast<uintptr_t>(dyn_ptr);
  std::vector<word_rec> *tab;
  uintptr_t base;
  if (sbase && a >= sbase && a < reinterpret_cast<uintptr_t>(__stop_emu_shared)) {
    tab = &static_recs, base = sbase;
    if (static_recs.empty())
      static_recs.assign(static_cast<size_t>(__stop_emu_shared - __start_emu_shared) / 4 + 2,
                         word_rec{});
  } else if (dbase && a >= dbase && a < dbase + dyn_buf.size()) {
    tab = &dyn_recs, base = dbase;
  } else {
    return; /* global memory, the stack */
  }
  unsigned me = g_cur->linear, w = me / 32;
  for (uintptr_t word = (a - base) / 4; word <= (a + bytes - 1 - base) / 4; word++) {
    word_rec &r = (*tab)[word];
    if (write) {
      r = word_rec{block_serial, me + 1, bar_epoch, warp_epoch[w]};
      continue;
    }
    if (r.block != block_serial || !r.thread || r.thread == me + 1 || r.bar != bar_epoch) continue;
    const fiber &writer = fibers[r.thread - 1];
    char a_[64], b_[64];
    describe(*g_cur, a_, sizeof a_);
    describe(writer, b_, sizeof b_);
    size_t off = static_cast<size_t>(word * 4);
    const char *where = tab == &dyn_recs ? "dynamic __shared__" : "__shared__";
    if (writer.linear / 32 == w && r.warp == warp_epoch[w])
      fail("%s reads %s memory (byte %zu) that %s of its warp wrote with no __syncwarp or "
           "__syncthreads between them: a race once the warp's threads run apart (every GPU "
           "since Volta)",
           a_, where, off, b_);
    if (writer.linear / 32 != w)
      fail("%s reads %s memory (byte %zu) that %s of another warp wrote with no __syncthreads "
           "between them",
           a_, where, off, b_);
  }
}

/* The device's work counters (emu_stats.h): one device, one set. */
static emu_stats stats;

void count_blas() { stats.blas_calls++; }

void count_graph_launch() { stats.graph_launches++; }

void count_copy(int kind, size_t bytes) {
  if (kind == cudaMemcpyHostToDevice) stats.h2d_bytes += bytes;
  if (kind == cudaMemcpyDeviceToHost) stats.d2h_bytes += bytes;
  if (kind == cudaMemcpyDeviceToDevice) stats.d2d_bytes += bytes;
}

cudaError_t launch_check(const char *name, dim3 grid, dim3 block, size_t shmem) {
  unsigned long threads = static_cast<unsigned long>(block.x) * block.y * block.z;
  const char *why = nullptr;
  if (!grid.x || !grid.y || !grid.z || !threads)
    why = "a zero grid or block dimension";
  else if (threads > MAX_THREADS)
    why = "more than 1024 threads per block";
  else if (block.x > 1024 || block.y > 1024 || block.z > 64)
    why = "a block dimension beyond (1024, 1024, 64)";
  else if (grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu)
    why = "a grid dimension beyond (2^31-1, 65535, 65535)";
  else if (shmem > MAX_SHARED)
    why = "more than 48 KiB of dynamic shared memory";
  if (why) {
    std::fprintf(stderr,
                 "emu: launch of %s with grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of shared "
                 "memory: %s\n",
                 name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shmem, why);
    return record_error(cudaErrorInvalidConfiguration);
  }
  if (g_cur) fail("kernel launched from inside a kernel");
  stats.launches++;
  return cudaSuccess;
}

void launch_run(const char *name, dim3 grid, dim3 block, size_t shmem, void (*body)(void *),
                void *ctx) {
  init_once();
  cur_kernel = name;
  unsigned long threads = static_cast<unsigned long>(block.x) * block.y * block.z;
  g_grid_dim = grid;
  g_block_dim = block;
  cur_body = body;
  cur_ctx = ctx;
  dyn_buf.assign(shmem, 0);
  dyn_recs.assign(shmem / 4 + 2, word_rec{});
  dyn_ptr = shmem ? dyn_buf.data() : nullptr;
  if (fibers.size() < threads) fibers.resize(threads);
  nthr = static_cast<unsigned>(threads);
  for (unsigned z = 0, i = 0; z < block.z; z++)
    for (unsigned y = 0; y < block.y; y++)
      for (unsigned x = 0; x < block.x; x++, i++) {
        fibers[i].tid = uint3{x, y, z};
        fibers[i].linear = i;
      }
  unsigned mxcsr = _mm_getcsr(); /* host code runs with FE_INVALID masked, as before */
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        g_block_idx = uint3{bx, by, bz};
        block_serial++;
        run_block();
        block_done(name);
      }
  _mm_setcsr(mxcsr);
  dyn_ptr = nullptr;
  cur_kernel = "";
}

} // namespace emu

extern "C" void emu_stats_get(struct emu_stats *out) { *out = emu::stats; }
extern "C" void emu_stats_reset(void) { emu::stats = emu_stats{}; }
