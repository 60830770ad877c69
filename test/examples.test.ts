// The README's runnable example runs as a user would run it (needs `npm install`'s dist/ build
// and the ED_easy_4 files beside the project).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const data = join(repo, '..', 'shared', 'data', 'ED_easy_4');
const ready = existsSync(join(repo, 'dist', 'index.js')) && existsSync(join(data, 'train.csv'));

describe.skipIf(!ready)('examples/quickstart.mjs', () => {
  it('prints the dataset counts, the prompt, rewards and advantages', () => {
    const out = execFileSync(process.execPath, [join(repo, 'examples', 'quickstart.mjs'), data], { cwd: repo }).toString();
    expect(out).toContain("rows: { train: 2386, valid: 358, test: 328 }");
    expect(out).toMatch(/prompt: \d+ tokens, ends with ".*<\|im_start\|>assistant\\n"/);
    expect(out).toContain("parsed: [ 'sad', 'angry', 'none', 'several_different' ]");
    // rewards [1.2, 0.2, 0, 0]: mean 0.35, sample std 0.5745 -> advantages (r - mean) / (std + 1e-4)
    expect(out).toContain('advantages: [ 1.479, -0.261, -0.609, -0.609 ]');
  });
});
