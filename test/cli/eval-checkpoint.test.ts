// `rrec-emotion eval` on the trainer's own output: a LoRA checkpoint (as checkpoint-N and as its
// adapter/ subfolder) and a full fine-tune checkpoint (checkpoint-N and best/), loaded from disk in a
// fresh model, must reproduce exactly the valid metrics the trainer measured on its live model at
// that step (eval-end.json). The run's model, labels and data come from its run.json.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/cli/eval.js';
import type { EvalMetrics } from '../../src/eval/metrics.js';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-cli-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

let model: string;
beforeAll(async () => {
  model = await writeAnswerModel(join(root, 'answer-model'), ['sad', 'joyful', 'angry', 'afraid']);
});

async function train(runName: string, extra: Record<string, unknown>) {
  return new GrpoTrainer({
    model, data_dir: sample, output_dir: join(root, 'runs'), run_name: runName, seed: 5, sft_epochs: 0, max_steps: 2, save_steps: 1,
    eval_steps: 0, max_new_tokens: 12, train_batch_size: 4, group_size: 4, eval_batch_size: 40, learning_rate: 5e-2, warmup_steps: 0,
    lr_scheduler_type: 'constant', ...extra,
  }).fit({ stream: quiet });
}

async function evalCli(args: string[]): Promise<{ metrics: EvalMetrics; weights: string; weights_kind: string; model: string }> {
  const file = join(root, `m-${Math.random().toString(36).slice(2)}.json`);
  expect(await runEval([...args, `--output=${file}`], { out: () => {} })).toBe(0);
  return JSON.parse(readFileSync(file, 'utf8')) as { metrics: EvalMetrics; weights: string; weights_kind: string; model: string };
}

const endMetrics = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'eval-end.json'), 'utf8')) as EvalMetrics;

describe('eval of trainer checkpoints', () => {
  it('LoRA: checkpoint-N and its adapter/ folder give the trainer\'s metrics', async () => {
    const r = await train('lora', {});
    const ckpt = join(r.runDir, 'checkpoint-2');
    const fromCkpt = await evalCli([`--checkpoint=${ckpt}`]);
    expect(fromCkpt.weights_kind).toBe('adapter');
    expect(fromCkpt.model).toBe(model);
    expect(fromCkpt.metrics).toEqual(endMetrics(r.runDir));
    expect((await evalCli([`--adapter=${join(ckpt, 'adapter')}`])).metrics).toEqual(endMetrics(r.runDir));
    // the base model alone answers differently, so the checkpoint's weights were really used
    const base = await evalCli([`--model=${model}`, `--data_dir=${join(r.runDir, 'data')}`, '--max_new_tokens=12']);
    expect(base.metrics).not.toEqual(fromCkpt.metrics);
    // PEFT and vLLM load the base from base_model_name_or_path: the resolved folder, not the name typed
    for (const dir of [join(ckpt, 'adapter'), join(r.runDir, 'best', 'adapter')])
      expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe(resolve(model));
  });

  it('full fine-tune: model.safetensors of checkpoint-N and of best/ load into a full fine-tune model', async () => {
    const r = await train('full', { full_finetune: true, eval_on_start: true });
    const ckpt = join(r.runDir, 'checkpoint-2');
    expect(existsSync(join(ckpt, 'model.safetensors'))).toBe(true);
    const got = await evalCli([`--checkpoint=${ckpt}`]);
    expect(got.weights_kind).toBe('full');
    expect(got.metrics).toEqual(endMetrics(r.runDir));
    // best/ is step 0 or 2 (the better of the two evaluations); its metrics are best.json's
    const best = JSON.parse(readFileSync(join(r.runDir, 'best', 'best.json'), 'utf8')) as { step: number; metrics: EvalMetrics };
    expect(best.step).toBe(r.bestStep);
    expect((await evalCli([`--checkpoint=${join(r.runDir, 'best')}`])).metrics).toEqual(best.metrics);
    // best/ is a model folder of its own (config.json, tokenizer): as --model it is the same model
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) expect(existsSync(join(r.runDir, 'best', f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(r.runDir, 'best', 'config.json'), 'utf8')).torch_dtype).toBe('float32');
    const asWeights = await evalCli([`--checkpoint=${join(r.runDir, 'best')}`, '--matmul_precision=fp32']);
    const asModel = await evalCli([`--model=${join(r.runDir, 'best')}`, `--data_dir=${join(r.runDir, 'data')}`, '--max_new_tokens=12', '--matmul_precision=fp32']);
    expect(asModel.weights_kind).toBeNull();
    expect(asModel.metrics).toEqual(asWeights.metrics);
  });
});
