// Bad model folders: every failure is a rejected Promise whose message names the file and the
// tensor or field, never a crash of the Node process.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM } from '../../src/model/index.js';
import { encodeSafetensors } from '../helpers/safetensors-writer.js';
import { configJson, makeTinyModel, writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-loaderr-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const good = join(root, 'good');
const model = writeTinyModel(good, 'llama');

let n = 0;
/** A copy of the good folder with its config and/or weights bytes replaced. */
function variant(opts: { config?: Record<string, unknown> | string; weights?: Buffer; noWeights?: boolean }): string {
  const dir = join(root, `v${n++}`);
  mkdirSync(dir);
  const cfg = opts.config === undefined ? readFileSync(join(good, 'config.json'), 'utf8') : typeof opts.config === 'string' ? opts.config : JSON.stringify(opts.config);
  writeFileSync(join(dir, 'config.json'), cfg);
  if (opts.weights) writeFileSync(join(dir, 'model.safetensors'), opts.weights);
  else if (!opts.noWeights) copyFileSync(join(good, 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}
const baseConfig = JSON.parse(configJson(model.config)) as Record<string, unknown>;

describe('loading errors', () => {
  it('loads the good folder', async () => {
    (await CausalLM.load(good)).free();
  });

  it('missing folder or config.json', async () => {
    await expect(CausalLM.load(join(root, 'nope'))).rejects.toThrow(/nope\/config\.json: cannot open/);
  });

  it('config.json that is not JSON', async () => {
    await expect(CausalLM.load(variant({ config: '{"model_type": "llama",' }))).rejects.toThrow(/config\.json: invalid JSON/);
  });

  it('unknown architecture', async () => {
    await expect(CausalLM.load(variant({ config: { ...baseConfig, model_type: 'gpt2' } }))).rejects.toThrow(/"model_type" is "gpt2"; supported architectures: llama, qwen2, gemma2/);
  });

  it('inconsistent config', async () => {
    await expect(CausalLM.load(variant({ config: { ...baseConfig, num_key_value_heads: 3 } }))).rejects.toThrow(/num_key_value_heads.*must divide num_attention_heads/);
    await expect(CausalLM.load(variant({ config: { ...baseConfig, hidden_size: -64 } }))).rejects.toThrow(/"hidden_size" must be a positive integer, got -64/);
    await expect(CausalLM.load(variant({ config: { ...baseConfig, rope_scaling: { rope_type: 'llama3', factor: 8 } } }))).rejects.toThrow(/rope_scaling.*llama3/);
  });

  it('no weights file', async () => {
    await expect(CausalLM.load(variant({ noWeights: true }))).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('truncated file: data offsets past the end', async () => {
    const dir = variant({});
    const f = join(dir, 'model.safetensors');
    const size = readFileSync(f).length;
    truncateSync(f, size - 100);
    await expect(CausalLM.load(dir)).rejects.toThrow(/model\.safetensors: tensor "[^"]+": data_offsets .* run past the end of the data section \(\d+ bytes\): the file is truncated/);
  });

  it('header length beyond the file', async () => {
    const buf = Buffer.alloc(64);
    buf.writeBigUInt64LE(1000n);
    await expect(CausalLM.load(variant({ weights: buf }))).rejects.toThrow(/model\.safetensors: truncated: the header length is 1000 bytes but the file has only 56 after it/);
    await expect(CausalLM.load(variant({ weights: Buffer.alloc(3) }))).rejects.toThrow(/model\.safetensors: truncated: the file has 3 bytes, less than the 8-byte header length/);
  });

  it('overlapping tensors', async () => {
    const bytes = encodeSafetensors(model.tensors);
    const hlen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString('utf8')) as Record<string, { data_offsets: number[]; dtype: string; shape: number[] }>;
    const names = Object.keys(header);
    const [a, b] = [header[names[0]!]!, header[names[1]!]!];
    // make b start inside a, keeping b's length
    const len = b.data_offsets[1]! - b.data_offsets[0]!;
    b.data_offsets = [a.data_offsets[0]! + 4, a.data_offsets[0]! + 4 + len];
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const len8 = Buffer.alloc(8);
    len8.writeBigUInt64LE(BigInt(json.length));
    const out = Buffer.concat([len8, json, bytes.subarray(8 + hlen)]);
    await expect(CausalLM.load(variant({ weights: out }))).rejects.toThrow(/model\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] overlap tensor "[^"]+" \(which ends at \d+\)/);
  });

  it('unsupported dtype, wrong shape, missing tensor', async () => {
    const t = model.tensors.map((x) => ({ ...x }));
    const i8 = encodeSafetensors(t).toString('latin1').replace('"dtype":"F32"', '"dtype":"I32"');
    await expect(CausalLM.load(variant({ weights: Buffer.from(i8, 'latin1') }))).rejects.toThrow(/tensor "[^"]+": dtype I32 is not a float dtype \(F32, F16, BF16, F64\)/);
    const wrong = model.tensors.map((x) => (x.name === 'model.layers.1.mlp.up_proj.weight' ? { ...x, shape: [64, 128] } : x));
    await expect(CausalLM.load(variant({ weights: encodeSafetensors(wrong) }))).rejects.toThrow(
      /tensor "model\.layers\.1\.mlp\.up_proj\.weight" has shape \[64, 128\] but config\.json implies \[128, 64\]/,
    );
    const missing = model.tensors.filter((x) => x.name !== 'model.layers.0.self_attn.k_proj.weight');
    await expect(CausalLM.load(variant({ weights: encodeSafetensors(missing) }))).rejects.toThrow(/tensor "model\.layers\.0\.self_attn\.k_proj\.weight" is missing/);
  });

  it('byte count that does not match the shape', async () => {
    const bytes = encodeSafetensors(model.tensors).toString('latin1');
    const bad = bytes.replace(/"shape":\[256,64\]/, '"shape":[256,65]');
    await expect(CausalLM.load(variant({ weights: Buffer.from(bad, 'latin1') }))).rejects.toThrow(/data_offsets \[\d+, \d+\] hold 65536 bytes, but F32 \[256, 65\] needs 66560/);
  });

  it('a sharded index naming a missing shard or a path outside the folder', async () => {
    const dir = join(root, 'sharded');
    writeTinyModel(dir, 'llama', { sharded: 2 });
    rmSync(join(dir, 'model-00002-of-00002.safetensors'));
    await expect(CausalLM.load(dir)).rejects.toThrow(/shard model-00002-of-00002\.safetensors is listed but missing/);
    const dir2 = join(root, 'sharded2');
    writeTinyModel(dir2, 'llama', { sharded: 2 });
    const idx = JSON.parse(readFileSync(join(dir2, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    idx.weight_map['model.norm.weight'] = '../evil.safetensors';
    writeFileSync(join(dir2, 'model.safetensors.index.json'), JSON.stringify(idx));
    await expect(CausalLM.load(dir2)).rejects.toThrow(/"\.\.\/evil\.safetensors" is not a plain file name/);
  });

  it('dtype option is checked', async () => {
    await expect(CausalLM.load(good, { dtype: 'int8' as never })).rejects.toThrow(/dtype must be "float32" or "float64"/);
  });
});
