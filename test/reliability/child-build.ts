/**
 * The library's sources as plain JavaScript for child processes (kill -9, two trainers at once,
 * fuzzing in a process that may crash): node 20 cannot import .ts, so src/ is transpiled file by
 * file (typescript's transpileModule, no type check: a few seconds) into <repo>/tmp/child-src-<hash>/,
 * keyed by the sources' content so that test files share one copy and an edit makes a new one.
 * Inside the repository, so that the package root (the native addon, node_modules) is found as
 * from src/.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Folder holding src/ as .js (same layout); import `${dir}/src/index.js` etc. */
export function childSources(): string {
  const src = join(REPO, 'src');
  const files = tsFiles(src).sort();
  const h = createHash('sha256');
  for (const f of files) h.update(relative(src, f)).update('\0').update(readFileSync(f)).update('\0');
  const out = join(REPO, 'tmp', `child-src-${h.digest('hex').slice(0, 12)}`);
  if (existsSync(join(out, 'src', 'index.js'))) return out;
  const tmp = `${out}.part-${process.pid}-${Math.random().toString(16).slice(2)}`;
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(f, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, isolatedModules: true },
      fileName: f,
    }).outputText;
    const dest = join(tmp, 'src', relative(src, f).replace(/\.ts$/, '.js'));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another test file made it first
  }
  // copies of older sources are of no further use
  for (const name of readdirSync(join(REPO, 'tmp'))) {
    const p = join(REPO, 'tmp', name);
    if (name.startsWith('child-src-') && !name.includes('.part-') && p !== out) rmSync(p, { recursive: true, force: true });
  }
  return out;
}
