/** "Did you mean": the known names closest to a mistyped one (config fields, CLI flags). */

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** Names of `known` close to `name` (dashes read as underscores): small edit distance, or one contains the other. At most 3. */
export function closeNames(name: string, known: Iterable<string>): string[] {
  const n = name.toLowerCase().replace(/-/g, '_');
  return [...known]
    .map((k) => ({ k, d: editDistance(n, k) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(k.length / 4)) || (n.length >= 4 && (k.includes(n) || n.includes(k))))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map(({ k }) => k);
}
