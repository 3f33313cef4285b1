/**
 * `nibble inspect FILE|URL [--json]`: what a GGUF file holds, like gguf-dump: version, metadata (long arrays
 * summarized), the tensor table and totals per type. Only the header is read, so a URL costs a range request or two.
 */
import type { GgufFile, GgufType, GgufValue } from '@nibble/gguf';
import { openGguf } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import { parseOrHelp } from '../args.js';
import { inspectSpec } from '../specs.js';
import { formatTable } from '../table.js';

function typeName(t: GgufType | undefined): string {
  if (t === undefined) return '?';
  if (typeof t === 'string') return t;
  if (t.array === 'array') return 'array[array]';
  return `array[${t.array}]`;
}

function isList(v: GgufValue): v is ArrayLike<unknown> & GgufValue {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}`;
  return String(v);
}

/** A value for the text table: arrays longer than `limit` show their first items and their length. */
function summarize(v: GgufValue, limit: number): string {
  if (!isList(v)) return show(v);
  const items = Array.from({ length: Math.min(v.length, limit) }, (_, i) => {
    const x = (v as ArrayLike<unknown>)[i];
    return isList(x as GgufValue) ? `[${(x as ArrayLike<unknown>).length} items]` : show(x);
  });
  return v.length > limit ? `[${items.join(', ')}, ... ${v.length} items]` : `[${items.join(', ')}]`;
}

/** A JSON-safe value: bigints as strings, typed arrays as arrays; long arrays summarized unless `full`. */
function toJson(v: GgufValue, full: boolean): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (!isList(v)) return v;
  const n = full ? v.length : Math.min(v.length, 16);
  const items = Array.from({ length: n }, (_, i) => toJson((v as ArrayLike<GgufValue>)[i], full));
  return full || v.length <= 16 ? items : { length: v.length, first: items };
}

function totals(file: GgufFile): Map<string, { count: number; bytes: number; elements: number }> {
  const byType = new Map<string, { count: number; bytes: number; elements: number }>();
  for (const t of file.tensors) {
    const row = byType.get(t.typeName) ?? { count: 0, bytes: 0, elements: 0 };
    row.count++;
    row.bytes += t.byteLength;
    row.elements += t.elementCount;
    byType.set(t.typeName, row);
  }
  return byType;
}

function report(file: GgufFile, where: string, full: boolean): string {
  const lines: string[] = [];
  lines.push(`${where}: GGUF v${file.version}, ${file.fileSize} bytes, alignment ${file.alignment}`);
  lines.push(`data section at byte ${file.dataOffset}`, '', `metadata (${file.metadata.size} entries):`);
  const limit = full ? Number.POSITIVE_INFINITY : 8;
  const meta = [...file.metadata].map(([key, value]) => [
    key,
    typeName(file.metadataTypes.get(key)),
    summarize(value, limit),
  ]);
  lines.push(formatTable(['key', 'type', 'value'], meta, { indent: '  ' }));
  lines.push('', `tensors (${file.tensors.length}):`);
  const tensors = file.tensors.map((t, i) => [
    i,
    t.name,
    t.typeName,
    `[${t.shape.join(', ')}]`,
    t.byteLength,
    t.byteOffset,
  ]);
  lines.push(
    formatTable(['#', 'name', 'type', 'shape', 'bytes', 'offset'], tensors, {
      align: ['r', 'l', 'l', 'l', 'r', 'r'],
      indent: '  ',
    }),
  );
  lines.push('', 'totals per type:');
  let all = 0;
  let allElements = 0;
  const rows: (string | number)[][] = [];
  for (const [type, row] of totals(file)) {
    all += row.bytes;
    allElements += row.elements;
    rows.push([type, row.count, row.elements, row.bytes]);
  }
  rows.push(['all', file.tensors.length, allElements, all]);
  lines.push(
    formatTable(['type', 'tensors', 'elements', 'bytes'], rows, { align: ['l', 'r', 'r', 'r'], indent: '  ' }),
  );
  return lines.join('\n');
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(inspectSpec, args);
  if (!p) return 0;
  const where = p.positionals[0];
  const full = p.values.full;
  const file = /^https?:\/\//i.test(where) ? await openGguf(where) : await openGgufFile(where);
  try {
    if (p.values.json) {
      const out = {
        source: where,
        version: file.version,
        fileSize: file.fileSize,
        alignment: file.alignment,
        dataOffset: file.dataOffset,
        metadata: Object.fromEntries(
          [...file.metadata].map(([k, v]) => [k, { type: file.metadataTypes.get(k), value: toJson(v, full) }]),
        ),
        tensors: file.tensors.map((t) => ({
          name: t.name,
          type: t.typeName,
          shape: t.shape,
          bytes: t.byteLength,
          offset: t.byteOffset,
        })),
        totals: Object.fromEntries(totals(file)),
      };
      console.log(JSON.stringify(out, null, 2));
    } else console.log(report(file, where, full));
  } finally {
    await file.close();
  }
  return 0;
}
