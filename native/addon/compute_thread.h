// One process-wide thread runs every long native call (model load, forward, backward, optimizer
// step, generation). libuv hands AsyncWorker jobs to whichever of its pool threads is free, and
// OpenMP gives each calling thread its own team of workers: calls arriving on alternating pool
// threads woke a sleeping team with a futex each time (18% of single-sequence decode time under
// perf on 2 cores). On one thread there is one team, kept spinning between the short regions.
// Jobs run in arrival order; the AsyncWorker thread blocks until its job is done, so Promise
// semantics are unchanged. Jobs were already serialised per model (its mutex) and all compete for
// the same cores.
// Synchronous calls that open an OpenMP region (gradNorm, setParam's bf16 refresh, the kernel
// exports) come here too, blocking the JS thread meanwhile (behind a running job of another model,
// if any): a region opened on any other thread gives libgomp a second team, and with more managed
// threads than CPUs it spins only 100 iterations between regions, so every later region pays a
// futex wake-up (single-sequence decode ~30 -> ~22 tok/s for the rest of the process, measured).
#pragma once
#include <functional>

namespace rrec::addon {

// Runs fn on the compute thread and returns when it has finished; rethrows what fn threw.
void runOnComputeThread(const std::function<void()>& fn);

}  // namespace rrec::addon
