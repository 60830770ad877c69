// One source of truth for the options crossing the boundary: native/include/rrec/options.def.
// The addon is compiled from it (its structs and parsers are X-macro expansions) and reports what
// it was compiled from; the TypeScript types and defaults are generated from the same file. Both
// must agree with the file as it is now.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LORA_MODULES, NATIVE_FORWARD_DEFAULTS, NATIVE_SAMPLING_DEFAULTS } from '../../src/native-options.generated.js';
import { loadNative } from '../../src/native.js';
import { repoRoot } from './native-build.js';

const def = readFileSync(join(repoRoot, 'native', 'include', 'rrec', 'options.def'), 'utf8');
const names = (macro: string) => [...def.matchAll(new RegExp(`^${macro}\\(\\w+, (\\w+),`, 'gm'))].map((m) => m[1]);

describe('native option tables', () => {
  it('the generated TypeScript is up to date with options.def', () => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'gen-native-options.mjs'), '--check'], { stdio: 'pipe' });
  });

  it('the addon was compiled from the same lists, in the same order', () => {
    const t = loadNative().optionTables();
    expect(t.sampling.map((e) => e.name)).toEqual(names('RREC_SAMPLING'));
    expect(t.sampling.map((e) => e.name)).toEqual(Object.keys(NATIVE_SAMPLING_DEFAULTS));
    expect(t.forward.map((e) => e.name)).toEqual(Object.keys(NATIVE_FORWARD_DEFAULTS));
    expect(t.loraModules.map((m) => m.name)).toEqual([...LORA_MODULES]);
    expect(t.loraModules.map((m) => m.parent)).toEqual(['self_attn', 'self_attn', 'self_attn', 'self_attn', 'mlp', 'mlp', 'mlp']);
  });

  it('LoRA parameter names follow the module table (PEFT names)', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { writeTinyModel } = await import('../helpers/tiny-models.js');
    const { CausalLM } = await import('../../src/model/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'rrec-options-'));
    try {
      writeTinyModel(dir, 'llama');
      const lm = await CausalLM.load(dir);
      const names = lm.createLora({ rank: 2 }).params().map((p) => p.name);
      for (const m of LORA_MODULES) expect(names).toContain(`base_model.model.model.layers.0.${m === 'gate_proj' || m === 'up_proj' || m === 'down_proj' ? 'mlp' : 'self_attn'}.${m}.lora_A.weight`);
      expect(() => lm.createLora({ targets: ['qproj' as never] })).toThrow(/lora target "qproj" is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/);
      lm.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
