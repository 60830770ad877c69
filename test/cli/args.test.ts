// parseFlags: a repeatable flag collects every occurrence in order; help marks it.
import { describe, expect, it } from 'vitest';
import { formatHelp, parseFlags, type FlagSpecs } from '../../src/cli/args.js';

const specs: FlagSpecs = {
  text: { type: 'string', help: 'a situation', repeatable: true },
  name: { type: 'string', help: 'a name' },
};

describe('repeatable flags', () => {
  it('collect every value in order, in both --f=v and --f v forms; absent stays undefined', () => {
    expect(parseFlags(['--text=a', '--name=x', '--text', 'b c', '--text=d,e'], specs).flags).toEqual({ text: ['a', 'b c', 'd,e'], name: 'x' });
    expect(parseFlags(['--name=x', '--name=y'], specs).flags).toEqual({ text: undefined, name: 'y' }); // not repeatable: the last wins
    expect(parseFlags([], specs).flags.text).toBeUndefined();
  });
  it('a default is replaced by the first occurrence, not appended to', () => {
    const withDefault: FlagSpecs = { text: { ...specs.text!, default: ['z'] } };
    expect(parseFlags(['--text=a', '--text=b'], withDefault).flags.text).toEqual(['a', 'b']);
    expect(parseFlags([], withDefault).flags.text).toEqual(['z']);
  });
  it('--help marks them', () => {
    expect(formatHelp('u', 'd', specs)).toMatch(/--text=STRING\s+a situation \(repeatable\)/);
  });
});
