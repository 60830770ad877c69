// Runs llama.cpp (node-llama-cpp) on one GGUF file in a process of its own and prints one JSON
// object; test/helpers/llama-cpp-reader.ts starts it. Its own process because llama.cpp and the
// addon both bring OpenMP thread teams: in one process, llama.cpp's BF16 / Q8_0 products ran
// hundreds of times slower (minutes for 32 tokens, measured), as two teams contend for 2 cores.
//
//   node llama-cpp-child.mjs NODE_LLAMA_CPP_DIR REQUEST_JSON_FILE
//   request: { files: string[], texts: string[], prompts: number[][], newTokens }
//   output:  one per file: { metadata: {...selected keys}, tensorTypes: {name: ggmlType}, tokens: number[][], greedy: number[][] }
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [nlcDir, requestFile] = process.argv.slice(2);
const req = JSON.parse(readFileSync(requestFile, 'utf8'));
const nlc = await import(pathToFileURL(join(nlcDir, 'dist', 'index.js')).href);
// One thread: ggml's workers spin at every barrier, which a loaded 2-core machine punishes.
const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: nlc.LlamaLogLevel.error });
const results = [];
for (const gguf of req.files) {
const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
const m = model.fileInfo.metadata;
const plain = (v) => (typeof v === 'bigint' ? Number(v) : v);
const metadata = {
  'general.architecture': m.general?.architecture,
  'general.file_type': plain(m.general?.file_type),
  'tokenizer.chat_template': m.tokenizer?.chat_template,
  'tokenizer.ggml.model': m.tokenizer?.ggml?.model,
  'tokenizer.ggml.pre': m.tokenizer?.ggml?.pre,
  'tokenizer.ggml.eos_token_id': plain(m.tokenizer?.ggml?.eos_token_id),
  'tokenizer.ggml.bos_token_id': plain(m.tokenizer?.ggml?.bos_token_id),
  'tokenizer.ggml.add_bos_token': m.tokenizer?.ggml?.add_bos_token,
};
const tensorTypes = Object.fromEntries((model.fileInfo.tensorInfo ?? []).map((t) => [t.name, t.ggmlType]));
const tokens = req.texts.map((t) => model.tokenize(t, true));
const greedy = [];
for (const prompt of req.prompts) {
  const ctx = await model.createContext({
    contextSize: Math.max(256, prompt.length + req.newTokens + 16), batchSize: 512, sequences: 1, threads: 1, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', swaFullCache: true,
  });
  const out = [];
  for await (const tok of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
    out.push(tok);
    if (out.length >= req.newTokens) break;
  }
  await ctx.dispose();
  greedy.push(out);
}
await model.dispose();
results.push({ metadata, tensorTypes, tokens, greedy });
}
await llama.dispose();
process.stdout.write(JSON.stringify(results));
