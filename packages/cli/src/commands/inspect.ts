/**
 * `nibble inspect FILE|URL [--json]`: what a GGUF file holds, like gguf-dump: version, metadata (long arrays
 * summarized), the tensor table and totals per type. Only the header is read, so a URL costs a range request or two.
 */
import type { GgufFile, GgufType, GgufValue } from '@nibble/gguf';
import { openGguf } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import { parseArgs, UsageError } from '../args.js';

const usage = 'usage: nibble inspect FILE|URL [--json] [--full]';

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
  const keyWidth = Math.max(3, ...[...file.metadata.keys()].map((k) => k.length));
  for (const [key, value] of file.metadata) {
    const t = typeName(file.metadataTypes.get(key)).padEnd(14);
    lines.push(`  ${key.padEnd(keyWidth)}  ${t} ${summarize(value, full ? Number.POSITIVE_INFINITY : 8)}`);
  }
  lines.push('', `tensors (${file.tensors.length}):`);
  const nameWidth = Math.max(4, ...file.tensors.map((t) => t.name.length));
  lines.push(
    `  ${'#'.padStart(4)}  ${'name'.padEnd(nameWidth)}  ${'type'.padEnd(8)}  ${'shape'.padEnd(20)}  ${'bytes'.padStart(12)}  ${'offset'.padStart(12)}`,
  );
  file.tensors.forEach((t, i) => {
    const shape = `[${t.shape.join(', ')}]`;
    lines.push(
      `  ${String(i).padStart(4)}  ${t.name.padEnd(nameWidth)}  ${t.typeName.padEnd(8)}  ${shape.padEnd(20)}  ${String(t.byteLength).padStart(12)}  ${String(t.byteOffset).padStart(12)}`,
    );
  });
  lines.push('', 'totals per type:');
  let all = 0;
  let allElements = 0;
  for (const [type, row] of totals(file)) {
    all += row.bytes;
    allElements += row.elements;
    lines.push(
      `  ${type.padEnd(8)}  ${String(row.count).padStart(5)} tensors  ${String(row.elements).padStart(14)} elements  ${String(row.bytes).padStart(14)} bytes`,
    );
  }
  lines.push(
    `  ${'all'.padEnd(8)}  ${String(file.tensors.length).padStart(5)} tensors  ${String(allElements).padStart(14)} elements  ${String(all).padStart(14)} bytes`,
  );
  return lines.join('\n');
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['json', 'full', 'help']);
  if (p.flags.has('help')) {
    console.log(usage);
    return 0;
  }
  if (p.positionals.length !== 1) throw new UsageError(usage);
  const where = p.positionals[0];
  const full = p.flags.has('full');
  const file = /^https?:\/\//i.test(where) ? await openGguf(where) : await openGgufFile(where);
  try {
    if (p.flags.has('json')) {
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
