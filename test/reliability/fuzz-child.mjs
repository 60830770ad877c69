// Fuzz worker (run by fuzz.test.ts): cases [from, to) of one loader family, each a deterministic
// mutation of a valid input by its index. Prints "start <i> <what>" before and "end <i> <outcome>"
// after each case, so that the parent can name the case that crashed or hung this process.
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [srcDir, kind, seedText, fromText, toText, work, goodDir] = process.argv.slice(2);
const seed = Number(seedText);
const from = Number(fromText);
const to = Number(toText);
const { CausalLM, SafetensorsFile } = await import(`${srcDir}/src/model/index.js`);
const { loadTokenizer } = await import(`${srcDir}/src/tokenizer/index.js`);

function rng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WEIRD = [0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, 0.5, 'x', '', null, true, [], {}, [1, 2, 3], [-4], [2 ** 40, 2 ** 40], 'F32', 'BF16', 'I64', 'F64', 'Q4', '\u0000'];
const pick = (r, xs) => xs[Math.floor(r() * xs.length)];

/** A mutated value of a JSON tree: one random node replaced, deleted or duplicated. */
function mutateJson(r, v, depth = 0) {
  if (v === null || typeof v !== 'object' || depth > 6 || r() < 0.15) return pick(r, WEIRD);
  const keys = Object.keys(v);
  if (keys.length === 0) return pick(r, WEIRD);
  const k = pick(r, keys);
  const out = Array.isArray(v) ? [...v] : { ...v };
  const op = r();
  if (op < 0.15) {
    if (Array.isArray(out)) out.splice(Number(k), 1);
    else delete out[k];
  } else if (op < 0.2 && !Array.isArray(out)) out[`${k}_copy`] = out[k];
  else out[k] = mutateJson(r, v[k], depth + 1);
  return out;
}

const goodWeights = kind === 'safetensors' ? readFileSync(join(goodDir, 'model.safetensors')) : null;
const goodConfig = kind === 'safetensors' ? readFileSync(join(goodDir, 'config.json'), 'utf8') : null;
const goodTokenizer = kind === 'tokenizer' ? JSON.parse(readFileSync(join(goodDir, 'tokenizer.json'), 'utf8')) : null;
const goodTokConfig = kind === 'tokenizer' ? JSON.parse(readFileSync(join(goodDir, 'tokenizer_config.json'), 'utf8')) : null;

function safetensorsCase(r) {
  const buf = Buffer.from(goodWeights);
  const hlen = Number(buf.readBigUInt64LE(0));
  const op = Math.floor(r() * 6);
  let config = goodConfig;
  if (op === 0) {
    const k = 1 + Math.floor(r() * 8);
    for (let j = 0; j < k; j++) buf[Math.floor(r() * (8 + hlen))] = Math.floor(r() * 256);
    return { what: `flip ${k} header byte(s)`, bytes: buf, config };
  }
  if (op === 1) {
    const v = pick(r, [0n, 1n, 7n, BigInt(hlen - 1), BigInt(hlen + 1), BigInt(buf.length), BigInt(buf.length - 8), 2n ** 63n, 2n ** 64n - 1n, BigInt(Math.floor(r() * 2 ** 32))]);
    buf.writeBigUInt64LE(v, 0);
    return { what: `header length ${v}`, bytes: buf, config };
  }
  if (op === 2) {
    const at = Math.floor(r() * buf.length);
    return { what: `truncated at ${at}`, bytes: buf.subarray(0, at), config };
  }
  if (op === 3 || op === 4) {
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
    const m = mutateJson(r, header);
    const text = Buffer.from(JSON.stringify(m) ?? 'null');
    const pad = (8 - (text.length % 8)) % 8;
    const h = Buffer.concat([text, Buffer.alloc(pad, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    return { what: 'header JSON mutated', bytes: Buffer.concat([len, h, buf.subarray(8 + hlen)]), config };
  }
  // config.json mutated, weights intact
  config = JSON.stringify(mutateJson(r, JSON.parse(goodConfig)));
  return { what: 'config.json mutated', bytes: buf, config };
}

function tokenizerCase(r) {
  const op = Math.floor(r() * 4);
  let tok = JSON.stringify(goodTokenizer);
  let cfg = JSON.stringify(goodTokConfig);
  let what;
  if (op === 0) {
    tok = JSON.stringify(mutateJson(r, goodTokenizer));
    what = 'tokenizer.json mutated';
  } else if (op === 1) {
    cfg = JSON.stringify(mutateJson(r, goodTokConfig));
    what = 'tokenizer_config.json mutated';
  } else if (op === 2) {
    const b = Buffer.from(tok);
    const k = 1 + Math.floor(r() * 6);
    for (let j = 0; j < k; j++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    tok = b.toString('latin1');
    what = `flip ${k} byte(s) of tokenizer.json`;
  } else {
    tok = tok.slice(0, Math.floor(r() * tok.length));
    what = 'tokenizer.json truncated';
  }
  return { what, tok, cfg };
}

const dir = join(work, `case-${process.pid}`);
mkdirSync(dir, { recursive: true });
const print = (s) => process.stdout.write(`${s}\n`);
for (let i = from; i < to; i++) {
  const r = rng(seed * 1_000_003 + i);
  let outcome;
  if (kind === 'safetensors') {
    const c = safetensorsCase(r);
    print(`start ${i} ${c.what}`);
    writeFileSync(join(dir, 'config.json'), c.config);
    writeFileSync(join(dir, 'model.safetensors'), c.bytes);
    try {
      const lm = await CausalLM.load(dir);
      lm.free();
      outcome = 'loaded';
    } catch (e) {
      outcome = e instanceof Error && e.message.length > 0 ? 'rejected' : `bad-error ${String(e)}`;
    }
    try {
      const st = await SafetensorsFile.open(join(dir, 'model.safetensors'));
      try {
        for (const name of st.tensors.keys()) await st.read(name);
      } finally {
        await st.close();
      }
      outcome += '/read';
    } catch (e) {
      outcome += e instanceof Error && e.message.length > 0 ? '/rejected' : `/bad-error ${String(e)}`;
      // the two readers disagree: worth a look (the lead is unifying them)
      if (outcome === 'loaded/rejected') print(`note ${i} native loads, the JS reader refuses: ${String(e?.message).slice(0, 200).replace(/\n/g, ' ')}`);
    }
  } else {
    const c = tokenizerCase(r);
    print(`start ${i} ${c.what}`);
    writeFileSync(join(dir, 'tokenizer.json'), c.tok);
    writeFileSync(join(dir, 'tokenizer_config.json'), c.cfg);
    try {
      const t = await loadTokenizer(dir);
      const ids = t.encode('Hello world, <|im_start|> ü 🙂 abc');
      t.decode(ids);
      if (t.chatTemplate) t.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
      outcome = 'loaded';
    } catch (e) {
      outcome = e instanceof Error && e.message.length > 0 ? 'rejected' : `bad-error ${String(e)}`;
    }
  }
  print(`end ${i} ${outcome}`);
}
rmSync(dir, { recursive: true, force: true });
