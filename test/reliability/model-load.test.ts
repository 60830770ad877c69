// Fault family: model folders, tokenizers and adapters that do not fit together. Each case is
// refused at load (before a run folder or any large allocation exists) with a message naming the
// file, the field and the values.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, loadAdapter, saveAdapter } from '../../src/model/index.js';
import { lenmlTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { tinyTokenizerJson } from '../helpers/tokenizer-folders.js';
import { configJson, writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const good = join(root, 'good');
const model = writeTinyModel(good, 'llama');
const baseConfig = JSON.parse(configJson(model.config)) as Record<string, unknown>;

let n = 0;
function withConfig(patch: Record<string, unknown>): string {
  const dir = join(root, `c${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...baseConfig, ...patch }));
  copyFileSync(join(good, 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}

/** Overwrites every float of a safetensors file's data section with `value` (all-F32 files). */
function fillFloats(file: string, value: number): void {
  const buf = readFileSync(file);
  const start = 8 + Number(buf.readBigUInt64LE(0));
  for (let o = start; o + 4 <= buf.length; o += 4) buf.writeFloatLE(value, o);
  writeFileSync(file, buf);
}

describe('config.json checked against the tensors present, before allocating', () => {
  it('num_hidden_layers of 1e8 and 1e6: the field and both counts, no bad_alloc, no large allocation', async () => {
    for (const layers of [100_000_000, 1_000_000]) {
      const rss0 = process.memoryUsage().rss;
      await expect(CausalLM.load(withConfig({ num_hidden_layers: layers }))).rejects.toThrow(
        new RegExp(`config\\.json: field "num_hidden_layers" is ${layers} but the weights hold 2 layer\\(s\\) \\(model\\.layers\\.0 \\.\\. model\\.layers\\.1\\)`),
      );
      // before the fix 1e6 layers allocated ~560 MB before failing
      expect(process.memoryUsage().rss - rss0).toBeLessThan(100 * 2 ** 20);
    }
    await expect(CausalLM.load(withConfig({ num_hidden_layers: 1 }))).rejects.toThrow(/"num_hidden_layers" is 1 but the weights hold 2 layer/);
  });

  it('vocab_size, intermediate_size, heads that disagree with the stored shapes name the field', async () => {
    await expect(CausalLM.load(withConfig({ vocab_size: 1_000_000_000 }))).rejects.toThrow(
      /config\.json: fields "vocab_size" \(1000000000\) and "hidden_size" \(64\) imply model\.embed_tokens\.weight of shape \[1000000000, 64\] but .*model\.safetensors holds \[256, 64\]/,
    );
    await expect(CausalLM.load(withConfig({ intermediate_size: 4096 }))).rejects.toThrow(/fields "intermediate_size" \(4096\) and "hidden_size" imply model\.layers\.0\.mlp\.gate_proj\.weight of shape \[4096, 64\] but .* holds \[128, 64\]/);
    await expect(CausalLM.load(withConfig({ num_attention_heads: 8, num_key_value_heads: 4 }))).rejects.toThrow(/"num_attention_heads" \(8\), head_dim \(16\) .*q_proj\.weight of shape \[128, 64\] but .* holds \[64, 64\]/);
  });

  it('the good folder still loads', async () => {
    (await CausalLM.load(good)).free();
  });
});

describe('tokenizer ids against the model vocab_size, at load', () => {
  it('names both files and both numbers', async () => {
    const dir = join(root, 'tok-big');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson())); // 32 ids
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 16, eos_token_id: 2 }));
    const err = await loadTokenizer(dir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(
      `${join(dir, 'tokenizer.json')} has token ids up to 31 (32 ids) but ${join(dir, 'config.json')} field "vocab_size" is 16: the tokenizer does not belong to this model (or vocab_size is wrong)`,
    );
  });

  it('Qwen2.5 tokenizer on the tiny llama (vocab 256): refused before the first generation', async () => {
    const dir = join(root, 'tok-qwen-on-tiny');
    mkdirSync(dir);
    copyFileSync(join(good, 'config.json'), join(dir, 'config.json'));
    copyFileSync(join(lenmlTokenizerDir('qwen2_5'), 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json has token ids up to 151664 \(151665 ids\) but .*config\.json field "vocab_size" is 256/);
  });

  it('a padded embedding (vocab_size above the tokenizer, as Qwen2.5 ships) is fine', async () => {
    const dir = join(root, 'tok-padded');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 64, eos_token_id: 2 }));
    expect((await loadTokenizer(dir)).vocabSize).toBe(32);
  });
});

describe('non-finite adapter weights, at load', () => {
  it('an adapter full of NaN (or one Inf) is refused naming the file and the tensor', async () => {
    const lm = await CausalLM.load(good);
    try {
      const adapter = lm.createLora({ rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], seed: 1 });
      const dir = join(root, 'nan-adapter');
      await saveAdapter(adapter, dir, { baseModelNameOrPath: good });
      await loadAdapter(lm, dir); // the pristine one loads
      const file = join(dir, 'adapter_model.safetensors');
      const pristine = readFileSync(file);
      fillFloats(file, Number.NaN);
      await expect(loadAdapter(lm, dir)).rejects.toThrow(/adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.\d+\.self_attn\.[qv]_proj\.lora_[AB]\.weight": holds a non-finite value \(NaN at flat index 0\)/);
      // one infinity among finite values
      const buf = Buffer.from(pristine);
      buf.writeFloatLE(Number.POSITIVE_INFINITY, buf.length - 4);
      writeFileSync(file, buf);
      await expect(loadAdapter(lm, dir)).rejects.toThrow(/holds a non-finite value \(Infinity at flat index \d+\)/);
    } finally {
      lm.free();
    }
  });
});
