/**
 * The train config as CLI flags: one flag per field and alias of the schema (config-schema.ts), the
 * values they carry turned into a TrainConfig, and the field list for --help.
 */
import type { FlagSpecs, ParsedFlags } from '../cli/args.js';
import { resolveTrainConfig, TRAIN_CONFIG_FIELDS, type ResolveOptions, type TrainConfigField } from './config.js';
import { CONFIG_GROUPS, FIELDS, TRAIN_CONFIG_ALIASES, type ConfigAlias, type TrainConfig } from './config-schema.js';

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
    const alias: ConfigAlias = a;
    specs[name] = { type: alias.flagType ?? FIELDS[a.field].flagType, help: `= --${a.field} (${a.note})` };
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

/** Where our defaults differ from TRL's GRPOConfig / TrainingArguments, said once at the top of --help. */
export const TRL_DEFAULT_DIFFERENCES: readonly string[] = Object.freeze([
  'beta 0.04 (TRL 0.0: no reference model)',
  'warmup_steps 32 (TRL 0)',
  'logging_steps 1: a line every step (TRL 10)',
  'learning_rate 5e-7 (TRL 1e-6)',
  'group_size / num_generations 4 (TRL 8)',
]);

/** `--name=META, --alias` of a field, with the aliases that name it. */
function flagNames(f: TrainConfigField): string {
  const aliases = Object.entries(TRAIN_CONFIG_ALIASES)
    .filter(([, a]) => a.field === f.name)
    .map(([n]) => `--${n}`);
  const meta = f.flagType === 'boolean' ? '' : `=${metavarOf(f) ?? f.flagType.toUpperCase()}`;
  return [`--${f.name}${meta}`, ...aliases].join(', ');
}

/** `text` cut into lines of at most `width` characters at spaces; a longer word (a list) breaks after its commas. */
export function wrapText(text: string, width: number): string[] {
  // pieces, each with whether a space goes before it when it joins the line
  const pieces = text
    .split(/\s+/)
    .filter((w) => w !== '')
    .flatMap((w) => (w.length > width ? w.split(/(?<=,)/).map((p, i) => ({ p, space: i === 0 })) : [{ p: w, space: true }]));
  const lines: string[] = [];
  let line = '';
  for (const { p, space } of pieces) {
    const sep = line === '' || !space ? '' : ' ';
    if (line !== '' && line.length + sep.length + p.length > width) {
      lines.push(line);
      line = p;
    } else line += sep + p;
  }
  if (line !== '') lines.push(line);
  return lines.length > 0 ? lines : [''];
}

/**
 * `rrec-emotion train --help`: the fields in their groups (model, data, GRPO, sampling, LoRA,
 * schedule, checkpoints, output), each with its aliases and default, after the flags that are not
 * fields (`extra`: --config, --version, ...) and the defaults that differ from TRL's.
 */
export function formatTrainHelp(usage: string, description: string, extra: Readonly<Record<string, string>> = {}, opts: { columns?: number } = {}): string {
  const columns = Math.max(60, opts.columns ?? 80);
  const indent = 32;
  /** `  --names   help...` wrapped to the width, the help in a column of its own. */
  const entry = (names: string, help: string): string[] => {
    const text = wrapText(help, columns - indent - 1);
    const head = `  ${names}`;
    const first = head.length < indent ? [`${head.padEnd(indent)}${text[0]}`] : [head, `${' '.repeat(indent)}${text[0]}`];
    return [...first, ...text.slice(1).map((t) => `${' '.repeat(indent)}${t}`)];
  };
  const lines = [`Usage: ${usage}`, '', ...wrapText(description, columns - 1), '', "Defaults that differ from TRL's:", ...TRL_DEFAULT_DIFFERENCES.map((d) => `  ${d}`), ''];
  lines.push('General:');
  for (const [names, help] of Object.entries(extra)) lines.push(...entry(names, help));
  for (const [group, title] of Object.entries(CONFIG_GROUPS)) {
    const fields = TRAIN_CONFIG_FIELDS.filter((f) => f.group === group);
    if (fields.length === 0) continue;
    lines.push('', `${title[0]!.toUpperCase()}${title.slice(1)}:`);
    for (const f of fields) lines.push(...entry(flagNames(f), `${f.help} (default: ${f.defaultText})`));
  }
  lines.push('', ...wrapText('Booleans: --flag, --flag=false or --no-flag. Lists: --name=a,b,c. Every field can also be set in the --config file (same names).', columns - 1));
  return lines.join('\n');
}
