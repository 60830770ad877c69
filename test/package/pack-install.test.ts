// The package as a user gets it: the packed tarball holds the linux-x64 prebuilt binary, the
// compiled TypeScript without source maps, the JSON Schema and the sources for the fallback build;
// it installs into an empty folder with no compiler on PATH (python3, make, g++ absent: a source
// build would fail, so the install must take the prebuilt binary), then `require` and `import`
// both load it, a consumer compiles against its .d.ts with skipLibCheck: false, and the installed
// command runs a tiny training job on the shipped sample data.
//
// The tarball: $RREC_PACKED_TARBALL (.ci/run sets it after a real `npm pack`, whose prepack builds
// prebuilds/), else `npm pack --ignore-scripts` of this checkout when prebuilds/linux-x64 holds a
// binary (`npm run build:prebuilt` makes it); the test is skipped, saying so, when neither exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };
const prebuiltDir = join(repo, 'prebuilds', `${process.platform}-${process.arch}`);
const havePrebuilt = existsSync(prebuiltDir) && readdirSync(prebuiltDir).some((f) => f.endsWith('.node'));
const given = process.env.RREC_PACKED_TARBALL;
const ready = process.platform === 'linux' && process.arch === 'x64' && ((given !== undefined && existsSync(given)) || (havePrebuilt && existsSync(join(repo, 'dist', 'index.js'))));
if (!ready) console.warn('test/package/pack-install.test.ts skipped: no $RREC_PACKED_TARBALL and no prebuilds/linux-x64 binary (run `npm pack` or `npm run build:prebuilt` first; .ci/run does)');

