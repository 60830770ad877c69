/** `rrec-emotion info`: prints what the native addon was built with (SIMD, CUDA, threads). */
import { loadNative } from '../native.js';
import { formatHelp, parseFlags, type FlagSpecs } from './args.js';

const flags: FlagSpecs = {
  json: { type: 'boolean', help: 'print JSON instead of text', default: false },
};

export async function runInfo(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(formatHelp('rrec-emotion info [--json]', 'Show the native build and CPU features.', flags));
    return 0;
  }
  const { flags: f } = parseFlags(argv, flags);
  const features = loadNative().features();
  if (f.json) console.log(JSON.stringify(features, null, 2));
  else for (const [k, v] of Object.entries(features)) console.log(`${k.padEnd(16)} ${String(v)}`);
  return 0;
}
