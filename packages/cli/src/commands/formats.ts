/**
 * `nibble formats [--json]`: the number formats nibble knows, like ggml's type table: name, ggml type id, block
 * size, bytes per block, bits per weight, whether ggml requires an importance matrix, whether nibble has a codec,
 * and a one-line description. Layout facts come from `@nibble/tensor`'s dtype table, codecs from `@nibble/formats`.
 */
import { formats, int8, usesImportance } from '@nibble/formats';
import { dtypes } from '@nibble/tensor';
import { parseOrHelp } from '../args.js';
import { formatsSpec } from '../specs.js';
import { formatTable } from '../table.js';

interface FormatRow {
  name: string;
  ggmlType: number | null;
  blockSize: number;
  bytesPerBlock: number;
  bitsPerWeight: number;
  needsImatrix: boolean;
  /** 'required' by ggml, 'used' when given, 'ignored', or null without a codec. */
  imatrix: 'required' | 'used' | 'ignored' | null;
  codec: boolean;
  activationsOnly: boolean;
  errorBound: string | null;
  description: string;
}

function rows(): FormatRow[] {
  return Object.values(dtypes)
    .filter((d) => d.name !== 'i8' && d.name !== 'i16' && d.name !== 'i32' && d.name !== 'i64' && d.name !== 'f64')
    .map((d) => {
      const codec = Object.hasOwn(formats, d.name) ? formats[d.name] : d.name === 'int8' ? int8 : undefined;
      return {
        name: d.name,
        ggmlType: d.ggmlType >= 0 ? d.ggmlType : null,
        blockSize: d.blockSize,
        bytesPerBlock: d.bytesPerBlock,
        bitsPerWeight: d.bitsPerWeight,
        needsImatrix: d.needsImatrix,
        imatrix: d.needsImatrix
          ? ('required' as const)
          : codec === undefined
            ? null
            : usesImportance.includes(d.name)
              ? ('used' as const)
              : ('ignored' as const),
        codec: codec !== undefined,
        activationsOnly: d.internal,
        errorBound: codec && 'errorBound' in codec ? (codec.errorBound as string) : null,
        description: d.description,
      };
    });
}

/** Runs the command; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(formatsSpec, args);
  if (!p) return 0;
  const table = rows();
  if (p.values.json) {
    console.log(JSON.stringify(table, null, 2));
    return 0;
  }
  const head = ['name', 'ggml id', 'block', 'bytes', 'bpw', 'imatrix', 'codec', 'description'];
  const body = table.map((r) => [
    r.name,
    r.ggmlType === null ? '-' : String(r.ggmlType),
    r.name === 'int8' ? '-' : String(r.blockSize),
    r.name === 'int8' ? '-' : String(r.bytesPerBlock),
    r.name === 'int8' ? '8+' : String(Number(r.bitsPerWeight.toFixed(4))),
    r.imatrix ?? '-',
    r.codec ? (r.activationsOnly ? 'yes (activations)' : 'yes') : 'no',
    r.description,
  ]);
  console.log(formatTable(head, body, { align: ['l', 'r', 'r', 'r', 'r'] }));
  return 0;
}
