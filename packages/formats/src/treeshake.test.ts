// A bundle that imports one format must carry that format's code and no other's.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

// Any workspace package that depends on @nibble/formats can resolve it as a user would; the CLI does.
const resolveDir = fileURLToPath(new URL('../../cli/', import.meta.url));

async function contributors(entry: string): Promise<string[]> {
  const result = await build({
    stdin: { contents: entry, resolveDir, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    conditions: ['source'],
    treeShaking: true,
    metafile: true,
    logLevel: 'silent',
  });
  const [output] = Object.values(result.metafile.outputs);
  return Object.entries(output.inputs)
    .filter(([, v]) => v.bytesInOutput > 0)
    .map(([path]) => path.replace(/^.*packages\//, ''));
}

describe('tree-shaking', () => {
  it('importing only Q4_0 bundles no other format', async () => {
    const files = await contributors(
      "import { q4_0 } from '@nibble/formats/q4_0'; console.log(q4_0.dequantize(q4_0.quantize(new Float32Array(32))));",
    );
    expect(files).toContain('formats/src/q4_0.ts');
    const formatFiles = files.filter((f) => f.startsWith('formats/src/'));
    // search.ts holds ggml's shared scale searches (Q4_0's imatrix path uses make_qx_quants), views.ts the
    // typed-array views of its fast paths and lut.ts the nibble table its CPU kernel reads; none is another format.
    expect(formatFiles.sort()).toEqual([
      'formats/src/codec.ts',
      'formats/src/half.ts',
      'formats/src/lut.ts',
      'formats/src/q4_0.ts',
      'formats/src/search.ts',
      'formats/src/views.ts',
    ]);
  }, 60_000);

  it('the barrel import of one codec also drops the others', async () => {
    const files = await contributors(
      "import { q8_0 } from '@nibble/formats'; console.log(q8_0.quantize(new Float32Array(32)));",
    );
    expect(files).toContain('formats/src/q8_0.ts');
    for (const other of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'int8', 'float']) {
      expect(files).not.toContain(`formats/src/${other}.ts`);
    }
  }, 60_000);
});
