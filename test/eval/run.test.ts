// Evaluation run on a tiny model that uses the real Qwen2.5 tokenizer: greedy completions through
// the engine, answers parsed, metrics recomputed independently from the texts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { classificationMetrics } from '../../src/eval/metrics.js';
import { evaluate } from '../../src/eval/run.js';
import { CausalLM } from '../../src/model/index.js';
import { parseAnswer } from '../../src/reward/index.js';
import { lenmlTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-eval-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('evaluate', () => {
  it('greedy completions are parsed and scored; predictions and metrics match the texts', async () => {
    const dir = join(root, 'qwen2-151k');
    writeTinyModel(dir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1 } as never });
    const tokenizer = await loadTokenizer(lenmlTokenizerDir('qwen2_5'));
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { tokenizer, kvBudgetBytes: 1 << 24 });
    const labels = ['sad', 'joyful', 'angry', 'afraid'];
    const texts = ['my dog died', 'i won the lottery', 'someone stole my bike', 'a noise in the night', 'my friend moved away', 'great news today'];
    const examples = texts.map((t, i) => ({ promptIds: tokenizer.encode(`${t}. The feeling is`, { addSpecialTokens: false }), label: i % 4 }));
    const r = await evaluate(engine, examples, { labels, maxNewTokens: 8, stop: ['</answer>'], batchSize: 4 });
    expect(r.completions).toHaveLength(6);
    // an untrained model rarely writes a valid tag; whatever it wrote, the prediction is the parse
    // of its text, recomputed here independently
    expect(Array.from(r.predictions)).toEqual(
      r.completions.map((c) => {
        const p = parseAnswer(c.text!, labels);
        return p.ok ? p.index : -1;
      }),
    );
    for (const c of r.completions) expect(c.tokens.length).toBeGreaterThan(0);
    const want = classificationMetrics({ gold: examples.map((e) => e.label), pred: r.predictions, numClasses: 4, outputLengths: r.completions.map((c) => c.tokens.length) });
    expect(r.metrics).toEqual(want);
    expect(r.metrics.n).toBe(6);
    lm.free();
  });
});
