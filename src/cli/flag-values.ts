/**
 * Range and choice checks of parsed flag values (args.ts checks only the type). Each error is a
 * CliUsageError naming the flag and the value, in args.ts's wording.
 */
import { CliUsageError, type ParsedFlags } from './args.js';

/** The flag's integer value (or `fallback` when absent), refused below `min`. */
export function intAtLeast(flags: ParsedFlags, name: string, min: number, fallback: number): number;
export function intAtLeast(flags: ParsedFlags, name: string, min: number, fallback?: number): number | undefined;
export function intAtLeast(flags: ParsedFlags, name: string, min: number, fallback?: number): number | undefined {
  const v = flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new CliUsageError(`--${name}: expected an integer >= ${min}, got "${String(v)}"`);
  return v;
}

/** The flag's number (or `fallback` when absent), refused below `min`. */
export function numberAtLeast(flags: ParsedFlags, name: string, min: number, fallback: number): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new CliUsageError(`--${name}: expected a number >= ${min}, got "${String(v)}"`);
  return v;
}

/** The flag's string, which must be one of `choices` (or `fallback` when absent). */
export function oneOf<T extends string>(flags: ParsedFlags, name: string, choices: readonly T[], fallback: T): T {
  const v = flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw new CliUsageError(`--${name}: expected one of ${choices.join(', ')}, got "${String(v)}"`);
  return v as T;
}

/** The flag's string, refused when empty (e.g. `--output=`); undefined when absent. */
export function nonEmpty(flags: ParsedFlags, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new CliUsageError(`--${name}: expected a non-empty value, got "${String(v)}"`);
  return v;
}

/** Refuses positional arguments (every input is a --flag). */
export function noPositional(positional: readonly string[]): void {
  if (positional.length > 0) throw new CliUsageError(`unexpected argument "${positional[0]}"; flags take the form --name=value`);
}
