/**
 * The one table printer of the CLI (cli-table3): columns padded to their widest cell, a rule under the header, no
 * borders, so the output stays easy to read and to grep.
 */
import Table from 'cli-table3';

/** How a column is aligned: `l` left, `r` right. */
export type Align = 'l' | 'r';

const CHARS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '-', // compact style draws it under the header only
  'mid-mid': '  ',
  right: '',
  'right-mid': '',
  middle: '  ',
};

/**
 * Formats rows under a header; `align` gives each column's alignment (default left), `indent` prefixes every line.
 *
 * @example
 * ```ts
 * console.log(formatTable(['format', 'bpw'], [['q4_0', '4.5']], { align: ['l', 'r'] }));
 * ```
 */
export function formatTable(
  head: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  options: { align?: readonly Align[]; indent?: string } = {},
): string {
  const t = new Table({
    head: [...head],
    chars: CHARS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
    colAligns: head.map((_, i) => (options.align?.[i] === 'r' ? 'right' : 'left')),
  });
  for (const r of rows) t.push(r.map(String));
  const indent = options.indent ?? '';
  return t
    .toString()
    .split('\n')
    .map((l) => indent + l.trimEnd())
    .join('\n');
}
