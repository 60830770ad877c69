/** `rrec-emotion info`: prints what the native addon was built with (SIMD, CUDA, threads). */
import { loadNative } from '../native.js';
import { formatHelp, parseFlags, type FlagSpecs } from './args.js';

const flags: FlagSpecs = {
  json: { type: 'boolean', help: 'print JSON instead of text', default: false },
};

export async function runInfo(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(formatHelp('rrec-emotion info [--json]', 'Show the native build, the CPU features and the backends (devices) found.', flags));
    return 0;
  }
  const { flags: f } = parseFlags(argv, flags);
  const features = loadNative().features();
  if (f.json) console.log(JSON.stringify(features, null, 2));
  else {
    const { backends, backendSearchPath, ...rest } = features;
    for (const [k, v] of Object.entries(rest)) console.log(`${k.padEnd(16)} ${String(v)}`);
    for (const b of backends)
      console.log(`${`backend ${b.name}`.padEnd(16)} ${b.available ? `available, ${b.devices} device${b.devices === 1 ? '' : 's'}` : `unavailable: ${b.reason}`}${b.library ? ` (${b.library})` : ''}`);
    console.log(`${'backend path'.padEnd(16)} ${backendSearchPath.join(':')}`);
  }
  return 0;
}
