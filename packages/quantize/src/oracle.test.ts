// The oracle: llama.cpp's own llama_model_quantize (fixtures/quantize/generate.py ran it on every preset, with and
// without an importance matrix, on synthetic models and on stories260K). Every output must be the same file, byte
// for byte: tensor order, types, data and metadata.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { blobSink, openGguf, parseGguf } from '@nibble/gguf';
import { describe, expect, it } from 'vitest';
import { QuantizeError } from './errors.js';
import { readImatrix } from './imatrix.js';
import { type QuantizeModelOptions, quantizeModel } from './quantize.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const read = (rel: string) => new Uint8Array(readFileSync(`${fixtures}${rel}`));

interface Run {
  model: string;
  preset: string;
  label: string;
  options: {
    imatrix?: boolean;
    imatrix_dat?: boolean;
    pure?: boolean;
    output_type?: string;
    token_embedding_type?: string;
    leave_output?: boolean;
    tensor_types?: [string, string][];
    allow_requantize?: boolean;
    fromQ8_0?: boolean;
  };
  error?: string;
  sha256?: string;
  types?: string;
  hashes?: string;
}
interface Manifest {
  imatrixFile: string;
  models: Record<string, { tensors: string[] }>;
  runs: Run[];
}
const manifest = JSON.parse(new TextDecoder().decode(read('quantize/manifest.json'))) as Manifest;
const modelPath = (name: string) =>
  name === 'stories260K' ? 'models/stories260K.gguf' : `quantize/models/${name}.gguf`;
const inputs = new Map<string, Uint8Array>();
const input = (name: string) => {
  let b = inputs.get(name);
  if (!b) inputs.set(name, (b = read(modelPath(name))));
  return b;
};

function optionsOf(run: Run): QuantizeModelOptions {
  const o = run.options;
  return {
    preset: run.preset,
    imatrix: o.imatrix_dat
      ? readImatrix(read(`quantize/imatrix/${run.model}.imatrix.dat`))
      : o.imatrix
        ? readImatrix(read(`quantize/imatrix/${run.model}.imatrix.gguf`))
        : undefined,
    imatrixName: o.imatrix_dat ? 'imatrix.dat' : manifest.imatrixFile,
    pure: o.pure,
    outputType: o.output_type,
    tokenEmbeddingType: o.token_embedding_type,
    leaveOutputTensor: o.leave_output,
    tensorTypes: o.tensor_types,
    allowRequantize: o.allow_requantize,
  };
}

async function quantizeBytes(bytes: Uint8Array, options: QuantizeModelOptions): Promise<Uint8Array> {
  const sink = blobSink();
  await quantizeModel(parseGguf(bytes), sink, options);
  return new Uint8Array(await sink.blob().arrayBuffer());
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// The first tensor whose type or bytes differ from llama.cpp's, to say what went wrong when a file hash differs.
async function firstDifference(ours: Uint8Array, run: Run): Promise<string> {
  const file = await openGguf(ours);
  const names = manifest.models[run.model].tensors;
  const types = (run.types as string).split(' ');
  const hashes = run.hashes?.split(' ');
  if (file.tensors.map((t) => t.name).join() !== names.join()) return 'tensor order differs';
  for (let i = 0; i < names.length; i++) {
    const t = file.tensors[i];
    if (t.typeName !== types[i]) return `${t.name}: type ${t.typeName}, llama.cpp ${types[i]}`;
    if (hashes && sha(await file.readTensorBytes(t)).slice(0, 16) !== hashes[i]) return `${t.name}: bytes differ`;
  }
  return 'tensors equal; metadata or padding differ';
}

const results = { equal: 0, refusedAlike: 0 };

describe('quantizeModel is llama_model_quantize, byte for byte', () => {
  for (const run of manifest.runs) {
    it(`${run.model} ${run.label}`, async () => {
      let bytes = input(run.model);
      const options = optionsOf(run);
      if (run.options.fromQ8_0) {
        // The Q8_0 input llama.cpp requantized was its own; ours is the same file (checked by the Q8_0 run).
        bytes = await quantizeBytes(bytes, { preset: 'Q8_0' });
        const ref = manifest.runs.find((r) => r.model === run.model && r.label === 'Q8_0');
        expect(sha(bytes)).toBe(ref?.sha256);
      }
      if (run.error !== undefined) {
        const err = await quantizeBytes(bytes, options).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `llama.cpp refused: ${run.error}`).toBeInstanceOf(QuantizeError);
        const code = run.error.includes('requires an imatrix') ? 'E_QUANT_IMATRIX' : 'E_QUANT_REQUANTIZE';
        expect((err as QuantizeError).code).toBe(code);
        results.refusedAlike++;
        return;
      }
      const ours = await quantizeBytes(bytes, options);
      const same = sha(ours) === run.sha256;
      if (!same) expect.fail(`differs from llama.cpp: ${await firstDifference(ours, run)}`);
      results.equal++;
    });
  }
  it('covers every run', () => {
    // Printed for the report; the count is what the manifest holds.
    console.log(`oracle: ${results.equal} files byte-identical, ${results.refusedAlike} refused like llama.cpp`);
    expect(results.equal + results.refusedAlike).toBe(manifest.runs.length);
  });
});
