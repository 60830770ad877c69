// A tiny Qwen2 model (real Qwen2.5 vocabulary and tokenizer) whose weights are set by hand so that
// it answers in the project's format at once: after the chat template's generation prompt it
// writes `<answer>LABEL</answer>`, LABEL one of the labels, chosen by the words of the text. Tests
// of evaluation, inference and best-model tracking then see valid answers, varied predictions and
// a non-trivial accuracy, without the minutes of SFT a random model needs to learn the format.
//
// How (one layer, hidden H, head_dim H, one head; every RMSNorm weight 1):
//  - Dimensions 0..S-1 are "slots": slot 0 means "any other token", slot k a token of the answer
//    chain ('\n' ending the prompt, '<', 'answer', '>', the label pieces, '</'). Dimensions S..H-1
//    are "free".
//  - Embeddings: a chain token is the one-hot of its slot; a token of the prompt template is slot
//    0; any other token (the words of the text) is slot 0 plus N(0, 1) noise in the free dims.
//  - Attention: q = k = 0, so every position averages the values of all positions before it;
//    v copies the free dims and o scales them by GAIN, so the residual gets the mean noise of the
//    text's words (zero for the template, so the signal is the text's own).
//  - MLP: down_proj = 0 (no effect).
//  - lm_head: row `next` has CHAIN_LOGIT at the slot of the token before it in the chain, so each
//    chain step is near-certain; the first piece of each label also has random free-dim weights,
//    so after '>' the label is picked by the text's noise (roughly uniform over the labels, and
//    sampling at temperature 1 spreads over them, which gives GRPO something to learn).
// The stop string `</answer>` ends the generation.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { configJsonText, hfConfig, normalValues, randomModelTensors, writeSafetensors, type ModelShape } from '../../src/model/index.js';
import { Prompter } from '../../src/prompt/index.js';
import { lenmlTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { writeFile } from 'node:fs/promises';

const H = 32;
const GAIN = 20;
const CHAIN_LOGIT = 10;
const LABEL_SPREAD = 0.6;

export async function writeAnswerModel(dir: string, labels: readonly string[], seed = 1): Promise<string> {
  const tokDir = lenmlTokenizerDir('qwen2_5');
  const tokenizer = await loadTokenizer(tokDir);
  const enc = (s: string) => Array.from(tokenizer.encode(s, { addSpecialTokens: false }));
  const shape: ModelShape = {
    architecture: 'qwen2', vocabSize: 151936, hiddenSize: H, numLayers: 1, numHeads: 1, numKvHeads: 1, intermediateSize: 16,
    tieWordEmbeddings: false, ropeTheta: 1e6, rmsNormEps: 1e-6, maxPositions: 4096, bosTokenId: 151643, eosTokenId: 151645,
  };
  const V = shape.vocabSize;

  // The chain: next token of each chain token; '>' has one successor per label.
  const nl = enc('\n')[0]!, open = enc('<answer>'), close = enc('</answer>');
  const next = new Map<number, number[]>();
  const link = (a: number, b: number) => {
    const list = next.get(a) ?? [];
    if (!list.includes(b)) list.push(b);
    next.set(a, list);
  };
  const gt = open[open.length - 1]!;
  link(nl, open[0]!);
  for (let i = 0; i + 1 < open.length; i++) link(open[i]!, open[i + 1]!);
  const labelFirst: number[] = [];
  for (const label of labels) {
    const pieces = enc(label);
    labelFirst.push(pieces[0]!);
    link(gt, pieces[0]!);
    for (let i = 0; i + 1 < pieces.length; i++) link(pieces[i]!, pieces[i + 1]!);
    link(pieces[pieces.length - 1]!, close[0]!);
  }
  for (let i = 0; i + 1 < close.length - 1; i++) link(close[i]!, close[i + 1]!); // '</' -> 'answer' (then 'answer' -> '>' as above)
  for (const [tok, succ] of next) if (tok !== gt && succ.length > 1) throw new Error(`answer model: token ${tok} has ${succ.length} successors`);
  const slots = new Map<number, number>();
  for (const t of [...next.keys(), ...[...next.values()].flat()]) if (!slots.has(t)) slots.set(t, slots.size + 1);
  const S = slots.size + 1;
  if (S >= H - 8) throw new Error(`answer model: ${S} slots leave too few free dims in hidden ${H}`);

  // Template tokens: those of a prompt around a one-word text.
  const prompter = new Prompter(tokenizer, { labels });
  const template = new Set(Array.from(prompter.render({ text: 'x' }).ids));

  const tensors = randomModelTensors(shape, seed);
  const get = (name: string) => tensors.find((t) => t.name === name)!.data as Float32Array;
  const embed = get('model.embed_tokens.weight');
  const noise = normalValues(V * H, 1, seed * 31 + 7);
  for (let v = 0; v < V; v++) {
    const row = embed.subarray(v * H, (v + 1) * H);
    row.fill(0);
    const slot = slots.get(v);
    if (slot !== undefined) row[slot] = 1;
    else {
      row[0] = 1;
      if (!template.has(v)) for (let j = S; j < H; j++) row[j] = noise[v * H + j]!;
    }
  }
  const p = 'model.layers.0.';
  get(p + 'self_attn.q_proj.weight').fill(0);
  get(p + 'self_attn.k_proj.weight').fill(0);
  const vW = get(p + 'self_attn.v_proj.weight').fill(0);
  const oW = get(p + 'self_attn.o_proj.weight').fill(0);
  for (let j = S; j < H; j++) {
    vW[j * H + j] = 1;
    oW[j * H + j] = GAIN;
  }
  get(p + 'mlp.down_proj.weight').fill(0);
  const head = get('lm_head.weight').fill(0);
  for (const [tok, succ] of next) for (const s of succ) head[s * H + slots.get(tok)!] = CHAIN_LOGIT;
  const spread = normalValues(labelFirst.length * H, LABEL_SPREAD, seed * 131 + 3);
  labelFirst.forEach((t, i) => {
    for (let j = S; j < H; j++) head[t * H + j] = spread[i * H + j]!;
  });

  mkdirSync(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype: 'F32', metadata: { format: 'pt' } });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
  await writeFile(join(dir, 'config.json'), configJsonText(hfConfig(shape, 'float32')));
  return dir;
}
