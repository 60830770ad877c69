/**
 * The lines a run prints before it starts: which model (the resolved folder), tokenizer, data
 * (folder, split sizes, and a note when it fell back to the shipped sample) and device it uses, so
 * that an installed package training on the 200-sentence sample says so.
 */
export interface RunBannerInput {
  /** What the config named: "tiny", a registry name, or a folder. */
  model: string;
  /** The folder it resolved to. */
  modelDir: string;
  builtin: boolean;
  tokenizer: { vocabSize: number; eos: string | undefined; chatTemplate: boolean };
  /** The dataset folder read, and the CSV folder it was preprocessed from when it differs. */
  dataDir: string;
  /** The config's data_dir: null when the default was taken. */
  configuredDataDir: string | null;
  /** The shipped sample's folder (data/sample/ED_sample_4 of the package). */
  sampleDir: string;
  splits: Readonly<Record<string, number>>;
  device: { device: string; name: string };
  runDir: string;
}

export function runBanner(b: RunBannerInput): string[] {
  const row = (k: string, v: string) => `${k.padEnd(10)} ${v}`;
  const model = b.builtin ? `${b.modelDir} (the built-in tiny model, random weights)` : b.model === b.modelDir ? b.modelDir : `${b.modelDir} ("${b.model}")`;
  const tok = `${b.modelDir} (vocab ${b.tokenizer.vocabSize}${b.tokenizer.eos ? `, ends with ${b.tokenizer.eos}` : ''}, ${b.tokenizer.chatTemplate ? 'its chat template' : 'no chat template'})`;
  const sizes = Object.entries(b.splits).map(([n, c]) => `${n} ${c}`).join(', ');
  const lines = [row('model', model), row('tokenizer', tok), row('data', `${b.dataDir}: ${sizes}`)];
  const sample = b.dataDir === b.sampleDir || b.dataDir.startsWith(`${b.sampleDir}/`);
  if (b.configuredDataDir === null && sample) {
    lines.push(row('', 'no --data_dir given and no ../shared/data/ED_easy_4 beside the package: this is the shipped sample of 200 sentences, for trying things out; pass --data_dir for real training'));
  }
  lines.push(row('device', `${b.device.device} (${b.device.name})`), row('run', b.runDir));
  return lines;
}
