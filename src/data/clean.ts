/**
 * cleanText: the normalisation applied to every `text` and `aug_text` value before it is stored.
 *
 * Steps, in order:
 *  1. `_comma_` -> ","   EmpatheticDialogues' raw release escaped commas this way.
 *  2. HTML entities decoded (`&amp;` `&#39;` `&nbsp;` ...), once, so `&amp;lt;` becomes `&lt;`.
 *  3. HTML tags removed: only `<name ...>` / `</name>` for a known HTML element name, so crowd
 *     typos such as `95%>`, `i <3 u` or `a < b` are left alone. Block tags (`<br>`, `<p>`...)
 *     become a space, inline ones (`<b>`, `<i>`...) vanish, so "un<b>believ</b>able" stays a word.
 *  4. Whitespace: every run of whitespace (spaces, tabs, newlines, no-break and zero-width spaces)
 *     becomes one space; leading and trailing whitespace is dropped.
 *
 * Entities are decoded with the HTML rules for attribute values (`decodeHTMLAttribute`): a legacy
 * entity written without its `;` is only decoded when no letter, digit or `=` follows, so "&amp x"
 * becomes "& x" but a word like "&notice" is not turned into "¬ice" as `decodeHTML` would.
 */

import { decodeHTMLAttribute } from 'entities';

// Elements that break a line when rendered: replaced by a space so the words around stay apart.
const BLOCK_TAGS = [
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'figcaption', 'figure', 'footer',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'ul', 'html', 'body', 'head', 'title',
];
// Elements that sit inside a line: removed without a space.
const INLINE_TAGS = [
  'a', 'abbr', 'b', 'big', 'cite', 'code', 'del', 'em', 'font', 'i', 'img', 'ins', 'kbd', 'mark', 'q', 's', 'samp',
  'small', 'span', 'strike', 'strong', 'sub', 'sup', 'tt', 'u', 'var', 'wbr',
];

// `<`, optional `/`, a known name, then whitespace, `/` or `>` (so `<bad>` is not `<b>`), then any
// attributes up to the first `>`.
const tagPattern = (names: readonly string[]): RegExp => new RegExp(`<\\/?(?:${names.join('|')})(?=[\\s/>])[^<>]*>`, 'gi');
const BLOCK_TAG_RE = tagPattern(BLOCK_TAGS);
const INLINE_TAG_RE = tagPattern(INLINE_TAGS);
const WHITESPACE_RE = /[\s\u200b]+/g;

export function cleanText(raw: string): string {
  let s = raw.replace(/_comma_/g, ',');
  if (s.includes('&')) s = decodeHTMLAttribute(s);
  if (s.includes('<')) s = s.replace(BLOCK_TAG_RE, ' ').replace(INLINE_TAG_RE, '');
  return s.replace(WHITESPACE_RE, ' ').trim();
}
