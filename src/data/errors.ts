/**
 * DatasetError: the one error type the datasets module throws for bad input or bad saved data.
 *
 * Every message names the file, and where it applies the 1-based line number and the offending
 * value, so that a user can open the file and fix it without rerunning under a debugger. The same
 * facts are kept as fields for callers (CLI, tests) that want them without parsing the message.
 */

export interface DatasetErrorDetails {
  /** Path of the file the problem is in (as given, not resolved). */
  file?: string;
  /** 1-based physical line in that file; for a multi-line CSV record, the line it starts on. */
  line?: number;
  /** The value that was wrong, as read. */
  value?: string;
  cause?: unknown;
}

export class DatasetError extends Error {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly value: string | undefined;

  /** `problem` is the sentence after the location, e.g. `label "x" is not an integer`. */
  constructor(problem: string, details: DatasetErrorDetails = {}) {
    super(formatMessage(problem, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DatasetError';
    this.file = details.file;
    this.line = details.line;
    this.value = details.value;
  }
}

function formatMessage(problem: string, d: DatasetErrorDetails): string {
  if (d.file === undefined) return problem;
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}`;
  return `${where}: ${problem}`;
}

/** Shortens a value for an error message; long crowd-sourced sentences would drown the message. */
export function quoteValue(value: string, max = 80): string {
  const v = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(v);
}
