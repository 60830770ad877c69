// The emulator's scheduler (emu.h): one fiber per thread of a block, switched by a hand-written
// x86-64 context switch (ucontext's swapcontext makes a signal-mask system call per switch and
// was ~50x slower). A fiber runs until it waits (a block or warp barrier) or returns; the
// scheduler resumes the fibers round-robin; a full round in which no waiting fiber could go on is
// a deadlock and is reported with the kernel's name.
#include "emu.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif

// rrec_emu_switch(save, to): saves the callee-saved registers and the stack pointer into *save,
// loads the stack pointer `to` and returns into the fiber saved there. A fresh fiber's stack
// holds the six registers (r12 = its Fiber*, r13 = the entry) and rrec_emu_start as the return.
extern "C" void rrec_emu_switch(void** save, void* to);
extern "C" void rrec_emu_start();
asm(R"(
.text
.p2align 4
.globl rrec_emu_switch
.hidden rrec_emu_switch
.type rrec_emu_switch,@function
rrec_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size rrec_emu_switch,.-rrec_emu_switch
.p2align 4
.globl rrec_emu_start
.hidden rrec_emu_start
.type rrec_emu_start,@function
rrec_emu_start:
  movq %r12, %rdi
  andq $-16, %rsp
  callq *%r13
  ud2
.size rrec_emu_start,.-rrec_emu_start
)");

