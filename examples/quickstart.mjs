// Quick tour of the rrec-emotion API: dataset -> prompt -> (a model's completion) -> reward ->
// GRPO advantages and loss gradient. Run from the package root after `npm install`:
//   node examples/quickstart.mjs [path/to/ED_easy_4]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  combineRewards, correctnessReward, datasetSpec, formatReward, groupAdvantages, grpoLoss, lenmlTokenizerDir,
  loadSplit, loadTokenizer, preprocess, Prompter,
} from 'rrec-emotion';

const inputDir = process.argv[2] ?? '../shared/data/ED_easy_4';
const out = mkdtempSync(join(tmpdir(), 'rrec-quickstart-'));
try {
  // 1. CSV splits -> Arrow dataset in Hugging Face save_to_disk layout
  const report = await preprocess({ inputDir, outputDir: join(out, 'ED_easy_4_processed'), dataset: datasetSpec('ED_easy_4') });
  console.log('rows:', Object.fromEntries(Object.entries(report.splits).map(([k, s]) => [k, s.rowsWritten])));
  const valid = await loadSplit(join(out, 'ED_easy_4_processed'), 'valid');

  // 2. The prompt the model sees, rendered with Qwen2.5's real chat template
  const tokenizer = await loadTokenizer(lenmlTokenizerDir('qwen2_5'));
  const prompter = new Prompter(tokenizer, { labels: valid.labelNames });
  const example = valid.get(0);
  const { prompt, ids } = prompter.render({ text: example.text });
  console.log(`prompt: ${ids.length} tokens, ends with ${JSON.stringify(prompt.slice(-40))}`);

  // 3. Rewards of a group of 4 completions for this example
  const reward = combineRewards([
    { name: 'correctness', fn: correctnessReward, weight: 1 },
    { name: 'format', fn: formatReward, weight: 0.2 },
  ]);
  const completions = [
    `The speaker lost something dear. <answer>${example.labelName}</answer>`,
    'They sound upset. <answer>angry</answer>',
    'No tag here, just joyful.',
    `Clearly <answer>${example.labelName}</answer> but also <answer>joyful</answer>`,
  ];
  const scored = completions.map((c) => reward({ label: example.label, labels: valid.labelNames }, c));
  const rewards = Float32Array.from(scored, (s) => s.total);
  console.log('rewards:', Array.from(rewards), 'parsed:', scored.map((s) => (s.parsed.ok ? s.parsed.label : s.parsed.reason)));

  // 4. GRPO: group-normalised advantages, then dLoss/dlogp for every completion token
  const advantages = groupAdvantages(rewards, 4, 'groupStd');
  const offsets = Int32Array.from([0, 3, 5, 8, 10]); // 10 completion tokens in 4 sequences
  const logp = Float32Array.from({ length: 10 }, (_, i) => -1 - 0.1 * i);
  const { loss, grad } = grpoLoss(
    { offsets, logp, oldLogp: logp, mask: new Uint8Array(10).fill(1), advantages, truncated: new Uint8Array(4) },
    { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'grpo', maskTruncated: false },
  );
  console.log('advantages:', Array.from(advantages, (a) => +a.toFixed(3)), 'loss:', loss.toFixed(4), 'dL/dlogp[0]:', grad[0].toFixed(4));
} finally {
  rmSync(out, { recursive: true, force: true });
}
