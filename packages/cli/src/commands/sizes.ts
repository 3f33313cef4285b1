/** `nibble sizes`: every preset's size for real llama shapes, from the format table and llama.cpp's rules. */
import { llamaShapes, presetSizes, presets } from '@nibble/quantize';
import { parseOrHelp, UsageError } from '../args.js';
import { sizesSpec } from '../specs.js';
import { formatTable } from '../table.js';

const GiB = 2 ** 30;

export const note = `Why llama.cpp's figures differ: its README sizes (March 2023) predate the f16 scale: Q4_0 then kept an f32
scale per 32 weights, 5.0 bits per weight against 4.5 now (about 10% more), and they are rounded file sizes. The
Llama-3-8B figures of llama-quantize's preset list are GiB of whole files (vocabulary included) and match these to
about 0.01 GiB; its Q2_K_S line repeats the Q2_K size. Sizes here are tensor data (F16 input shapes, norms F32);
a file adds its header and padding, a few MB.`;

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(sizesSpec, args);
  if (!p) return 0;
  const v = p.values;
  const names = v.model ?? llamaShapes.map((s) => s.name);
  const shapes = names.map((n) => {
    const s = llamaShapes.find((x) => x.name === n.toLowerCase());
    if (!s) throw new UsageError(`unknown model '${n}'; models: ${llamaShapes.map((x) => x.name).join(', ')}`);
    return s;
  });
  const wanted = v.preset?.map((p) => {
    const found = presets.find((x) => x.name === p.toUpperCase());
    if (!found) throw new UsageError(`unknown preset '${p}'; presets: ${presets.map((x) => x.name).join(', ')}`);
    return found.name;
  });
  const results = shapes.map((shape) => ({ shape, sizes: presetSizes(shape, wanted) }));
  if (v.json) {
    console.log(
      JSON.stringify(
        results.map(({ shape, sizes }) => ({
          model: shape.name,
          published: shape.published,
          presets: sizes.map((s) => ({
            preset: s.preset,
            bytes: s.bytes,
            bitsPerWeight: s.bitsPerWeight,
            types: Object.fromEntries(s.types),
          })),
        })),
        null,
        2,
      ),
    );
    return 0;
  }
  const is8B = (name: string) => name === 'llama-3.1-8b';
  for (const { shape, sizes } of results) {
    const params = sizes[0].plan.elements;
    console.log(
      `\n${shape.name}: ${(params / 1e9).toFixed(2)}B weights, ${shape.nLayer} layers, ${shape.nHead}/${shape.nHeadKv} heads, vocab ${shape.nVocab}${shape.tied ? ', tied output' : ''}`,
    );
    const rows = sizes.map((s) => {
      const preset = presets.find((p) => p.name === s.preset);
      let published = '';
      if (shape.published && s.preset === 'F16') published = `${shape.published.f16} GB (README)`;
      if (shape.published && s.preset === 'Q4_0') published = `${shape.published.q4} GB 4-bit (README)`;
      if (is8B(shape.name) && preset && /@ Llama-3-8B/.test(preset.description))
        published = `${preset.description.split(',')[0]} (llama-quantize)`;
      return [s.preset, (s.bytes / GiB).toFixed(2), (s.bytes / 1e9).toFixed(2), s.bitsPerWeight.toFixed(2), published];
    });
    console.log(
      formatTable(['preset', 'GiB', 'GB', 'bpw', 'llama.cpp published'], rows, { align: ['l', 'r', 'r', 'r', 'l'] }),
    );
  }
  console.log(`\n${note}`);
  return 0;
}
