/**
 * `rrec-emotion train --config run.yaml|run.json`: a file of train config fields (the names of the
 * flags, TRL's names included), merged under the command line's flags. The file's `$schema` key
 * (an editor's link to train-config.schema.json) is ignored.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { FIELDS, TRAIN_CONFIG_ALIASES } from '../train/config-schema.js';
import { CliUsageError } from './args.js';

/** The fields of a config file (.json, .yaml or .yml), as written. */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliUsageError(`--config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new CliUsageError(`--config ${file}: not valid JSON: ${(e as Error).message}`);
    }
  } else if (ext === '.yaml' || ext === '.yml') {
    try {
      value = parseYaml(text);
    } catch (e) {
      const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new CliUsageError(`--config ${file}: not valid YAML${where}: ${(e as Error).message.split('\n')[0]}`);
    }
  } else {
    throw new CliUsageError(`--config ${file}: expected a .json, .yaml or .yml file, got "${ext || '(no extension)'}"`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new CliUsageError(`--config ${file}: expected a mapping of field names to values, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`);
  const { $schema: _, ...fields } = value as Record<string, unknown>;
  return fields;
}

/** The field a name sets: itself, or the field an alias names; undefined for an unknown name. */
function targetOf(name: string): string | undefined {
  if (name in FIELDS) return name;
  return (TRAIN_CONFIG_ALIASES as Record<string, { field: string }>)[name]?.field;
}

/**
 * The file's fields with the flags on top: a flag replaces the file's value of the same field,
 * whichever name (field or alias) either used.
 */
export function mergeConfig(file: Record<string, unknown>, flags: Record<string, unknown>): Record<string, unknown> {
  const given = Object.entries(flags).filter(([, v]) => v !== undefined);
  const overridden = new Set(given.map(([k]) => targetOf(k) ?? k));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file)) if (!overridden.has(targetOf(k) ?? k)) out[k] = v;
  for (const [k, v] of given) out[k] = v;
  return out;
}
