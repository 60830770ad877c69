// Process-CPU-time A/B of one tree's build, for comparing two commits on a shared machine where wall
// clock is noise (issue 14's before/after of the backend seam). Usage, per tree (a git worktree
// with its addon built and `npx tsc -p bench/tsconfig.json --outDir dist/bench` run in it):
//   OMP_NUM_THREADS=1 node bench/ab-cpu-time.mjs /path/to/tree
// Run two trees alternately several times and compare min and median. It prints one JSON line:
// CPU ms (user + sys, all threads) per layer fwd+bwd (lora, full: one Qwen2.5-0.5B-shaped layer,
// 4 x 128 tokens, bf16 products; needs /tmp/rrec-bench-qwen05-layer1 from `npm run bench --
// --only=layer`) and per decoded token (1 sequence, 48 tokens; /tmp/rrec-bench-qwen2_5-0_5b-bf16-L1
// from `--only=sample`). One thread, so that neighbours' load moves wall time but hardly CPU time.
const root = process.argv[2];
const { CausalLM } = await import(`${root}/dist/bench/src/index.js`);
const { Engine } = await import(`${root}/dist/bench/src/engine/index.js`);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const B = 4, T = 128, RANK = 8;
const dir = '/tmp/rrec-bench-qwen05-layer1';
const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 512);
const seqOffsets = Int32Array.from({ length: B + 1 }, (_, i) => i * T);
const targetRows = Int32Array.from({ length: B }, (_, i) => i * T + T - 2);
const targetTokens = Int32Array.from({ length: B }, (_, i) => tokens[i * T + T - 1]);
const out = {};
for (const mode of ['lora', 'full']) {
  const lm = await CausalLM.load(dir, { fullFinetune: mode === 'full', matmulPrecision: 'bf16' });
  const adapter = mode === 'lora' ? lm.createLora({ rank: RANK, alpha: 2 * RANK }) : null;
  const xs = [];
  for (let it = 0; it < 8; it++) {
    const c0 = cpu();
    const pass = await lm.forward({ tokens, seqOffsets, targetRows, targetTokens }, { adapter });
    await pass.backward(new Float32Array(B).fill(-1 / B));
    (adapter ?? lm).zeroGrad();
    if (it >= 2) xs.push(cpu() - c0);
  }
  lm.free();
  out[mode] = xs;
}
{
  const lm = await CausalLM.load('/tmp/rrec-bench-qwen2_5-0_5b-bf16-L1');
  const engine = new Engine(lm, { kvBudgetBytes: 1 << 28 });
  const xs = [];
  for (let it = 0; it < 4; it++) {
    const c0 = cpu();
    let n = 0;
    for await (const ch of engine.stream([{ prompt: Array.from({ length: 16 }, (_, i) => (i * 7919) % 150000), n: 1, temperature: 1, seed: it + 1, maxTokens: 48, stopTokenIds: [] }])) n += ch.tokens.length;
    if (it >= 1) xs.push((cpu() - c0) / n);
  }
  out.decode = xs;
}
console.log(JSON.stringify(out));
process.exit(0);
