// Merged export (src/export/merged.ts): the folder loads back through the project's own loader to
// the log-probs of base + adapter (and of a full fine-tune's weights), for each architecture; its
// files follow transformers' layout: config.json with torch_dtype, generation_config.json, the
// tokenizer files as they were, model.safetensors with the HF names (no lm_head when tied) in the
// chosen dtype and save_file's header, or shards + model.safetensors.index.json.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../src/export/index.js';
import { CausalLM, loadAdapter, type LoraAdapter } from '../../src/model/index.js';
import { f32ToBf16Bits, SafetensorsFile } from '../../src/model/safetensors.js';
import { nonZeroAdapter, saveTestAdapter, writeTokenizedTinyModel } from '../helpers/export-models.js';
import { mulberry32, type Arch } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-export-merged-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Log-probs of 40 vocabulary ids spread over the vocab at every position of three sequences. */
async function logprobs(lm: CausalLM, adapter: LoraAdapter | null = null): Promise<Float32Array> {
  const V = lm.config.vocabSize;
  const next = mulberry32(9);
  const seqs = [17, 33, 9].map((n) => Array.from({ length: n }, () => next() % V));
  const tokens = seqs.flat();
  const offsets = [0];
  for (const s of seqs) offsets.push(offsets[offsets.length - 1]! + s.length);
  const ids = Array.from({ length: 40 }, (_, k) => Math.floor((k * V) / 40) + (k % 7));
  const rows = tokens.flatMap((_, r) => ids.map(() => r));
  const targets = tokens.flatMap(() => ids);
  const out = await lm.forward(
    { tokens: Int32Array.from(tokens), seqOffsets: Int32Array.from(offsets), targetRows: Int32Array.from(rows), targetTokens: Int32Array.from(targets) },
    { adapter, keepForBackward: false },
  );
  return Float32Array.from(out.logp);
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

async function headerOf(file: string) {
  const st = await SafetensorsFile.open(file);
  const out = { metadata: st.metadata, tensors: [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })) };
  await st.close();
  return out;
}

