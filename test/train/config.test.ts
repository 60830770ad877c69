// TrainConfig: defaults, derived defaults, aliases, CLI flags, help generation, and every kind of
// validation error (unknown field with close matches, wrong type, out of range, cross-field).
import { describe, expect, it } from 'vitest';
import { formatHelp, parseFlags } from '../../src/cli/args.js';
import {
  TRAIN_CONFIG_FIELDS,
  TrainConfigError,
  closeFieldNames,
  defaultRunName,
  kvMemoryBudgetBytes,
  modelSlug,
  parseMemoryBudget,
  resolveTrainConfig,
  type TrainConfig,
} from '../../src/train/config.js';
import { configFromFlags, formatTrainConfigFields, trainFlagSpecs } from '../../src/train/train-flags.js';
import { rewardFromConfig } from '../../src/train/reward-registry.js';

const NOW = new Date('2026-11-24T22:46:07Z');

function issuesOf(partial: unknown): { field: string; problem: string }[] {
  try {
    resolveTrainConfig(partial, { now: NOW, source: 'test.json' });
  } catch (e) {
    expect(e).toBeInstanceOf(TrainConfigError);
    return (e as TrainConfigError).issues.map(({ field, problem }) => ({ field, problem }));
  }
  throw new Error('expected a TrainConfigError');
}

