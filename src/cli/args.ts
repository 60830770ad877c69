/**
 * Command-line flag parsing shared by every `rrec-emotion` subcommand.
 *
 * Accepts the reference project's style (`--name=value`, `--name value`, bare `--flag` for
 * booleans, `--no-flag` to turn one off). Every subcommand declares its flags; an unknown flag or a
 * value of the wrong type is an error that names the flag and the value.
 */

import { closeNames } from '../util/close-names.js';

export type FlagType = 'string' | 'int' | 'float' | 'boolean' | 'list';

export interface FlagSpec {
  type: FlagType;
  /** One line for --help. */
  help: string;
  /** Default value shown in --help and used when the flag is absent. */
  default?: string | number | boolean | string[];
  /** Placeholder for the value in --help, e.g. DIR. */
  metavar?: string;
  /** A 'string' flag that may be given several times: the values are collected, in order, into a string[]. */
  repeatable?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValue = string | number | boolean | string[];
export type ParsedFlags = Record<string, FlagValue | undefined>;

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

function convert(name: string, spec: FlagSpec, raw: string): FlagValue {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^[+-]?\d+$/.test(raw.trim())) throw new CliUsageError(`--${name}: expected an integer, got "${raw}"`);
      return Number.parseInt(raw, 10);
    }
    case 'float': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new CliUsageError(`--${name}: expected a number, got "${raw}"`);
      return v;
    }
    case 'boolean': {
      const t = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      throw new CliUsageError(`--${name}: expected true or false, got "${raw}"`);
    }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  }
}

/** Parses argv (without the subcommand) against specs. Returns flags and positional arguments. */
export function parseFlags(argv: readonly string[], specs: FlagSpecs): { flags: ParsedFlags; positional: string[] } {
  const flags: ParsedFlags = {};
  const positional: string[] = [];
  const collected = new Map<string, string[]>();
  for (const [name, spec] of Object.entries(specs)) flags[name] = spec.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replace(/-/g, '_');
    let raw: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let spec = specs[name];
    if (!spec && name.startsWith('no_') && specs[name.slice(3)]?.type === 'boolean' && raw === undefined) {
      name = name.slice(3);
      spec = specs[name];
      raw = 'false';
    }
    if (!spec) {
      const close = closeNames(name, [...Object.keys(specs), 'help']);
      throw new CliUsageError(`unknown flag "${eq >= 0 ? arg.slice(0, eq) : arg}"${close.length > 0 ? `; did you mean ${close.map((k) => `--${k}`).join(', ')}?` : ''}`);
    }
    if (raw === undefined) {
      if (spec.type === 'boolean') {
        const next = argv[i + 1];
        if (next !== undefined && /^(true|false)$/i.test(next)) {
          raw = next;
          i++;
        } else raw = 'true';
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) throw new CliUsageError(`--${name}: missing value`);
        raw = next;
        i++;
      }
    }
    const value = convert(name, spec, raw);
    if (spec.repeatable) {
      // the first occurrence replaces the default, later ones append
      const prev = collected.get(name) ?? [];
      collected.set(name, [...prev, String(value)]);
      flags[name] = collected.get(name);
    } else flags[name] = value;
  }
  return { flags, positional };
}

/** Renders --help text for a subcommand. */
export function formatHelp(usage: string, description: string, specs: FlagSpecs): string {
  const lines = [`Usage: ${usage}`, '', description, '', 'Flags:'];
  for (const [name, spec] of Object.entries(specs)) {
    const meta = spec.type === 'boolean' ? '' : `=${spec.metavar ?? spec.type.toUpperCase()}`;
    const def = spec.default === undefined ? '' : ` (default: ${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)})`;
    lines.push(`  --${name}${meta}`.padEnd(36) + ` ${spec.help}${spec.repeatable ? ' (repeatable)' : ''}${def}`);
  }
  lines.push(`  --help`.padEnd(36) + ' show this help');
  return lines.join('\n');
}
