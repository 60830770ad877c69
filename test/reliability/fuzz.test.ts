// Fault family: corrupt model files. The safetensors loaders (the native one behind CausalLM.load
// and SafetensorsFile) and the tokenizer loader get deterministic mutations of valid inputs (bytes
// flipped, lengths changed, truncations, JSON trees with nodes replaced or removed) in child
// processes (fuzz-child.mjs), so that a crash or a hang is counted and named, not fatal to the
// suite. Every case must load or be rejected with an Error: zero crashes, zero hangs.
// A fixed seed and ~30 s in npm test; RREC_FUZZ_SECONDS=600 (and RREC_FUZZ_SEED) for a longer run.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyTokenizerJson } from '../helpers/tokenizer-folders.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { childSources } from './child-build.js';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.RREC_FUZZ_SECONDS ?? 30);
const SEED = Number(process.env.RREC_FUZZ_SEED ?? 17);
/** A case may take this long before the child counts as hung (cases take milliseconds). */
const HANG_MS = 15_000;
const BATCH = 400;

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-fuzz-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'model');
writeTinyModel(modelDir, 'llama', { overrides: { num_hidden_layers: 1 } as never });
const tokDir = join(root, 'tokenizer');
mkdirSync(tokDir);
writeFileSync(join(tokDir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
writeFileSync(
  join(tokDir, 'tokenizer_config.json'),
  JSON.stringify({
    eos_token: '<|end|>',
    bos_token: '<s>',
    pad_token: '</s>',
    chat_template: "{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<s>assistant {% endif %}",
  }),
);

interface Tally {
  cases: number;
  outcomes: Record<string, number>;
  crashes: string[];
  hangs: string[];
  notes: string[];
}

/** Runs cases from 0 on until `ms` have passed, a child per BATCH cases, a new child after a crash. */
async function fuzz(kind: 'safetensors' | 'tokenizer', good: string, ms: number): Promise<Tally> {
  const tally: Tally = { cases: 0, outcomes: {}, crashes: [], hangs: [], notes: [] };
  const src = childSources();
  const t0 = Date.now();
  let next = 0;
  while (Date.now() - t0 < ms) {
    const from = next;
    const r = await new Promise<{ last: string | null; lastIndex: number; ended: number; code: number | null; signal: string | null; hung: boolean; stderr: string }>((res) => {
      const child = spawn(process.execPath, [join(here, 'fuzz-child.mjs'), src, kind, String(SEED), String(from), String(from + BATCH), root, good], { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      let last: string | null = null;
      let lastIndex = from - 1;
      let ended = from;
      let hung = false;
      let stderr = '';
      let timer = setTimeout(() => ((hung = true), child.kill('SIGKILL')), HANG_MS * 4); // start-up
      const stop = () => Date.now() - t0 > ms && child.kill('SIGTERM');
      child.stdout!.on('data', (d) => {
        buf += String(d);
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const [tag, idx, ...rest] = line.split(' ');
          if (tag === 'start') {
            last = line;
            lastIndex = Number(idx);
            clearTimeout(timer);
            timer = setTimeout(() => ((hung = true), child.kill('SIGKILL')), HANG_MS);
          } else if (tag === 'note') {
            tally.notes.push(line.slice(5));
          } else if (tag === 'end') {
            ended = Number(idx) + 1;
            const o = rest.join(' ');
            tally.outcomes[o] = (tally.outcomes[o] ?? 0) + 1;
            tally.cases++;
            last = null;
            stop();
          }
        }
      });
      child.stderr!.on('data', (d) => (stderr += String(d)));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        res({ last, lastIndex, ended, code, signal, hung, stderr });
      });
    });
    if (r.hung) tally.hangs.push(r.last ?? `child start-up (cases from ${from})`);
    else if (r.signal !== 'SIGTERM' && (r.code !== 0 || r.signal !== null)) tally.crashes.push(`${r.last ?? `cases from ${from}`}: exit ${r.code ?? r.signal}: ${r.stderr.slice(-500)}`);
    next = r.last !== null ? r.lastIndex + 1 : Math.max(r.ended, from + 1); // skip past a crashing / hanging case
  }
  return tally;
}

describe(`loader fuzzing (seed ${SEED}, ${SECONDS} s)`, () => {
  it('safetensors (native load and the JS reader) and tokenizer: zero crashes, zero hangs', async () => {
    childSources();
    const st = await fuzz('safetensors', modelDir, (SECONDS * 1000) / 2);
    const tok = await fuzz('tokenizer', tokDir, (SECONDS * 1000) / 2);
    for (const [name, t] of [['safetensors', st], ['tokenizer', tok]] as const) {
      console.log(`fuzz ${name}: ${t.cases} cases, ${JSON.stringify(t.outcomes)}, crashes ${t.crashes.length}, hangs ${t.hangs.length}`);
      const kinds = new Map<string, string>();
      for (const n of t.notes) kinds.set(n.replace(/^\d+ /, '').replace(/\d+/g, 'N').slice(0, 120), n);
      for (const n of [...kinds.values()].slice(0, 6)) console.log(`  case ${n}`);
    }
    expect(st.crashes).toEqual([]);
    expect(st.hangs).toEqual([]);
    expect(tok.crashes).toEqual([]);
    expect(tok.hangs).toEqual([]);
    // every outcome is a load or an Error with a message (no non-Error throws)
    for (const o of [...Object.keys(st.outcomes), ...Object.keys(tok.outcomes)]) expect(o).not.toMatch(/bad-error/);
    expect(st.cases).toBeGreaterThan(100);
    expect(tok.cases).toBeGreaterThan(100);
    expect(Object.keys(st.outcomes).some((o) => o.startsWith('rejected'))).toBe(true);
  }, 120_000 + SECONDS * 2000);
});
