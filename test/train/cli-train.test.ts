// `rrec-emotion train`: help lists every config field, bad flags are refused with their name.
import { describe, expect, it, vi } from 'vitest';
import { CliUsageError } from '../../src/cli/args.js';
import { runTrain } from '../../src/cli/train.js';
import { TRAIN_CONFIG_FIELDS } from '../../src/train/config.js';

describe('rrec-emotion train', () => {
  it('--help prints every field with its default', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await runTrain(['--help'])).toBe(0);
    const text = log.mock.calls.map((c) => String(c[0])).join('\n');
    log.mockRestore();
    for (const f of TRAIN_CONFIG_FIELDS) expect(text).toContain(f.name);
    expect(text).toMatch(/--num_train_epochs=INT\s+passes over the training prompts \(default: 3\)/);
  });

  it('refuses unknown flags and bad values, naming them', async () => {
    await expect(runTrain(['--learning_rat=1'])).rejects.toThrow(CliUsageError);
    await expect(runTrain(['--learning_rat=1'])).rejects.toThrow(/--learning_rat/);
    await expect(runTrain(['--num_train_epochs=two'])).rejects.toThrow(/num_train_epochs/);
    await expect(runTrain(['--group_size=1', '--advantage_variant=groupStd'])).rejects.toThrow(/group_size/);
  });
});
