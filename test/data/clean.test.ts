import { describe, expect, it } from 'vitest';
import { cleanText } from '../../src/data/index.js';

describe('cleanText', () => {
  it.each([
    // [raw, expected], expected strings written by hand
    ['  leading and trailing  ', 'leading and trailing'],
    ['runs   of\t\tspaces\nand\r\nnewlines', 'runs of spaces and newlines'],
    ['no\u00a0break\u00a0\u00a0space', 'no break space'],
    ['zero\u200bwidth', 'zero width'],
    ['we went out_comma_ then home', 'we went out, then home'],
    ['a_comma_b_comma_c', 'a,b,c'],
    ['sad &amp; tired', 'sad & tired'],
    ['i&#39;m &quot;fine&quot; &#x27;ok&#x27;', 'i\'m "fine" \'ok\''],
    ['x&nbsp;&nbsp;y', 'x y'],
    ['&amp;lt; decoded once', '&lt; decoded once'],
    ['i was<br>sad', 'i was sad'],
    ['one<br/>two<br />three<BR>four', 'one two three four'],
    ['<p>para</p><p>two</p>', 'para two'],
    ['<b>so</b> angry', 'so angry'],
    ['un<i>believ</i>able', 'unbelievable'],
    ['<a href="http://x.y/?a=1">link</a> here', 'link here'],
    ['&lt;b&gt;bold&lt;/b&gt;', 'bold'],
    ['he scored 95%> on the test', 'he scored 95%> on the test'],
    ['i <3 you', 'i <3 you'],
    ['a < b and c > d', 'a < b and c > d'],
    ['a<bad>b', 'a<bad>b'],
    ['i am <so> mad', 'i am <so> mad'],
    ["didn{t know", "didn{t know"],
    ['&notice stays', '&notice stays'],
    ['AT&T and r&b', 'AT&T and r&b'],
    ['fiancée café', 'fiancée café'],
    ['', ''],
    ['<br>', ''],
  ])('%j -> %j', (raw, expected) => {
    expect(cleanText(raw)).toBe(expected);
  });

  it('is idempotent on already clean text', () => {
    const s = 'she said "wow", then left.';
    expect(cleanText(cleanText(s))).toBe(s);
  });
});
