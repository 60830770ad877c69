// The JSON Schema generated from the zod schema (for editors) agrees with the runtime check: a
// JSON Schema validator nobody here wrote (Ajv, draft 2020-12) accepts what resolveTrainConfig
// accepts and refuses what it refuses, field by field.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { FIELDS, TRAIN_CONFIG_ALIASES, trainConfigJsonSchema } from '../../src/train/config-schema.js';
import { TrainConfigError, resolveTrainConfig } from '../../src/train/config.js';

const schema = trainConfigJsonSchema();
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
const NOW = new Date('2026-11-24T22:46:07Z');

function runtimeAccepts(partial: unknown): boolean {
  try {
    resolveTrainConfig(partial, { now: NOW });
    return true;
  } catch (e) {
    if (e instanceof TrainConfigError) return false;
    throw e;
  }
}

describe('train config JSON Schema', () => {
  it('lists every field and alias with its description and default, nothing else allowed', () => {
    const props = schema.properties as Record<string, { description?: string; default?: unknown }>;
    expect(Object.keys(props).sort()).toEqual(['$schema', ...Object.keys(FIELDS), ...Object.keys(TRAIN_CONFIG_ALIASES)].sort());
    expect(schema.additionalProperties).toBe(false);
    for (const [name, f] of Object.entries(FIELDS)) {
      expect(props[name]!.description, name).toBe(f.help);
      if (f.default !== null) expect(props[name]!.default, name).toEqual(f.default);
    }
    expect(props.num_generations!.description).toBe("= group_size (TRL's name)");
    expect(props.num_generations!.default).toBeUndefined();
    expect(props.kv_memory_budget!.default).toBe(0.3);
    expect(props.loss_type).toMatchObject({ type: 'string', enum: ['grpo', 'bnpo', 'dapo', 'dr_grpo'] });
  });

  it('a resolved config (what run.json holds) and a TRL-style file validate', () => {
    const resolved = JSON.parse(JSON.stringify(resolveTrainConfig({}, { now: NOW })));
    expect(validate(resolved), JSON.stringify(validate.errors)).toBe(true);
    const file = { $schema: './node_modules/rrec-emotion/dist/train-config.schema.json', model: 'tiny', num_generations: 8, max_completion_length: 128, learning_rate: 1e-6, scale_rewards: 'batch', kv_memory_budget: '8GiB', resume_from_checkpoint: true, run_name: 'r' };
    expect(validate(file), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the values the runtime refuses by type or range, the JSON Schema refuses too', () => {
    const bad: Record<string, unknown>[] = [
      { modle: 'tiny' }, { learning_rate: 0 }, { learning_rate: '1e-6' }, { train_batch_size: 2.5 }, { train_batch_size: 0 },
      { top_p: 1.5 }, { epsilon: 1 }, { loss_type: 'ppo' }, { matmul_precision: 'int8' }, { eval_on_start: 'yes' },
      { lora_target_modules: ['q_proj', 'qkv'] }, { reward_funcs: ['accuracy'] }, { reward_weights: [] }, { labels: [1, 2] },
      { resume_from_checkpoint: 3 }, { kv_memory_budget: [1] }, { num_generations: 0 }, { sft_epochs: -1 }, { model: 7 },
    ];
    for (const partial of bad) {
      expect(runtimeAccepts(partial), JSON.stringify(partial)).toBe(false);
      expect(validate(partial), JSON.stringify(partial)).toBe(false);
    }
    const good: Record<string, unknown>[] = [{}, { eval_steps: null }, { scale_rewards: true }, { lora_target_modules: ['q_proj'] }, { reward_weights: [1, 0.5] }, { top_k: 5 }, { max_steps: -1 }];
    for (const partial of good) {
      expect(runtimeAccepts(partial), JSON.stringify(partial)).toBe(true);
      expect(validate(partial), JSON.stringify(validate.errors)).toBe(true);
    }
  });
});
