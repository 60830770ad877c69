// Writes the default tiny models (seed 1, F32) of every architecture into <outdir>/<arch>, for the
// Python reference scripts. Run: test/reference/llama-cpp/node_modules/.bin/tsx test/reference/write-tiny-models.ts OUTDIR
import { join } from 'node:path';
import { ARCHS, weightsDigest, writeTinyModel } from '../helpers/tiny-models.js';

const out = process.argv[2];
if (!out) throw new Error('usage: write-tiny-models.ts OUTDIR');
for (const arch of ARCHS) {
  const m = writeTinyModel(join(out, arch), arch, { seed: 1, dtype: 'F32' });
  console.log(`${arch} ${weightsDigest(m)}`);
}
