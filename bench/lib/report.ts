/**
 * The JSON file `npm run bench -- --json FILE` writes, and a checker of its shape (used by
 * run-all.ts after writing, and by test/bench/). Pure: no I/O.
 *
 *   { "machine": { cpu_model, cores, threads, features, ram_bytes, os, ... },
 *     "versions": { node, "rrec-emotion", torch, "node-llama-cpp", openblas, onednn, ... },
 *     "figures": [ Figure, ... ] }
 */
import type { Figure } from './figures.js';

export interface Report {
  machine: Record<string, unknown>;
  /** Version strings; null where a component is absent or its version unknown. */
  versions: Record<string, string | null>;
  figures: Figure[];
}

/** Figures every full run must have (issue 6). */
export const REQUIRED_FIGURES: readonly string[] = Object.freeze([
  'matmul.bf16.m512',
  'matmul.bf16.m16',
  'train.lora_layer',
  'train.full_layer',
  'sample.prefill',
  'sample.decode.b1',
  'sample.decode.b16',
  'sample.group4x4',
  'grpo.step',
  'recpo.step',
  'memory.bandwidth',
]);

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Problems with one figure (empty when well-formed). */
export function figureProblems(f: unknown): string[] {
  if (!isObject(f)) return ['figure is not an object'];
  const name = typeof f.name === 'string' && f.name !== '' ? f.name : null;
  const at = name ?? '(unnamed figure)';
  const p: string[] = [];
  if (name === null) p.push('figure without a name');
  if (typeof f.unit !== 'string' || f.unit === '') p.push(`${at}: unit must be a non-empty string`);
  if (typeof f.higher_is_better !== 'boolean') p.push(`${at}: higher_is_better must be a boolean`);
  if (typeof f.note !== 'string') p.push(`${at}: note must be a string`);
  const o = f.ours;
  if (!isObject(o) || !isNum(o.min) || !isNum(o.median) || !isNum(o.max)) p.push(`${at}: ours must be { min, median, max } numbers`);
  else if (!(o.min <= o.median && o.median <= o.max)) p.push(`${at}: ours needs min <= median <= max`);
  if (f.peer === null) {
    if (f.ratio !== null) p.push(`${at}: ratio must be null without a peer`);
    if (typeof f.note === 'string' && f.note.trim() === '') p.push(`${at}: a figure without a peer needs a note`);
  } else if (!isObject(f.peer) || typeof f.peer.name !== 'string' || !isNum(f.peer.median)) {
    p.push(`${at}: peer must be null or { name, median }`);
  } else if (f.ratio !== null && !isNum(f.ratio)) {
    p.push(`${at}: ratio must be a number or null`);
  } else if (isNum(f.ratio) && isObject(o) && isNum(o.median) && typeof f.higher_is_better === 'boolean') {
    const want = f.higher_is_better ? o.median / f.peer.median : f.peer.median / o.median;
    if (Math.abs(f.ratio - want) > 1e-9 * Math.max(1, Math.abs(want))) p.push(`${at}: ratio ${f.ratio} is not ${want} (oriented so > 1 means ours is better)`);
  }
  if ('roofline_fraction' in f && f.roofline_fraction !== null && !isNum(f.roofline_fraction)) p.push(`${at}: roofline_fraction must be a number or null`);
  if ('peak_fraction' in f && f.peak_fraction !== null && !isNum(f.peak_fraction)) p.push(`${at}: peak_fraction must be a number or null`);
  return p;
}

/** Problems with a whole report: shape, every figure, duplicate names, and missing `required` names. */
export function reportProblems(r: unknown, required: readonly string[] = REQUIRED_FIGURES): string[] {
  if (!isObject(r)) return ['report is not an object'];
  const p: string[] = [];
  if (!isObject(r.machine)) p.push('machine must be an object');
  if (!isObject(r.versions)) p.push('versions must be an object');
  else for (const [k, v] of Object.entries(r.versions)) if (v !== null && typeof v !== 'string') p.push(`versions.${k} must be a string or null`);
  if (!Array.isArray(r.figures)) return [...p, 'figures must be an array'];
  const seen = new Set<string>();
  for (const f of r.figures as unknown[]) {
    p.push(...figureProblems(f));
    if (isObject(f) && typeof f.name === 'string') {
      if (seen.has(f.name)) p.push(`${f.name}: appears twice`);
      seen.add(f.name);
    }
  }
  for (const name of required) if (!seen.has(name)) p.push(`${name}: missing`);
  const b1 = (r.figures as unknown[]).find((f) => isObject(f) && f.name === 'sample.decode.b1');
  if (isObject(b1) && !('roofline_fraction' in b1)) p.push('sample.decode.b1: roofline_fraction missing');
  return p;
}
