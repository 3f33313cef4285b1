/**
 * SVG diagrams of a Q4_0 and a Q4_K block: the bytes of one block, field by field, and which weights each 4-bit
 * quant holds. Field sizes are checked against @nibble/tensor's dtype table, so a diagram cannot drift from the
 * layout the code uses.
 */
import { type DTypeName, dtypes } from '@nibble/tensor';

/** One field of a block. */
export interface BlockField {
  name: string;
  bytes: number;
  /** What it holds, one short line. */
  note: string;
  fill: string;
}

/** A block layout as the diagram draws it. */
export interface BlockLayout {
  dtype: DTypeName;
  title: string;
  fields: BlockField[];
  /** How a weight is decoded, one line. */
  formula: string;
}

const SCALE = '#f59e0b';
const MIN = '#10b981';
const PACKED = '#8b5cf6';
const QUANTS = '#3b82f6';

export const q4_0Layout: BlockLayout = {
  dtype: 'q4_0',
  title: 'Q4_0: 32 weights in 18 bytes (4.5 bits per weight)',
  fields: [
    { name: 'd', bytes: 2, note: 'f16 scale = max / −8', fill: SCALE },
    { name: 'qs[16]', bytes: 16, note: '32 × 4-bit quants q ∈ [0, 15]', fill: QUANTS },
  ],
  formula: 'x[j] = (q[j] − 8) · d',
};