const tmp = mkdtempSync(join(tmpdir(), 'rrec-pack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder holding only `sh`, `node` and `npm` (no python3, make, cc, g++), for PATH. */
function nodeOnlyPath(): string {
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs install scripts with sh
  symlinkSync(process.execPath, join(bin, 'node'));
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
  return bin;
}

describe.skipIf(!ready)('the packed tarball', () => {
  let tarball = '';
  let consumer = '';
  let env: NodeJS.ProcessEnv = {};
  const timings: Record<string, number> = {};
  const timed = <T>(name: string, fn: () => T): T => {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      timings[name] = Math.round((performance.now() - t0) / 100) / 10;
    }
  };
  const run = (cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}) => {
    const r = spawnSync(cmd, args, { cwd: opts.cwd ?? consumer, env, encoding: 'utf8', input: opts.input, timeout: 600_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return { stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(() => {
    if (given !== undefined) tarball = given;
    else {
      const out = timed('pack', () => execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp, '--json'], { cwd: repo, encoding: 'utf8' }));
      tarball = join(tmp, (JSON.parse(out) as { filename: string }[])[0]!.filename);
    }
    consumer = join(tmp, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
    const bin = nodeOnlyPath();
    env = { HOME: process.env.HOME, PATH: bin, npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? tmp, '.npm'), RREC_NUM_THREADS: '2' };
    for (const tool of ['python3', 'make', 'g++', 'cc', 'c++']) expect(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status, `${tool} must not be on PATH`).not.toBe(0);
    // from npm's cache where it can (npm ci filled it); @types/node for the strict consumer
    timed('install', () => run(join(bin, 'npm'), ['install', tarball, '@types/node@^20', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']));
  }, 900_000);

  afterAll(() => console.log(`pack-install timings (s): ${JSON.stringify(timings)}`));

  it('holds the prebuilt binary, dist without source maps, the JSON Schema and the fallback sources; nothing was compiled', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    expect(files.filter((f) => /^package\/prebuilds\/linux-x64\/[^/]+\.node$/.test(f))).toHaveLength(1);
    for (const f of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli/main.js', 'package/dist/train-config.schema.json', 'package/binding.gyp', 'package/data/sample/ED_sample_4/train.csv'])
      expect(files, f).toContain(f);
    expect(files.some((f) => f.startsWith('package/native/core/'))).toBe(true);
    expect(files.filter((f) => f.startsWith('package/dist/') && f.endsWith('.map'))).toEqual([]); // (native/tests/*.map are linker version scripts)
    expect(files.filter((f) => f.startsWith('package/dist/bench/') || f.startsWith('package/test/') || f.startsWith('package/src/') || f.startsWith('package/build/'))).toEqual([]);
    const installed = join(consumer, 'node_modules', pkg.name);
    expect(existsSync(join(installed, 'build'))).toBe(false); // no source build ran
  });

  it('require() and import both load it, with the native addon from prebuilds/', () => {
    const cjs = run(join(tmp, 'bin', 'node'), ['-e', `const m = require('${pkg.name}'); const f = m.nativeFeatures(); console.log(JSON.stringify({ trainer: typeof m.GrpoTrainer, version: f.version, kernels: f.matmulKernels, path: f.backendSearchPath[0] }))`]);
    const c = JSON.parse(cjs.stdout) as { trainer: string; version: string; path: string };
    expect(c.trainer).toBe('function');
    expect(c.version).toBe(pkg.version);
    expect(c.path).toContain(join('node_modules', pkg.name, 'prebuilds', 'linux-x64'));
    const esm = run(join(tmp, 'bin', 'node'), ['--input-type=module', '-e', `import { GrpoTrainer, resolveTrainConfig } from '${pkg.name}'; import schema from '${pkg.name}/train-config.schema.json' with { type: 'json' }; console.log(typeof GrpoTrainer, resolveTrainConfig({ num_generations: 8 }).group_size, Object.keys(schema.properties).length > 50)`]);
    expect(esm.stdout.trim()).toBe('function 8 true');
  });

  it('a strict TypeScript consumer (skipLibCheck: false) compiles; only its misspelt field fails', () => {
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['main.ts'] }));
    writeFileSync(
      join(consumer, 'main.ts'),
      [
        `import { GrpoTrainer, loadTokenizer, Engine, CausalLM, type TrainConfig } from '${pkg.name}';`,
        `const t = new GrpoTrainer({ model: 'tiny', max_steps: 1, num_generations: 4 });`,
        `const c: TrainConfig = t.config;`,
        `void [c, loadTokenizer, Engine, CausalLM];`,
        `new GrpoTrainer({ modle: 'tiny' });`,
      ].join('\n') + '\n',
    );
    // one compile (of the package's .d.ts and every dependency's they pull in): its only error is line 5's
    const r = spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: consumer, env, encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^main\.ts\(5,19\): error TS2561: .*'modle' does not exist in type 'TrainConfigInput'\. Did you mean to write 'model'\?/)]);
  }, 300_000);

  it('the installed command runs a tiny training job on the shipped sample', () => {
    const cli = join(consumer, 'node_modules', '.bin', 'rrec-emotion');
    expect(run(cli, ['--version']).stdout.trim()).toBe(`${pkg.name} ${pkg.version}`);
    const r = timed('train', () =>
      run(cli, ['train', '--model=tiny', '--run_name=tiny', '--sft_epochs=0', '--max_steps=1', '--train_batch_size=2', '--group_size=2', '--max_new_tokens=4', '--eval_batch_size=40', '--save_steps=0', '--logging_steps=1']),
    );
    const run_ = join(consumer, 'runs', 'tiny');
    expect(readFileSync(join(run_, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(run_, 'checkpoint-1'))).toBe(true);
    // no ../shared beside the installed package: the shipped sample, and the run says so
    const info = JSON.parse(readFileSync(join(run_, 'run.json'), 'utf8')) as { data_dir: string };
    expect(info.data_dir).toContain(join('runs', 'tiny', 'data'));
    expect(r.stdout).toMatch(/valid after GRPO: {2}accuracy \d\.\d{4}/);
  }, 300_000);
});
