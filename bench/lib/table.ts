/** The readable table printed at the end of a run: one row per figure. Pure. */
import type { Figure } from './figures.js';

/** Short number: 3 significant digits (more for large values), no exponent for everyday sizes. */
export function formatNumber(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}

/** A Markdown table: name | unit | ours median [min–max] | peer | peer median | ratio | note. */
export function formatTable(figures: readonly Figure[]): string {
  const head = ['name', 'unit', 'ours median [min–max]', 'peer', 'peer median', 'ratio', 'note'];
  const rows = figures.map((f) => {
    const extra =
      f.roofline_fraction != null
        ? ` (${(100 * f.roofline_fraction).toFixed(0)}% of roofline)`
        : f.peak_fraction != null
          ? ` (${(100 * f.peak_fraction).toFixed(0)}% of bf16 peak)`
          : '';
    return [
      f.name,
      f.unit + (f.higher_is_better ? ' ↑' : ' ↓'),
      `${formatNumber(f.ours.median)} [${formatNumber(f.ours.min)}–${formatNumber(f.ours.max)}]${extra}`,
      f.peer ? f.peer.name : '-',
      f.peer ? formatNumber(f.peer.median) : '-',
      f.ratio != null ? `${f.ratio.toFixed(2)}x` : '-',
      f.note.replace(/\|/g, '/'),
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}
