/**
 * memory.bandwidth: read bandwidth of this machine, measured in the same run as the figures that
 * depend on it (sample.decode.b1's roofline_fraction). Every OpenMP thread of the addon sums its
 * own slice of a 512 MiB buffer (huge pages where allowed) with AVX-512 loads, 4 passes per round
 * (native/addon/kernels_addon.cc, _memReadBandwidth). No peer: it is a property of the machine,
 * not of an implementation (docs/machine-limits.md: ~47 GB/s read, ~52 GB/s STREAM triad with 2
 * threads on an idle machine).
 */
import { makeFigure } from '../lib/figures.js';
import { runGroup } from '../lib/group.js';
import { kernelAddon } from '../lib/matmul.js';

runGroup('memory', async (ctx) => {
  const addon = kernelAddon();
  const megabytes = 512;
  const passes = 4;
  const rounds = ctx.quick ? 5 : 9;
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) samples.push(addon._memReadBandwidth(megabytes, passes));
  const threads = addon._matmulKernelInfo().threads;
  ctx.emit(
    makeFigure({
      name: 'memory.bandwidth',
      unit: 'GB/s',
      higherIsBetter: true,
      samples,
      peer: null,
      note: `read-only AVX-512 sum over ${megabytes} MiB, ${threads} threads, ${passes} passes per round, ${rounds} rounds; no peer (a machine property); the roofline of sample.decode.b1`,
    }),
  );
});
