/**
 * PyTorch as a peer (Debian python3-torch under /usr/bin/python3): a peer script
 * (bench/peers/torch_layer.py, torch_grpo.py) kept running in serve mode, so that each round's
 * torch step is one stdin line away and rounds can alternate ours / torch without Python's
 * start-up in between. torch_layer.py answers each line with {"ms"} (step()); torch_grpo.py takes
 * one JSON command a line and answers one JSON object (request()).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';

/** The interpreter that has torch on these machines (Debian's python3-torch). */
export const PYTHON = '/usr/bin/python3';
export const TORCH_INSTALL_HINT = 'PyTorch not found: apt-get install python3-torch (run by /usr/bin/python3)';

/**
 * glibc malloc settings that keep freed memory in the process: without them PyTorch's fp32 step is
 * ~3x slower and its LoRA step ~8x slower here (fresh 4 KiB pages cost ~11 us each; see
 * docs/machine-limits.md). The benchmark runs both sides of a comparison with them.
 */
export const MALLOC_KEEP_ENV = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=2147483648:glibc.malloc.trim_threshold=4294967296' };

/** The torch version string, or null when /usr/bin/python3 cannot import torch. */
export function torchVersion(): string | null {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export class TorchLayerPeer {
  /** torch.__version__ as the peer reported it. */
  version = '?';
  /** The tail of the peer's stderr (for error messages). */
  private stderr = '';
  private iterator: AsyncIterator<string> | null = null;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
  ) {}

  /** Starts a peer script (e.g. bench/peers/torch_layer.py) with --serve and these args (e.g. ['--mode=full', '--batch=4']); it runs its warm-up first. */
  static async start(script: string, args: readonly string[]): Promise<TorchLayerPeer> {
    const child = spawn(PYTHON, [script, '--serve', ...args], { env: { ...process.env, ...MALLOC_KEEP_ENV }, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout });
    const peer = new TorchLayerPeer(child, lines);
    child.stderr.on('data', (d: Buffer) => (peer.stderr = (peer.stderr + d.toString()).slice(-8000)));
    const ready = (await peer.nextLine(() => peer.stderr)) as { ready?: boolean; torch?: string };
    if (!ready.ready) throw new Error(`torch peer: unexpected first line ${JSON.stringify(ready)}`);
    peer.version = ready.torch ?? '?';
    return peer;
  }

  private async nextLine(stderr: () => string = () => this.stderr): Promise<unknown> {
    this.iterator ??= this.lines[Symbol.asyncIterator]();
    const r = await this.iterator.next();
    if (r.done) throw new Error(`torch peer exited: ${stderr().slice(-2000)}`);
    return JSON.parse(r.value) as unknown;
  }

  /** One forward + backward step; milliseconds as torch timed it. */
  async step(): Promise<number> {
    this.child.stdin.write('step\n');
    const r = (await this.nextLine()) as { ms?: number };
    if (typeof r.ms !== 'number') throw new Error(`torch peer: unexpected line ${JSON.stringify(r)}`);
    return r.ms;
  }

  /**
   * One JSON command (a line) and its JSON answer (torch_grpo.py's protocol); an answer with an
   * `error` field (the peer's exception) becomes a thrown Error naming the command.
   */
  async request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin.write(JSON.stringify(cmd) + '\n');
    const r = (await this.nextLine(() => this.stderr)) as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) throw new Error(`torch peer: unexpected answer ${JSON.stringify(r)} to ${JSON.stringify(cmd)}`);
    if (typeof r.error === 'string') throw new Error(`torch peer failed on ${JSON.stringify(cmd)}: ${r.error}`);
    return r;
  }

  async close(): Promise<void> {
    const done = new Promise<void>((res) => this.child.once('exit', () => res()));
    this.child.stdin.end();
    this.lines.close();
    await done;
  }
}
