/**
 * Reward functions by the names a config uses (`reward_funcs`), and the weighted sum a config asks
 * for (`reward_funcs` + `reward_weights`, TRL semantics: total = sum of weight_i * reward_i).
 */

import { combineRewards, correctnessReward, formatReward, type CombinedRewardFn, type RewardFn } from '../reward/index.js';
import { REWARD_FUNC_NAMES, type RewardFuncName, type TrainConfig } from './config.js';

/** name -> reward function; the keys are exactly REWARD_FUNC_NAMES. */
export const REWARD_FUNCS: Readonly<Record<RewardFuncName, RewardFn>> = Object.freeze({
  correctness: correctnessReward,
  format: formatReward,
});

/** The reward of a resolved config. Throws for a name not in the registry. */
export function rewardFromConfig(cfg: Pick<TrainConfig, 'reward_funcs' | 'reward_weights'>): CombinedRewardFn {
  if (cfg.reward_weights.length !== cfg.reward_funcs.length) {
    throw new Error(`reward_weights has ${cfg.reward_weights.length} entries for ${cfg.reward_funcs.length} reward_funcs`);
  }
  return combineRewards(
    cfg.reward_funcs.map((name, i) => {
      const fn = (REWARD_FUNCS as Record<string, RewardFn>)[name];
      if (!fn) throw new Error(`unknown reward function "${name}"; known: ${REWARD_FUNC_NAMES.join(', ')}`);
      return { name, fn, weight: cfg.reward_weights[i]! };
    }),
  );
}
