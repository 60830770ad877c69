/**
 * RecPO's CLI flags for `rrec-emotion train --trainer=recpo` (beside the train config's flags of
 * src/train/train-flags.ts): the reference's names, checked by splitRecpoConfig.
 */
import type { FlagSpecs, ParsedFlags } from '../cli/args.js';
import { RECPO_DEFAULTS, RECPO_HELP, RECPO_PRESET, type RecpoOptions } from './config.js';

export const TRAINERS = ['grpo', 'recpo'] as const;
export type TrainerName = (typeof TRAINERS)[number];

const TYPES: Record<keyof RecpoOptions, FlagSpecs[string]['type']> = {
  reward_softmax_weight: 'float',
  reward_format_weight: 'float',
  reward_rank_weight: 'float',
  advantage_type: 'string',
  item_emb_refresh_steps: 'int',
  similarity_temperature: 'float',
  label_descriptions: 'string',
  label_embedding_grad: 'boolean',
};

const presetText = Object.entries(RECPO_PRESET).map(([k, v]) => `${k}=${v}`).join(', ');

/** --trainer and RecPO's own flags (epsilon_low: the reference's name for --epsilon). */
export function recpoFlagSpecs(): FlagSpecs {
  const specs: FlagSpecs = {
    trainer: { type: 'string', metavar: TRAINERS.join('|'), help: `grpo (answer parsing) or recpo (hidden-state decision over label embeddings; its defaults: ${presetText}) (default: grpo)` },
    epsilon_low: { type: 'float', help: '= --epsilon (the reference RecPO name)' },
  };
  for (const k of Object.keys(RECPO_DEFAULTS) as (keyof RecpoOptions)[])
    specs[k] = { type: TYPES[k], help: `${RECPO_HELP[k]} (default: ${RECPO_DEFAULTS[k] ?? 'none'})`, ...(k === 'label_descriptions' ? { metavar: 'FILE' } : {}) };
  return specs;
}

/** Splits parsed flags into the trainer's name, RecPO's own values and the rest; RecPO flags with --trainer=grpo are an error. */
export function splitTrainerFlags(flags: ParsedFlags): { trainer: TrainerName; recpo: Record<string, unknown>; rest: ParsedFlags } {
  const { trainer: t, ...others } = flags;
  const trainer = (t ?? 'grpo') as TrainerName;
  if (!TRAINERS.includes(trainer)) throw new Error(`--trainer: expected one of ${TRAINERS.join(', ')}, got "${String(t)}"`);
  const own = new Set<string>([...Object.keys(RECPO_DEFAULTS), 'epsilon_low']);
  const recpo: Record<string, unknown> = {};
  const rest: ParsedFlags = {};
  for (const [k, v] of Object.entries(others)) {
    if (v === undefined) continue;
    if (own.has(k)) recpo[k] = v;
    else rest[k] = v;
  }
  const stray = Object.keys(recpo);
  if (trainer === 'grpo' && stray.length) throw new Error(`--${stray[0]} is a RecPO option; add --trainer=recpo (or drop it)`);
  return { trainer, recpo, rest };
}
