/**
 * Line numbers from byte offsets in a file buffer, for error messages and duplicate reports.
 *
 * csv-parse tells how many bytes it had consumed when it emitted a record (or failed); the record
 * therefore starts at the previous record's end. Counting LF bytes up to that offset gives the
 * 1-based line the record starts on, which is the line an editor shows, even for a quoted field
 * that spans several lines. Offsets arrive in increasing order, so one forward scan suffices.
 */

export class LineCounter {
  private offset = 0;
  private line = 1;

  constructor(private readonly buf: Uint8Array) {}

  /** 1-based line of the first non-blank byte at or after `offset` (blank lines are skipped by the parser). */
  recordLineAt(offset: number): number {
    let start = Math.min(offset, this.buf.length);
    while (start < this.buf.length && (this.buf[start] === 0x0a || this.buf[start] === 0x0d)) start++;
    return this.lineAt(start);
  }

  /** 1-based line containing byte `offset`. */
  lineAt(offset: number): number {
    if (offset < this.offset) {
      this.offset = 0;
      this.line = 1;
    }
    const end = Math.min(offset, this.buf.length);
    for (let i = this.offset; i < end; i++) if (this.buf[i] === 0x0a) this.line++;
    this.offset = end;
    return this.line;
  }

  /** The text of the line starting at or after `offset`, for quoting in an error. */
  lineTextAt(offset: number): string {
    let start = Math.min(offset, this.buf.length);
    while (start < this.buf.length && (this.buf[start] === 0x0a || this.buf[start] === 0x0d)) start++;
    let end = start;
    while (end < this.buf.length && this.buf[end] !== 0x0a && this.buf[end] !== 0x0d) end++;
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('utf8');
  }
}