export const q4_KLayout: BlockLayout = {
  dtype: 'q4_K',
  title: 'Q4_K: 256 weights in 144 bytes (4.5 bits per weight)',
  fields: [
    { name: 'd', bytes: 2, note: 'f16 scale of scales', fill: SCALE },
    { name: 'dmin', bytes: 2, note: 'f16 scale of mins', fill: MIN },
    { name: 'scales[12]', bytes: 12, note: '8 × (6-bit sc, 6-bit m)', fill: PACKED },
    { name: 'qs[128]', bytes: 128, note: '256 × 4-bit quants, 8 sub-blocks of 32', fill: QUANTS },
  ],
  formula: 'x = d · sc[s] · q − dmin · m[s]   (s = sub-block of 32)',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(x: number, y: number, s: string, extra = ''): string {
  return `<text x="${x}" y="${y}" ${extra}>${esc(s)}</text>`;
}

/**
 * The SVG of one block layout. Throws when the fields do not add up to the dtype's bytes per block.
 *
 * @example
 * ```ts
 * const svg = blockDiagram(q4_0Layout); // '<svg ...>'
 * ```
 */
export function blockDiagram(layout: BlockLayout): string {
  const info = dtypes[layout.dtype];
  const total = layout.fields.reduce((s, f) => s + f.bytes, 0);
  if (total !== info.bytesPerBlock) {
    throw new Error(`${layout.dtype}: the diagram's fields hold ${total} bytes, a block has ${info.bytesPerBlock}`);
  }
  const width = 760;
  const left = 20;
  const strip = width - 2 * left;
  // Byte-proportional widths, except that every field gets room for its name: the big field gives up the space.
  const minWidth = 76;
  const widths = layout.fields.map((f) => (f.bytes * strip) / total);
  const small = widths.map((w) => w < minWidth);
  const smallSum = small.reduce((s, isSmall) => s + (isSmall ? minWidth : 0), 0);
  const bigBytes = layout.fields.reduce((s, f, i) => s + (small[i] ? 0 : f.bytes), 0);
  for (let i = 0; i < widths.length; i++) {
    widths[i] = small[i] ? minWidth : ((strip - smallSum) * layout.fields[i].bytes) / bigBytes;
  }
  const toScale = !small.some(Boolean);
  const parts: string[] = [];
  const top = 44;
  const h = 34;
  parts.push(text(left, 20, layout.title, 'font-weight="600" font-size="14"'));
  if (!toScale)
    parts.push(text(width - left, 20, 'field widths not to scale', 'text-anchor="end" font-size="10" opacity="0.7"'));
  let x = left;
  let offset = 0;
  for (const [i, f] of layout.fields.entries()) {
    const w = widths[i];
    const px = w / f.bytes;
    parts.push(
      `<rect x="${x}" y="${top}" width="${w}" height="${h}" fill="${f.fill}" fill-opacity="0.28" stroke="currentColor" stroke-width="1"/>`,
    );
    // One tick per byte where bytes are wide enough to see; otherwise one every 8 bytes.
    const step = px >= 8 ? 1 : 8;
    for (let b = step; b < f.bytes; b += step) {
      const tx = x + b * px;
      parts.push(
        `<line x1="${tx}" y1="${top + h - 8}" x2="${tx}" y2="${top + h}" stroke="currentColor" stroke-opacity="0.5"/>`,
      );
    }
    parts.push(text(x + w / 2, top + 22, f.name, 'text-anchor="middle" font-family="monospace"'));
    parts.push(
      text(
        x + 2,
        top - 6,
        f.bytes === 1 ? `byte ${offset}` : `bytes ${offset}–${offset + f.bytes - 1}`,
        'font-size="10" opacity="0.75"',
      ),
    );
    offset += f.bytes;
    x += w;
  }
  // The field notes, one line each under the strip.
  let ny = top + h + 20;
  for (const f of layout.fields) {
    parts.push(
      `<rect x="${left}" y="${ny - 10}" width="12" height="12" fill="${f.fill}" fill-opacity="0.5" stroke="currentColor" stroke-width="0.5"/>`,
    );
    parts.push(text(left + 18, ny, `${f.name} (${f.bytes} byte${f.bytes > 1 ? 's' : ''}): ${f.note}`));
    ny += 18;
  }
  ny += 10;
  ny = layout.dtype === 'q4_0' ? nibbleMapQ4_0(parts, left, ny, strip) : subBlockMapQ4_K(parts, left, ny, strip);
  parts.push(text(left, ny + 10, layout.formula, 'font-family="monospace" font-size="13"'));
  const height = ny + 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="block-diagram" role="img" aria-label="${esc(layout.title)}" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px" font-size="12" fill="currentColor">${parts.join('')}</svg>`;
}

// qs[j] holds weight j in its low nibble and weight j + 16 in its high nibble.
function nibbleMapQ4_0(parts: string[], left: number, y: number, strip: number): number {
  parts.push(text(left, y, 'qs byte j: low nibble = weight j, high nibble = weight j + 16', 'opacity="0.85"'));
  y += 8;
  const w = strip / 16;
  for (let j = 0; j < 16; j++) {
    const x = left + j * w;
    parts.push(
      `<rect x="${x}" y="${y}" width="${w}" height="22" fill="${QUANTS}" fill-opacity="0.15" stroke="currentColor" stroke-width="0.75"/>`,
    );
    parts.push(
      `<rect x="${x}" y="${y + 22}" width="${w}" height="22" fill="${QUANTS}" fill-opacity="0.35" stroke="currentColor" stroke-width="0.75"/>`,
    );
    parts.push(text(x + w / 2, y + 15, `x${j}`, 'text-anchor="middle" font-size="11"'));
    parts.push(text(x + w / 2, y + 37, `x${j + 16}`, 'text-anchor="middle" font-size="11"'));
  }
  parts.push(text(left + strip + 4, y + 15, 'lo', 'font-size="10" opacity="0.7"'));
  parts.push(text(left + strip + 4, y + 37, 'hi', 'font-size="10" opacity="0.7"'));
  return y + 44 + 22;
}

// qs[32k .. 32k+31]: low nibbles are sub-block 2k, high nibbles sub-block 2k + 1 (ggml's dequantize_row_q4_K).
function subBlockMapQ4_K(parts: string[], left: number, y: number, strip: number): number {
  parts.push(
    text(left, y, 'qs[32k … 32k+31]: low nibbles = sub-block 2k, high nibbles = sub-block 2k+1', 'opacity="0.85"'),
  );
  y += 8;
  const w = strip / 4;
  for (let k = 0; k < 4; k++) {
    const x = left + k * w;
    parts.push(
      `<rect x="${x}" y="${y}" width="${w}" height="22" fill="${QUANTS}" fill-opacity="0.15" stroke="currentColor" stroke-width="0.75"/>`,
    );
    parts.push(
      `<rect x="${x}" y="${y + 22}" width="${w}" height="22" fill="${QUANTS}" fill-opacity="0.35" stroke="currentColor" stroke-width="0.75"/>`,
    );
    parts.push(text(x + w / 2, y + 15, `s${2 * k}: x${64 * k}…x${64 * k + 31}`, 'text-anchor="middle" font-size="11"'));
    parts.push(
      text(x + w / 2, y + 37, `s${2 * k + 1}: x${64 * k + 32}…x${64 * k + 63}`, 'text-anchor="middle" font-size="11"'),
    );
    parts.push(
      text(x + w / 2, y + 58, `qs[${32 * k}…${32 * k + 31}]`, 'text-anchor="middle" font-size="10" opacity="0.7"'),
    );
  }
  y += 84;
  parts.push(text(left, y, 'scales, s < 4: sc[s] = byte s & 63, m[s] = byte s+4 & 63', 'opacity="0.85"'));
  parts.push(
    text(
      left,
      y + 16,
      's ≥ 4: sc[s] = low nibble of byte s+4 | top 2 bits of byte s−4 << 4; m[s] = high nibble of byte s+4 | top 2 bits of byte s << 4',
      'opacity="0.85" font-size="11"',
    ),
  );
  return y + 34;
}
