// Compiled by `npm run typecheck` (tsconfig.json includes test/), never run: the config's static
// type refuses what the runtime check refuses. Each @ts-expect-error fails tsc if its line compiles.
// test/train/config-types.test.ts compiles the same lines without the comments and checks the errors.
import { GrpoTrainer, type TrainConfigInput } from '../../src/index.js';

// @ts-expect-error misspelt field name
void new GrpoTrainer({ modle: 'tiny' });
// @ts-expect-error a string where a number goes
void new GrpoTrainer({ learning_rate: '1e-6' });
// @ts-expect-error not one of the loss types
void new GrpoTrainer({ loss_type: 'ppo' });
// @ts-expect-error not a LoRA module
void new GrpoTrainer({ lora_target_modules: ['qkv'] });

// What is allowed: any subset, TRL's aliases, null for a derived default, sizes as strings.
const ok: TrainConfigInput = { model: 'tiny', num_generations: 4, max_completion_length: 64, eval_steps: null, kv_memory_budget: '8GiB', resume_from_checkpoint: 'runs/r/checkpoint-20', scale_rewards: false };
void new GrpoTrainer(ok);
void new GrpoTrainer();