describe.each(['qwen2', 'llama', 'gemma2'] as const)('merged export of a %s base + LoRA adapter', (arch: Arch) => {
  it('reloads to the log-probs of base + adapter, in transformers\' layout', async () => {
    const base = join(root, arch);
    const model = writeTokenizedTinyModel(base, arch, 'tiny');
    const lm = await CausalLM.load(base);
    const adapterDir = join(root, `${arch}-adapter`);
    await saveTestAdapter(nonZeroAdapter(lm), adapterDir, base);
    const adapter = await loadAdapter(lm, adapterDir); // what the file holds
    const want = await logprobs(lm, adapter);
    const baseOnly = await logprobs(lm);

    const out = join(root, `${arch}-merged`);
    const r = await exportModel({ checkpoint: adapterDir, format: 'merged', out, dtype: 'f32' });
    expect(r).toMatchObject({ format: 'merged', dtype: 'F32', modelDir: base, weightsKind: 'adapter', mergedTensors: 7 * model.config.num_hidden_layers });
    const merged = await CausalLM.load(out);
    const got = await logprobs(merged);
    expect(maxDiff(got, baseOnly)).toBeGreaterThan(1e-2); // the adapter changes the model...
    expect(maxDiff(got, want)).toBeLessThan(2e-5); // ...and the merge is that change

    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toEqual({ ...model.config, torch_dtype: 'float32' });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) expect(readFileSync(join(out, f)).equals(readFileSync(join(base, f))), f).toBe(true);
    const header = await headerOf(join(out, 'model.safetensors'));
    expect(header.metadata).toEqual({ format: 'pt' });
    const names = model.tensors.map((t) => t.name).sort();
    expect(header.tensors.map((t) => t.name)).toEqual(names); // every HF name, sorted as save_file sorts; no lm_head when tied
    expect(header.tensors.every((t) => t.dtype === 'F32')).toBe(true);
    const shapes = new Map(model.tensors.map((t) => [t.name, t.shape]));
    for (const t of header.tensors) expect(t.shape, t.name).toEqual(shapes.get(t.name));

    // bf16: every stored value is the f32 merge rounded to nearest even
    const outBf = join(root, `${arch}-merged-bf16`);
    await exportModel({ checkpoint: adapterDir, format: 'merged', out: outBf, dtype: 'bf16' });
    expect(JSON.parse(readFileSync(join(outBf, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const [f32File, bf16File] = await Promise.all([SafetensorsFile.open(join(out, 'model.safetensors')), SafetensorsFile.open(join(outBf, 'model.safetensors'))]);
    for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight']) {
      expect(bf16File.info(name).dtype).toBe('BF16');
      const f = (await f32File.read(name)).data;
      const b = await bf16File.readBytes(name);
      const bits = new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
      let bad = 0;
      for (let i = 0; i < f.length; i++) if (bits[i] !== f32ToBf16Bits(f[i]!)) bad++;
      expect(bad, name).toBe(0);
    }
    await f32File.close();
    await bf16File.close();
    const mergedBf = await CausalLM.load(outBf);
    // it loads, and only the bf16 rounding of every weight separates it (these tiny models' sharp
    // distributions magnify that to ~0.2 in log-prob; the adapter's own effect is larger)
    const bfDiff = maxDiff(await logprobs(mergedBf), want);
    expect(bfDiff).toBeLessThan(0.3);
    expect(bfDiff).toBeLessThan(maxDiff(want, baseOnly));
    mergedBf.free();
    merged.free();
    lm.free();
  });
});

describe('merged export: shards, full fine-tunes, refusals', () => {
  it('shards above maxShardBytes as transformers does, and the shards load back', async () => {
    const base = join(root, 'shard-base');
    writeTokenizedTinyModel(base, 'llama', 'tiny');
    const out = join(root, 'sharded');
    const max = 100_000;
    await exportModel({ model: base, format: 'merged', out, dtype: 'f32', maxShardBytes: max });
    const files = readdirSync(out).filter((f) => f.endsWith('.safetensors')).sort();
    expect(files.length).toBeGreaterThan(2);
    files.forEach((f, i) => expect(f).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(files.length).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());
    // every tensor is in the shard the index names; a shard passes the limit only when it holds one tensor
    let total = 0;
    const seen: string[] = [];
    for (const f of files) {
      const h = await headerOf(join(out, f));
      const bytes = h.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 4), 0);
      if (h.tensors.length > 1) expect(bytes).toBeLessThanOrEqual(max);
      for (const t of h.tensors) expect(index.weight_map[t.name], t.name).toBe(f);
      total += bytes;
      seen.push(...h.tensors.map((t) => t.name));
    }
    expect(seen.sort()).toEqual(Object.keys(index.weight_map));
    expect(index.metadata.total_size).toBe(total);
    expect(index.weight_map['model.embed_tokens.weight']).toBe(files[0]);
    expect(index.weight_map['lm_head.weight']).toBe(files[files.length - 1]);
    const lmBase = await CausalLM.load(base);
    const lmOut = await CausalLM.load(out);
    expect(maxDiff(await logprobs(lmOut), await logprobs(lmBase))).toBe(0); // no adapter: the same f32 weights
    lmBase.free();
    lmOut.free();
  });

  it('exports a full fine-tune\'s model.safetensors as the merged model', async () => {
    const base = join(root, 'full-base');
    writeTokenizedTinyModel(base, 'qwen2', 'tiny');
    const lm = await CausalLM.load(base, { fullFinetune: true });
    const name = 'model.layers.1.mlp.up_proj.weight';
    const w = lm.getParam(name);
    lm.setParam(name, w.map((v, i) => v + (i % 3 === 0 ? 0.05 : -0.02)));
    const ckpt = join(root, 'full-ckpt');
    const { writeTrainedWeights } = await import('../../src/train/trained-weights.js');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(ckpt);
    await writeTrainedWeights(ckpt, { lm, adapter: null });
    const out = join(root, 'full-merged');
    const r = await exportModel({ checkpoint: ckpt, model: base, format: 'merged', out, dtype: 'f32' });
    expect([r.weightsKind, r.mergedTensors]).toEqual(['full', 0]);
    const merged = await CausalLM.load(out);
    expect(maxDiff(await logprobs(merged), await logprobs(lm))).toBe(0);
    merged.free();
    lm.free();
  });

  it('refuses to replace a folder that is not a model, and an earlier export without overwrite', async () => {
    const base = join(root, 'full-base');
    const notModel = join(root, 'precious');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(notModel);
    writeFileSync(join(notModel, 'notes.txt'), 'keep me');
    await expect(exportModel({ model: base, format: 'merged', out: notModel })).rejects.toThrow(/precious: exists and is not a model folder \(no config.json\); refusing to replace it/);
    expect(readFileSync(join(notModel, 'notes.txt'), 'utf8')).toBe('keep me');
    const out = join(root, 'again');
    await exportModel({ model: base, format: 'merged', out });
    await expect(exportModel({ model: base, format: 'merged', out })).rejects.toThrow(/again: exists; pass overwrite/);
    await exportModel({ model: base, format: 'merged', out, overwrite: true });
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    expect(readdirSync(root).filter((n) => n.startsWith('.again.'))).toEqual([]); // no temporary left behind
    await expect(exportModel({ model: base, format: 'merged', out: join(root, 'x'), dtype: 'q8_0' })).rejects.toThrow(/a merged folder is written in f32 or bf16/);
  });

  it('names the adapter file and tensor when the adapter does not fit the base', async () => {
    const base = join(root, 'full-base');
    const lm = await CausalLM.load(base);
    const dir = join(root, 'bad-adapter');
    await saveTestAdapter(nonZeroAdapter(lm, { targets: ['q_proj'] }), dir, base);
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: ['q_proj', 'v_proj'] }));
    await expect(exportModel({ checkpoint: dir, model: base, format: 'merged', out: join(root, 'never') })).rejects.toThrow(
      /bad-adapter\/adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight" is missing/,
    );
    expect(existsSync(join(root, 'never'))).toBe(false);
    lm.free();
  });
});