namespace rrec_emu {

Thread* g_thread = nullptr;
Block* g_block = nullptr;

namespace {

constexpr size_t kStack = 128 << 10;  // per thread; local arrays of kernels live here
constexpr size_t kPage = 4096;
constexpr unsigned kMaxThreads = 1024;

struct Barrier {
  unsigned arrived = 0, gen = 0, live = 0;
};

struct Copy {
  void* dst;
  const void* src;
  unsigned bytes, src_bytes;
};

struct Fiber {
  Thread t;
  void* sp = nullptr;
  unsigned char* stack = nullptr;  // kStack usable bytes above a guard page
  bool done = false;
  std::vector<Copy> queued;        // cp.async not yet committed
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
};

struct Warp {
  Barrier bar;
  unsigned lanes = 0;  // lanes that exist (a partial last warp has fewer)
  unsigned char slots[32][64];
};

struct State {
  std::mutex mu;
  std::vector<Fiber*> fibers;  // kept across launches (stacks reused)
  std::vector<Warp> warps;
  Barrier block_bar;
  void* sched_sp = nullptr;
  Fiber* current = nullptr;
  bool progress = false;
  const char* kernel = nullptr;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  unsigned char* smem_base = nullptr;  // mapping of the dynamic shared memory
  size_t smem_map = 0;
};

State& st() {
  static State* s = new State();
  return *s;
}

void yield() {
  State& s = st();
  rrec_emu_switch(&s.current->sp, s.sched_sp);
}

// Waits until the barrier's generation moves on; the last arriving thread moves it.
void wait(Barrier& b) {
  State& s = st();
  const unsigned gen = b.gen;
  if (++b.arrived == b.live) {
    b.arrived = 0;
    b.gen++;
    s.progress = true;
    return;
  }
  while (b.gen == gen) yield();
  s.progress = true;
}

// A thread that returned no longer holds back the barriers it belonged to.
void leave(Barrier& b) {
  b.live--;
  if (b.arrived > 0 && b.arrived == b.live) {
    b.arrived = 0;
    b.gen++;
  }
}

void fiberMain(Fiber* f) {
  State& s = st();
  s.body(s.ctx);
  if (!f->queued.empty() || !f->groups.empty()) cp_async_wait(0);  // the GPU completes them at exit too
  f->done = true;
  s.progress = true;
  leave(s.block_bar);
  leave(s.warps[f->t.warp].bar);
  rrec_emu_switch(&f->sp, s.sched_sp);
  __builtin_unreachable();
}

void* guardedMap(size_t usable, unsigned char** base, size_t* mapped) {
  const size_t n = (usable + kPage - 1) / kPage * kPage + kPage;
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mprotect(static_cast<char*>(p) + n - kPage, kPage, PROT_NONE);
  *base = static_cast<unsigned char*>(p);
  *mapped = n;
  return p;
}

void onFault(int sig, siginfo_t* info, void*) {
  const char* k = st().kernel;
  char msg[256];
  const int n = std::snprintf(msg, sizeof msg, "cuda-emu: out-of-bounds access at %p in kernel %s (a guard page after a device buffer, the shared memory or a thread's stack)\n",
                              info->si_addr, k ? k : "(none: host code)");
  if (n > 0) (void)!write(2, msg, size_t(n));
  signal(sig, SIG_DFL);
  raise(sig);
}

void installFaultHandler() {
  static bool done = false;
  if (done) return;
  done = true;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = onFault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  // the handler needs its own stack: a fiber that overflowed its stack cannot run it there
  static unsigned char altstack[64 << 10];
  stack_t ss;
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  ss.ss_flags = 0;
  sigaltstack(&ss, nullptr);
}

void completeGroup(std::vector<Copy>& g) {
  for (const Copy& c : g) {
    std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
  }
}

}  // namespace

void fail(const char* fmt, ...) {
  std::fprintf(stderr, "cuda-emu: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  const char* k = st().kernel;
  std::fprintf(stderr, " (kernel %s, block (%u,%u,%u), thread (%u,%u,%u))\n", k ? k : "-", g_block ? g_block->idx.x : 0,
               g_block ? g_block->idx.y : 0, g_block ? g_block->idx.z : 0, g_thread ? g_thread->idx.x : 0, g_thread ? g_thread->idx.y : 0,
               g_thread ? g_thread->idx.z : 0);
  std::abort();
}

void syncthreads() {
  if (!g_thread) fail("__syncthreads outside a kernel");
  wait(st().block_bar);
}

unsigned warp_full_mask() {
  const unsigned n = st().warps[g_thread->warp].lanes;
  return n == 32 ? 0xffffffffu : (1u << n) - 1;
}

void syncwarp(unsigned mask) {
  if ((mask & warp_full_mask()) != warp_full_mask()) fail("__syncwarp with mask %08x: the emulator needs every lane of the warp", mask);
  wait(st().warps[g_thread->warp].bar);
}

void warp_allgather(const void* mine, void* all, size_t bytes, unsigned mask, const char* what) {
  State& s = st();
  Warp& w = s.warps[g_thread->warp];
  if ((mask & warp_full_mask()) != warp_full_mask()) fail("%s with mask %08x: the emulator needs every lane of the warp converged", what, mask);
  if (bytes > sizeof w.slots[0]) fail("%s: %zu bytes per lane", what, bytes);
  std::memcpy(w.slots[g_thread->lane], mine, bytes);
  wait(w.bar);  // every lane has written
  unsigned char* out = static_cast<unsigned char*>(all);
  for (unsigned l = 0; l < 32; l++) {
    if (l < w.lanes) std::memcpy(out + l * bytes, w.slots[l], bytes);
    else std::memset(out + l * bytes, 0, bytes);
  }
  wait(w.bar);  // every lane has read: the slots may be written again
}

void cp_async(void* smem, const void* gmem, unsigned bytes, unsigned src_bytes) {
  if (!g_thread) fail("cp.async outside a kernel");
  if (bytes != 4 && bytes != 8 && bytes != 16) fail("cp.async of %u bytes", bytes);
  if (reinterpret_cast<uintptr_t>(smem) % bytes || reinterpret_cast<uintptr_t>(gmem) % bytes)
    fail("cp.async of %u bytes: misaligned address (shared %p, global %p)", bytes, smem, gmem);
  if (src_bytes > bytes) fail("cp.async: src-size %u > cp-size %u", src_bytes, bytes);
  st().current->queued.push_back({smem, gmem, bytes, src_bytes});
}

void cp_async_commit() {
  Fiber* f = st().current;
  f->groups.push_back(std::move(f->queued));
  f->queued.clear();
}

void cp_async_wait(int pending) {
  Fiber* f = st().current;
  if (pending == 0 && !f->queued.empty()) cp_async_commit();  // wait_all
  while (f->groups.size() > static_cast<size_t>(pending)) {
    completeGroup(f->groups.front());
    f->groups.erase(f->groups.begin());
  }
}

void launch(const char* name, dim3 grid, dim3 block, size_t smem, void (*body)(void*), void* ctx) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  installFaultHandler();
  const unsigned nthreads = block.x * block.y * block.z;
  if (nthreads == 0 || nthreads > kMaxThreads) fail("launch of %s with %u threads per block", name, nthreads);
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) fail("launch of %s with grid (%u,%u,%u)", name, grid.x, grid.y, grid.z);
  if (smem > (227u << 10)) fail("launch of %s with %zu bytes of dynamic shared memory (sm_90 allows 227 KiB)", name, smem);
  while (s.fibers.size() < nthreads) {
    Fiber* f = new Fiber();
    unsigned char* base;
    size_t mapped;
    // guard page below the stack (stacks grow down): map, then protect the lowest page
    void* p = mmap(nullptr, kStack + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("no memory for a fiber stack");
    mprotect(p, kPage, PROT_NONE);
    base = static_cast<unsigned char*>(p);
    mapped = kStack + kPage;
    (void)mapped;
    f->stack = base + kPage;
    s.fibers.push_back(f);
  }
  // dynamic shared memory: a fresh guarded mapping per launch, the array ending at the guard
  unsigned char* smemBase = nullptr;
  size_t smemMapped = 0;
  unsigned char* smemPtr = nullptr;
  if (smem > 0) {
    if (!guardedMap(smem, &smemBase, &smemMapped)) fail("no memory for shared memory");
    smemPtr = smemBase + smemMapped - kPage - (smem + 15) / 16 * 16;
  }
  const unsigned nwarps = (nthreads + 31) / 32;
  s.warps.assign(nwarps, Warp());
  Block b{dim3(), block, grid, smemPtr, smem};
  s.kernel = name;
  s.body = body;
  s.ctx = ctx;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        b.idx = dim3(bx, by, bz);
        g_block = &b;
        if (smem > 0) std::memset(smemPtr, 0xcd, smem);  // uninitialised shared memory is garbage, not zeros
        s.block_bar = Barrier();
        s.block_bar.live = nthreads;
        for (unsigned w = 0; w < nwarps; w++) {
          s.warps[w].bar = Barrier();
          s.warps[w].lanes = s.warps[w].bar.live = std::min(32u, nthreads - w * 32);
        }
        for (unsigned i = 0; i < nthreads; i++) {
          Fiber* f = s.fibers[i];
          f->done = false;
          f->queued.clear();
          f->groups.clear();
          f->t.linear = i;
          f->t.idx = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
          f->t.lane = i % 32;
          f->t.warp = i / 32;
          // fresh frame: r15 r14 r13 r12 rbx rbp, then the return into rrec_emu_start
          uintptr_t top = reinterpret_cast<uintptr_t>(f->stack + kStack) & ~uintptr_t(15);
          void** sp = reinterpret_cast<void**>(top) - 8;
          sp[0] = nullptr;
          sp[1] = nullptr;
          sp[2] = reinterpret_cast<void*>(&fiberMain);
          sp[3] = f;
          sp[4] = nullptr;
          sp[5] = nullptr;
          sp[6] = reinterpret_cast<void*>(&rrec_emu_start);
          sp[7] = nullptr;
          f->sp = sp;
        }
        unsigned left = nthreads;
        while (left > 0) {
          s.progress = false;
          for (unsigned i = 0; i < nthreads; i++) {
            Fiber* f = s.fibers[i];
            if (f->done) continue;
            s.current = f;
            g_thread = &f->t;
            rrec_emu_switch(&s.sched_sp, f->sp);
            if (f->done) left--;
          }
          s.current = nullptr;
          g_thread = nullptr;
          if (left > 0 && !s.progress)
            fail("deadlock in %s: %u threads wait at a barrier (__syncthreads or a warp primitive) the others never reach", name, left);
        }
      }
  g_block = nullptr;
  s.kernel = nullptr;
  if (smemBase) munmap(smemBase, smemMapped);
}

// A device buffer: the bytes end at a guard page (16-byte aligned end, so at most 15 bytes of
// slack before an overrun faults); the header before the data remembers the mapping.
void* device_alloc(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 15) / 16 * 16;
  const size_t header = 64;
  unsigned char* base;
  size_t mapped;
  if (!guardedMap(rounded + header, &base, &mapped)) return nullptr;
  unsigned char* data = base + mapped - kPage - rounded;
  std::memcpy(data - 16, &mapped, sizeof mapped);
  void* b = base;
  std::memcpy(data - 8, &b, sizeof b);
  return data;
}

void device_free(void* p) {
  if (!p) return;
  unsigned char* data = static_cast<unsigned char*>(p);
  size_t mapped;
  void* base;
  std::memcpy(&mapped, data - 16, sizeof mapped);
  std::memcpy(&base, data - 8, sizeof base);
  munmap(base, mapped);
}

}  // namespace rrec_emu
