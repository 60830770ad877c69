/** The package's version, from its package.json (`rrec-emotion --version`). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../train/dataset-source.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name?: string; version?: string };
  return `${pkg.name ?? 'rrec-emotion'} ${pkg.version ?? '(unknown version)'}`;
}