describe('defaults', () => {
  const cfg = resolveTrainConfig({}, { now: NOW });
  it("the reference project's values", () => {
    expect(cfg).toMatchObject<Partial<TrainConfig>>({
      train_batch_size: 4,
      eval_batch_size: 32,
      warmup_steps: 32,
      num_train_epochs: 3,
      group_size: 4,
      learning_rate: 5e-7,
      max_new_tokens: 300,
      model: 'tiny',
      output_dir: 'runs',
      eval_on_start: false,
      resume_from_checkpoint: false,
      seed: 42,
      save_steps: 20,
      save_total_limit: 3,
      early_stopping_patience: 0,
      eval_on_test: false,
      max_grad_norm: 1.0,
      lr_scheduler_type: 'linear',
      beta: 0.04,
      epsilon: 0.2,
      loss_type: 'dapo',
      advantage_variant: 'groupStd',
      num_iterations: 1,
      temperature: 1,
      top_p: 1,
      top_k: 0,
      min_p: 0,
      repetition_penalty: 1,
      use_lora: true,
      full_finetune: false,
      lora_r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      kv_memory_budget: 0.3,
      reward_funcs: ['correctness', 'format'],
    });
  });
  it('derived: epsilon_high = epsilon, eval_steps = save_steps, weights 1, scale_rewards, run_name, sft_epochs', () => {
    expect(cfg.epsilon_high).toBe(0.2);
    expect(cfg.eval_steps).toBe(20);
    expect(cfg.reward_weights).toEqual([1, 1]);
    expect(cfg.scale_rewards).toBe('group');
    expect(cfg.run_name).toBe('tiny-20261124-224607');
    expect(cfg.sft_epochs).toBe(2);
    expect(cfg.lora_target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(resolveTrainConfig({ model: '/m/Qwen2.5-0.5B-Instruct/' }, { now: NOW })).toMatchObject({ run_name: 'qwen2.5-0.5b-instruct-20261124-224607', sft_epochs: 0 });
    expect(resolveTrainConfig({ epsilon: 0.1, save_steps: 5 }, { now: NOW })).toMatchObject({ epsilon_high: 0.1, eval_steps: 5 });
  });
  it('explicit values win over derived ones; the result is a fresh copy each time', () => {
    const c = resolveTrainConfig({ epsilon_high: 0.28, eval_steps: 0, run_name: 'r1', sft_epochs: 0 }, { now: NOW });
    expect(c).toMatchObject({ epsilon_high: 0.28, eval_steps: 0, run_name: 'r1', sft_epochs: 0 });
    c.reward_funcs.push('format');
    expect(resolveTrainConfig({}, { now: NOW }).reward_funcs).toEqual(['correctness', 'format']);
  });
  it('a resolved config survives a JSON round trip unchanged (what a checkpoint saves and resume reads)', () => {
    for (const partial of [{}, { full_finetune: true, advantage_variant: 'leaveOneOut' }, { scale_rewards: 'batch', resume_from_checkpoint: true, run_name: 'r' }]) {
      const c = resolveTrainConfig(partial, { now: NOW });
      expect(resolveTrainConfig(JSON.parse(JSON.stringify(c)), { now: new Date(0) })).toEqual(c);
    }
  });
  it('null asks for the derived default of a field whose default is derived', () => {
    const c = resolveTrainConfig({ eval_steps: null, epsilon_high: null, run_name: null, sft_epochs: null, reward_weights: null, labels: null }, { now: NOW });
    expect(c).toEqual(resolveTrainConfig({}, { now: NOW }));
    expect(issuesOf({ learning_rate: null })).toEqual([{ field: 'learning_rate', problem: 'expected a finite number > 0, got null' }]);
  });
  it('every field of TrainConfig has a table row with help; the help lists them all', () => {
    expect(Object.keys(cfg).sort()).toEqual(TRAIN_CONFIG_FIELDS.map((f) => f.name).sort());
    for (const f of TRAIN_CONFIG_FIELDS) expect(f.help.length).toBeGreaterThan(5);
    const text = formatTrainConfigFields();
    for (const f of TRAIN_CONFIG_FIELDS) expect(text).toContain(f.name);
    expect(text).toMatch(/learning_rate\s+peak AdamW learning rate \[float; default: 5e-7\]/);
  });
  it('run name helpers', () => {
    expect(modelSlug('Qwen/Qwen2.5-0.5B-Instruct')).toBe('qwen2.5-0.5b-instruct');
    expect(modelSlug('gemma')).toBe('gemma');
    expect(modelSlug('/')).toBe('model');
    expect(defaultRunName('gemma', new Date(Date.UTC(2027, 0, 2, 3, 4, 5)))).toBe('gemma-20270102-030405');
  });
});

describe('GRPO, LoRA and alias rules', () => {
  it('scale_rewards sets advantage_variant, or must agree with it', () => {
    expect(resolveTrainConfig({ scale_rewards: 'batch' }, { now: NOW })).toMatchObject({ advantage_variant: 'batchStd', scale_rewards: 'batch' });
    expect(resolveTrainConfig({ scale_rewards: false }, { now: NOW })).toMatchObject({ advantage_variant: 'meanOnly', scale_rewards: 'none' });
    expect(resolveTrainConfig({ advantage_variant: 'leaveOneOut', scale_rewards: 'none' }, { now: NOW }).advantage_variant).toBe('leaveOneOut');
    expect(issuesOf({ advantage_variant: 'groupStd', scale_rewards: 'batch' })).toEqual([
      { field: 'scale_rewards', problem: 'conflicts with advantage_variant = "groupStd", which means scale_rewards = "group"' },
    ]);
  });
  it('full_finetune turns LoRA off; both off or both on is refused', () => {
    expect(resolveTrainConfig({ full_finetune: true }, { now: NOW })).toMatchObject({ full_finetune: true, use_lora: false });
    expect(issuesOf({ full_finetune: true, use_lora: true })[0]!.problem).toMatch(/conflicts with use_lora = true/);
    expect(issuesOf({ use_lora: false })[0]!.problem).toMatch(/nothing would be trained/);
  });
  it('aliases: vllm_gpu_memory_utilization, num_generations, max_completion_length, lora_rank', () => {
    const c = resolveTrainConfig({ vllm_gpu_memory_utilization: 0.5, num_generations: 8, max_completion_length: 128, lora_rank: 16 }, { now: NOW });
    expect(c).toMatchObject({ kv_memory_budget: 0.5, group_size: 8, max_new_tokens: 128, lora_r: 16 });
    expect(issuesOf({ vllm_gpu_memory_utilization: 2 })).toEqual([{ field: 'vllm_gpu_memory_utilization', problem: 'expected a fraction in (0, 1], got 2' }]);
    expect(issuesOf({ group_size: 4, num_generations: 8 })).toEqual([
      { field: 'num_generations', problem: 'conflicts with group_size = 4 (num_generations is another name for group_size)' },
    ]);
    expect(resolveTrainConfig({ group_size: 8, num_generations: 8 }, { now: NOW }).group_size).toBe(8);
  });
  it('kv_memory_budget: fraction, bytes, or a size with a unit', () => {
    expect(parseMemoryBudget(0.25)).toBe(0.25);
    expect(parseMemoryBudget(1)).toBe(1);
    expect(parseMemoryBudget(1073741824)).toBe(2 ** 30);
    expect(parseMemoryBudget('8GiB')).toBe(8 * 2 ** 30);
    expect(parseMemoryBudget('512 MB')).toBe(512e6);
    expect(parseMemoryBudget('0.9')).toBe(0.9);
    expect(() => parseMemoryBudget('lots')).toThrow(/got "lots"/);
    expect(() => parseMemoryBudget(1.5)).toThrow(/byte count must be an integer, got 1.5/);
    expect(() => parseMemoryBudget(0)).toThrow(/got 0/);
    expect(kvMemoryBudgetBytes(0.25, 80e9)).toBe(20e9);
    expect(kvMemoryBudgetBytes(4096, 80e9)).toBe(4096);
    expect(resolveTrainConfig({ kv_memory_budget: '2GiB' }, { now: NOW }).kv_memory_budget).toBe(2 ** 31);
  });
  it('resume_from_checkpoint: boolean or path; true needs the run name', () => {
    expect(resolveTrainConfig({ resume_from_checkpoint: 'runs/r/checkpoint-20' }, { now: NOW }).resume_from_checkpoint).toBe('runs/r/checkpoint-20');
    expect(resolveTrainConfig({ resume_from_checkpoint: true, run_name: 'r' }, { now: NOW }).resume_from_checkpoint).toBe(true);
    expect(issuesOf({ resume_from_checkpoint: true })[0]!.problem).toMatch(/needs run_name/);
  });
  it('reward weights: one per function; the registry builds the weighted sum', () => {
    expect(issuesOf({ reward_weights: [1] })).toEqual([{ field: 'reward_weights', problem: 'has 1 weight(s) for 2 reward function(s) [correctness, format]' }]);
    const cfg = resolveTrainConfig({ reward_weights: [1, 0.2] }, { now: NOW });
    const reward = rewardFromConfig(cfg);
    const r = reward({ label: 0, labels: ['sad', 'joyful'] }, 'They lost a friend. <answer>sad</answer>');
    expect(r.total).toBeCloseTo(1.2, 12);
    expect(r.parts).toEqual({ correctness: 1, format: 1 });
  });
  it('group_size 1 only with batchStd', () => {
    expect(issuesOf({ group_size: 1 })[0]!.problem).toMatch(/groupStd needs group_size >= 2/);
    expect(resolveTrainConfig({ group_size: 1, advantage_variant: 'batchStd' }, { now: NOW }).group_size).toBe(1);
  });
});

describe('validation errors name the field and the value', () => {
  it('unknown fields, with close matches', () => {
    expect(issuesOf({ learning_rte: 1e-6 })).toEqual([{ field: 'learning_rte', problem: 'unknown field; did you mean learning_rate?' }]);
    expect(issuesOf({ batch_size: 4 })[0]!.problem).toMatch(/did you mean .*train_batch_size/);
    expect(issuesOf({ zzzzzzzz: 1 })).toEqual([{ field: 'zzzzzzzz', problem: 'unknown field' }]);
    expect(closeFieldNames('lora-alpha')).toContain('lora_alpha');
  });
  it('wrong types', () => {
    expect(issuesOf({ train_batch_size: '4' })).toEqual([{ field: 'train_batch_size', problem: 'expected an integer >= 1, got "4"' }]);
    expect(issuesOf({ train_batch_size: 2.5 })).toEqual([{ field: 'train_batch_size', problem: 'expected an integer >= 1, got 2.5' }]);
    expect(issuesOf({ eval_on_start: 'yes' })).toEqual([{ field: 'eval_on_start', problem: 'expected true or false, got "yes"' }]);
    expect(issuesOf({ loss_type: 'ppo' })).toEqual([{ field: 'loss_type', problem: 'expected one of grpo, bnpo, dapo, dr_grpo, got "ppo"' }]);
    expect(issuesOf({ matmul_precision: 'int8' })).toEqual([{ field: 'matmul_precision', problem: 'expected one of fp32, bf16, got "int8"' }]);
    expect(issuesOf({ gradient_checkpointing: 1 })).toEqual([{ field: 'gradient_checkpointing', problem: 'expected true or false, got 1' }]);
    expect(issuesOf({ lora_target_modules: ['q_proj', 'qkv'] })).toEqual([
      { field: 'lora_target_modules', problem: '"qkv" is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj' },
    ]);
    expect(issuesOf({ reward_funcs: ['correctness', 'correctness'] })[0]!.problem).toBe('"correctness" appears twice in ["correctness","correctness"]');
    expect(issuesOf({ learning_rate: Number.NaN })).toEqual([{ field: 'learning_rate', problem: 'expected a finite number > 0, got NaN' }]);
  });
  it('out of range', () => {
    expect(issuesOf({ learning_rate: 0 })).toEqual([{ field: 'learning_rate', problem: 'expected a number > 0, got 0' }]);
    expect(issuesOf({ top_p: 1.5 })).toEqual([{ field: 'top_p', problem: 'expected a number > 0 and <= 1, got 1.5' }]);
    expect(issuesOf({ epsilon: 1 })).toEqual([{ field: 'epsilon', problem: 'expected a number >= 0 and < 1, got 1' }]);
    expect(issuesOf({ max_steps: 0 })).toEqual([{ field: 'max_steps', problem: 'expected -1 (off) or a positive integer, got 0' }]);
    expect(issuesOf({ run_name: '../x' })[0]!.problem).toMatch(/expected a folder name/);
  });
  it('collects every problem and formats one message', () => {
    let err: TrainConfigError | undefined;
    try {
      resolveTrainConfig({ learning_rte: 1, group_size: 0, beta: -1 }, { source: 'cfg.json', now: NOW });
    } catch (e) {
      err = e as TrainConfigError;
    }
    expect(err?.issues.map((i) => i.field)).toEqual(['learning_rte', 'group_size', 'beta']);
    expect(err?.message).toBe(
      'invalid training config (cfg.json), 3 problems:\n' +
        '  learning_rte: unknown field; did you mean learning_rate?\n' +
        '  group_size: expected an integer >= 1, got 0\n' +
        '  beta: expected a number >= 0, got -1',
    );
  });
  it('not an object', () => {
    expect(() => resolveTrainConfig([1], { now: NOW })).toThrow(/expected an object of fields, got \[1\]/);
    expect(() => resolveTrainConfig(null, { now: NOW })).toThrow(TrainConfigError);
  });
});

describe('CLI flags', () => {
  const specs = trainFlagSpecs();
  it('parseFlags + configFromFlags with the same snake_case names', () => {
    const { flags } = parseFlags(
      [
        '--learning_rate=1e-6', '--group_size', '8', '--eval_on_start', '--no-use_lora', '--full_finetune',
        '--lora_target_modules=q_proj,v_proj', '--reward_weights=1,0.5', '--resume_from_checkpoint=latest', '--run_name=r',
        '--use_vllm', '--vllm_gpu_memory_utilization=0.6', '--scale_rewards=false', '--kv_memory_budget=0.6',
      ],
      specs,
    );
    const cfg = configFromFlags(flags, { now: NOW });
    expect(cfg).toMatchObject({
      learning_rate: 1e-6, group_size: 8, eval_on_start: true, use_lora: false, full_finetune: true,
      lora_target_modules: ['q_proj', 'v_proj'], reward_weights: [1, 0.5], resume_from_checkpoint: true,
      use_vllm: true, kv_memory_budget: 0.6, advantage_variant: 'meanOnly', scale_rewards: 'none',
    });
  });
  it('absent flags keep the config defaults (the specs carry no defaults)', () => {
    const { flags } = parseFlags([], specs);
    expect(configFromFlags(flags, { now: NOW })).toEqual(resolveTrainConfig({}, { now: NOW }));
  });
  it('bad flag values are reported by field', () => {
    const { flags } = parseFlags(['--reward_weights=1,x', '--kv_memory_budget=huge'], specs);
    expect(() => configFromFlags(flags, { now: NOW })).toThrow(
      'invalid training config (command line), 2 problems:\n' +
        '  reward_weights: expected a list of finite numbers, got ["1","x"]\n' +
        '  kv_memory_budget: expected a fraction in (0, 1], a byte count, or a size such as "8GiB", got "huge"',
    );
  });
  it('--help text is generated from the table', () => {
    const help = formatHelp('rrec-emotion train [flags]', 'GRPO training.', specs);
    for (const f of TRAIN_CONFIG_FIELDS) expect(help).toContain(`--${f.name}`);
    expect(help).toMatch(/--train_batch_size=INT\s+prompts per optimizer step \(default: 4\)/);
    expect(help).toMatch(/--lr_scheduler_type=constant\|linear\|cosine /);
    expect(help).toMatch(/--advantage_variant=groupStd\|leaveOneOut\|meanOnly\|batchStd /);
    expect(help).toMatch(/--resume_from_checkpoint=BOOL\|PATH /);
    expect(help).toMatch(/--vllm_gpu_memory_utilization=FLOAT\s+= --kv_memory_budget/);
  });
});
