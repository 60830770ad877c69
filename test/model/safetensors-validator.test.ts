// One safetensors header validator (native/core/safetensors_header.cc) for both readers: each
// corrupt file below is refused with the same message, written here by hand, by the TypeScript
// reader (SafetensorsFile, used for adapters, checkpoints and export) and by the native weight
// loader (CausalLM.load, memory-mapped).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, SafetensorsFile } from '../../src/model/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-stvalid-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const good = join(root, 'good');
writeTinyModel(good, 'llama');

/** 8-byte length + the header text (bytes as given, padded with spaces to a multiple of 8) + data. */
function file(header: string | Buffer, dataBytes: number, opts: { length?: bigint } = {}): Buffer {
  let json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.length ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataBytes, 0)]);
}

let n = 0;
/** A model folder whose model.safetensors is `bytes`; returns its path. */
function modelWith(bytes: Buffer): string {
  const dir = join(root, `m${n++}`);
  mkdirSync(dir);
  copyFileSync(join(good, 'config.json'), join(dir, 'config.json'));
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  return join(dir, 'model.safetensors');
}

const f32 = (b: number, e: number, shape = [(e - b) / 4]) => ({ dtype: 'F32', shape, data_offsets: [b, e] });

const cases: { what: string; bytes: Buffer; problem: string }[] = [
  { what: 'a gap between tensors', bytes: file(JSON.stringify({ a: f32(0, 8), b: f32(12, 20) }), 20), problem: 'tensor "b": data_offsets [12, 20] leave a gap: the previous tensor ends at 8' },
  { what: 'trailing bytes', bytes: file(JSON.stringify({ a: f32(0, 8) }), 12), problem: 'the data section has 12 bytes but the tensors cover 8: trailing bytes after the last tensor' },
  { what: 'overlapping tensors', bytes: file(JSON.stringify({ a: f32(0, 8), b: f32(4, 12) }), 12), problem: 'tensor "b": data_offsets [4, 12] overlap tensor "a" (which ends at 8)' },
  { what: 'a truncated data section', bytes: file(JSON.stringify({ a: f32(0, 16) }), 8), problem: 'tensor "a": data_offsets [0, 16] run past the end of the data section (8 bytes): the file is truncated' },
  { what: 'a header that is not UTF-8', bytes: file(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 0), problem: 'header is not valid UTF-8' },
  { what: 'a header that is not an object', bytes: file('[1, 2]', 0), problem: 'header is not a JSON object' },
  { what: 'non-string metadata', bytes: file(JSON.stringify({ __metadata__: { format: 1 } }), 0), problem: '__metadata__.format is 1, not a string' },
  { what: 'a negative dimension', bytes: file(JSON.stringify({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), 0), problem: 'tensor "a": shape [-1] is not a list of non-negative integers' },
  { what: 'reversed offsets', bytes: file(JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }), 8), problem: 'tensor "a": data_offsets [8,0] is not [begin, end] with 0 <= begin <= end' },
  { what: 'an unknown dtype', bytes: file(JSON.stringify({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 2] } }), 2), problem: 'tensor "a": unsupported dtype Q4' },
  { what: 'a missing dtype', bytes: file(JSON.stringify({ a: { shape: [2], data_offsets: [0, 8] } }), 8), problem: 'tensor "a": dtype is undefined, not a string' },
  { what: 'offsets that disagree with the shape', bytes: file(JSON.stringify({ a: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 8] } }), 8), problem: 'tensor "a": data_offsets [0, 8] hold 8 bytes, but BF16 [2, 3] needs 12' },
  { what: 'a header length above the limit', bytes: file('{}', 0, { length: 1n << 40n }), problem: 'header length 1099511627776 exceeds the 100000000-byte limit (corrupt file?)' },
  { what: 'a header length past the end', bytes: file('{}', 0, { length: 64n }), problem: 'truncated: the header length is 64 bytes but the file has only 8 after it' },
  { what: 'a file shorter than the length field', bytes: Buffer.from([1, 2, 3]), problem: 'truncated: the file has 3 bytes, less than the 8-byte header length' },
];

describe('one safetensors validator for the TypeScript reader and the native loader', () => {
  for (const c of cases) {
    it(c.what, async () => {
      const f = modelWith(c.bytes);
      const message = `${f}: ${c.problem}`;
      const ts = await SafetensorsFile.open(f).then(
        async (st) => (await st.close(), 'opened'),
        (e: Error) => e,
      );
      expect(ts).toBeInstanceOf(Error);
      expect((ts as Error).message).toBe(message);
      await expect(CausalLM.load(join(f, '..'))).rejects.toThrow(message);
    });
  }

  it('a non-float tensor: the header is valid (TypeScript opens it, refuses to decode it), the weight loader refuses it, both in the same words', async () => {
    const f = modelWith(file(JSON.stringify({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }), 16));
    const st = await SafetensorsFile.open(f);
    expect(st.info('ids')).toEqual({ name: 'ids', dtype: 'I64', shape: [2], dataOffsets: [0, 16] });
    const problem = 'dtype I64 is not a float dtype (F32, F16, BF16, F64)';
    await expect(st.read('ids')).rejects.toThrow(`${f}: tensor "ids": ${problem}`);
    await st.close();
    await expect(CausalLM.load(join(f, '..'))).rejects.toThrow(`${f}: tensor "ids": ${problem}`);
  });

  it('a valid header reads the same through both: metadata, header order, dtypes, shapes, offsets', async () => {
    const f = modelWith(file(JSON.stringify({ __metadata__: { format: 'pt' }, z: f32(8, 16), a: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] } }), 16));
    const st = await SafetensorsFile.open(f);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect([...st.tensors.values()]).toEqual([
      { name: 'z', dtype: 'F32', shape: [2], dataOffsets: [8, 16] },
      { name: 'a', dtype: 'BF16', shape: [2, 2], dataOffsets: [0, 8] },
    ]);
    await st.close();
  });
});
