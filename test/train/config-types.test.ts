// The train config's static type (TrainConfigInput, from the zod schema) makes tsc refuse a
// misspelt field or a wrong value type in `new GrpoTrainer({...})`: a consumer file is compiled
// with the TypeScript compiler API and its diagnostics checked one by one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'rrec-config-types-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Semantic diagnostics of one consumer file, as `line: TSnnnn message` (line 1-based). */
function diagnosticsOf(source: string): string[] {
  const file = join(tmp, `consumer-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, source);
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
  });
  const sf = program.getSourceFile(file)!;
  return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)].map((d) => {
    const line = sf.getLineAndCharacterOfPosition(d.start ?? 0).line + 1;
    return `${line}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n')[0]}`;
  });
}

const api = JSON.stringify(join(root, 'src', 'index.js'));

describe('TrainConfigInput', () => {
  it('a misspelt field, a wrong type and a value outside an enum fail tsc, each on its line', () => {
    const d = diagnosticsOf(
      [
        `import { GrpoTrainer } from ${api};`,
        `new GrpoTrainer({ modle: 'tiny' });`,
        `new GrpoTrainer({ learning_rate: '1e-6' });`,
        `new GrpoTrainer({ loss_type: 'ppo' });`,
        `new GrpoTrainer({ lora_target_modules: ['qkv'] });`,
        `new GrpoTrainer({ learning_rat: 1e-6 });`,
      ].join('\n'),
    );
    expect(d).toHaveLength(5);
    expect(d[0]).toMatch(/^2: TS2561 Object literal may only specify known properties, but 'modle' does not exist in type 'TrainConfigInput'. Did you mean to write 'model'\?/);
    expect(d[1]).toMatch(/^3: TS2322 Type 'string' is not assignable to type 'number'/);
    expect(d[2]).toMatch(/^4: TS2322 Type '"ppo"' is not assignable to type '("grpo"|"bnpo"|"dapo"|"dr_grpo"|undefined| \| )+'/);
    expect(d[3]).toMatch(/^5: TS2322 Type '"qkv"' is not assignable to type '.*"q_proj"/);
    expect(d[4]).toMatch(/^6: TS2561 .*'learning_rat' does not exist in type 'TrainConfigInput'. Did you mean to write 'learning_rate'\?/);
  });

  it('the fields, their aliases, null for derived defaults and size strings compile', () => {
    expect(
      diagnosticsOf(
        [
          `import { GrpoTrainer, resolveTrainConfig, type TrainConfig } from ${api};`,
          `const t = new GrpoTrainer({ model: 'tiny', num_generations: 4, max_completion_length: 64, eval_steps: null, kv_memory_budget: '8GiB', scale_rewards: false, lora_target_modules: ['q_proj'] });`,
          `const c: TrainConfig = t.config;`,
          // resolved fields are non-null and narrowed: derived defaults are filled in
          `const n: number = c.eval_steps + c.epsilon_high; const r: string = c.run_name; const w: number[] = c.reward_weights;`,
          `const k: number = c.kv_memory_budget; const s: 'group' | 'batch' | 'none' = c.scale_rewards; const l: 'grpo' | 'bnpo' | 'dapo' | 'dr_grpo' = c.loss_type;`,
          `const res: string | boolean = c.resume_from_checkpoint; const labels: string[] | null = c.labels;`,
          `void [n, r, w, k, s, l, res, labels, resolveTrainConfig({})];`,
        ].join('\n'),
      ),
    ).toEqual([]);
  });
});
