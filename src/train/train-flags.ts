/**
 * The train config as CLI flags: one flag per field and alias of the schema (config-schema.ts), the
 * values they carry turned into a TrainConfig, and the field list for --help.
 */
import type { FlagSpecs, ParsedFlags } from '../cli/args.js';
import { resolveTrainConfig, TRAIN_CONFIG_FIELDS, type ResolveOptions, type TrainConfigField } from './config.js';
import { FIELDS, TRAIN_CONFIG_ALIASES, type TrainConfig } from './config-schema.js';

/** --help placeholder: the allowed values as written (they are case-sensitive), else the type in capitals. */
function metavarOf(f: TrainConfigField): string | undefined {
  if (f.flagType !== 'string' && f.flagType !== 'list') return undefined; // args.ts prints INT / FLOAT
  return ['string', 'list', 'bool|path', 'float|size'].includes(f.type) ? f.type.toUpperCase() : f.type;
}

/** CLI flag specs (for src/cli/args.ts parseFlags / formatHelp), one per field and alias. */
export function trainFlagSpecs(): FlagSpecs {
  const specs: FlagSpecs = {};
  // No `default` on purpose: parseFlags would fill it in and every field would look explicitly
  // given; the defaults live in resolveTrainConfig and are shown in the help text instead.
  for (const f of TRAIN_CONFIG_FIELDS) {
    specs[f.name] = { type: f.flagType, help: `${f.help} (default: ${f.defaultText})`, metavar: metavarOf(f) };
  }
  for (const [name, a] of Object.entries(TRAIN_CONFIG_ALIASES)) {
    const target = FIELDS[a.field];
    specs[name] = { type: name === 'vllm_gpu_memory_utilization' ? 'float' : target.flagType, help: `= --${a.field} (${a.note})` };
  }
  return specs;
}

/** A list flag of numbers arrives as strings: numbers when every item is one, else as given (the error shows them). */
function numbersFromFlag(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  const n = v.map((s) => (typeof s === 'string' && s.trim() !== '' ? Number(s) : Number.NaN));
  return n.every((x) => Number.isFinite(x)) ? n : v;
}

/** Fields whose list flag carries numbers. */
const NUMBER_LIST_FIELDS = new Set<string>(['reward_weights']);

/** Flag values as the schema takes them: number lists as numbers. */
export function configValuesFromFlags(flags: ParsedFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flags)) out[k] = NUMBER_LIST_FIELDS.has(k) ? numbersFromFlag(v) : v;
  return out;
}

/**
 * The configuration from parsed CLI flags (parseFlags(argv, trainFlagSpecs()).flags). Flags that
 * are not config fields (e.g. `help`) must be removed by the caller; they are reported as unknown.
 */
export function configFromFlags(flags: ParsedFlags, options: ResolveOptions = {}): TrainConfig {
  return resolveTrainConfig(configValuesFromFlags(flags), { source: 'command line', ...options });
}

/** `field  type  default  help` lines for documentation (README tables, --help of library users). */
export function formatTrainConfigFields(): string {
  const w = Math.max(...TRAIN_CONFIG_FIELDS.map((f) => f.name.length));
  return TRAIN_CONFIG_FIELDS.map((f) => `${f.name.padEnd(w)}  ${f.help} [${f.type}; default: ${f.defaultText}]`).join('\n');
}
