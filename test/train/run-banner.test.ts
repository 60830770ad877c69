// The start banner names the resolved model folder, the tokenizer, the data folder with its split
// sizes, the device and the run folder, and says so when the run fell back to the shipped sample.
import { describe, expect, it } from 'vitest';
import { runBanner, type RunBannerInput } from '../../src/train/run-banner.js';

const base: RunBannerInput = {
  model: 'qwen', modelDir: '/models/Qwen2.5-0.5B-Instruct', builtin: false,
  tokenizer: { vocabSize: 151665, eos: '<|im_end|>', chatTemplate: true },
  dataDir: '/data/ED_easy_4', configuredDataDir: '/data/ED_easy_4', sampleDir: '/pkg/data/sample',
  splits: { train: 2386, valid: 358, test: 328 }, device: { device: 'cpu', name: 'x86-64 CPU' }, runDir: '/runs/r',
};

describe('runBanner', () => {
  it('model, tokenizer, data with split sizes, device, run', () => {
    expect(runBanner(base)).toEqual([
      'model      /models/Qwen2.5-0.5B-Instruct ("qwen")',
      'tokenizer  /models/Qwen2.5-0.5B-Instruct (vocab 151665, ends with <|im_end|>, its chat template)',
      'data       /data/ED_easy_4: train 2386, valid 358, test 328',
      'device     cpu (x86-64 CPU)',
      'run        /runs/r',
    ]);
  });
  it('the fallback to the shipped sample is said, not when the sample was asked for', () => {
    const fallback = { ...base, dataDir: '/pkg/data/sample/ED_sample_4', configuredDataDir: null, splits: { train: 120, valid: 40, test: 40 } };
    expect(runBanner(fallback)[3]).toMatch(/^ {11}no --data_dir given and no \.\.\/shared\/data\/ED_easy_4 beside the package: this is the shipped sample of 200 sentences/);
    expect(runBanner({ ...fallback, configuredDataDir: '/pkg/data/sample/ED_sample_4' }).join('\n')).not.toContain('no --data_dir given');
    expect(runBanner({ ...base, configuredDataDir: null }).join('\n')).not.toContain('no --data_dir given');
    expect(runBanner({ ...base, model: 'tiny', modelDir: '/runs/builtin-tiny-qwen2', builtin: true })[0]).toBe('model      /runs/builtin-tiny-qwen2 (the built-in tiny model, random weights)');
  });
});
