/**
 * Bits per weight and error against F32 of every weight format, measured on real weights: the stories260K token
 * embedding laid out as 128 rows of 256 (every block size fits). Each format's bytes are also compared with the
 * bytes ggml itself wrote for the same input (fixtures/golden/ggml-real), so the page can say they are ggml's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formats } from '@nibble/formats';

/** One format's figures. */
export interface FormatError {
  format: string;
  description: string;
  bitsPerWeight: number;
  /** Root-mean-square error against the f32 weights. */
  rmse: number;
  /** RMSE over the RMS of the weights. */
  relativeRmse: number;
  maxAbsError: number;
  /** Whether the quantized bytes equal ggml's for the same input; undefined where ggml wrote none. */
  sameBytesAsGgml: boolean | undefined;
}

/** The measurement on `fixtures/golden/ggml-real/stories260K-token_embd.f32` (32768 values, rows of 256). */
export function measureFormatErrors(root: string): { values: number; rowLength: number; rows: FormatError[] } {
  const dir = join(root, 'fixtures/golden/ggml-real');
  const raw = readFileSync(join(dir, 'stories260K-token_embd.f32'));
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const rowLength = 256;
  let ss = 0;
  for (const v of x) ss += v * v;
  const rms = Math.sqrt(ss / x.length);
  const rows: FormatError[] = [];
  for (const codec of Object.values(formats)) {
    if (codec.info.internal || codec.name === 'f32') continue;
    const q = codec.quantize(x, { rowLength });
    const y = codec.dequantize(q);
    let se = 0;
    let max = 0;
    for (let i = 0; i < x.length; i++) {
      const e = Math.abs(x[i] - y[i]);
      se += e * e;
      if (e > max) max = e;
    }
    let same: boolean | undefined;
    try {
      const theirs = readFileSync(join(dir, `emb.${codec.name.toUpperCase()}.q`));
      same = Buffer.compare(theirs, Buffer.from(q.buffer, q.byteOffset, q.byteLength)) === 0;
    } catch {
      same = undefined;
    }
    const rmse = Math.sqrt(se / x.length);
    rows.push({
      format: codec.name,
      description: codec.info.description,
      bitsPerWeight: codec.info.bitsPerWeight,
      rmse,
      relativeRmse: rmse / rms,
      maxAbsError: max,
      sameBytesAsGgml: same,
    });
  }
  rows.sort((a, b) => b.bitsPerWeight - a.bitsPerWeight || a.rmse - b.rmse);
  return { values: x.length, rowLength, rows };
}

const sci = (v: number) => (v === 0 ? '0' : v.toExponential(2));

/** The table as markdown. */
export function formatErrorTable(m: ReturnType<typeof measureFormatErrors>): string {
  const lines = [
    '| format | bits/weight | smaller than F32 | RMSE | RMSE / RMS | max \\|error\\| | same bytes as ggml |',
    '|---|---:|---:|---:|---:|---:|:---:|',
  ];
  for (const r of m.rows) {
    const same = r.sameBytesAsGgml === undefined ? '–' : r.sameBytesAsGgml ? 'yes' : '**no**';
    lines.push(
      `| \`${r.format}\` | ${+r.bitsPerWeight.toFixed(4)} | ${(32 / r.bitsPerWeight).toFixed(2)}× | ${sci(r.rmse)} | ${(100 * r.relativeRmse).toFixed(2)} % | ${sci(r.maxAbsError)} | ${same} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
