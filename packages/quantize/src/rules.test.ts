// llama.cpp's type choices for real llama shapes (fixtures/quantize/schemas: llama_quant_compute_types, the test
// hook of llama_tensor_get_type, on the tensor lists of LLaMA 7B..65B, Llama-2 70B, Llama-3 1B/3B/8B) against ours.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPreset } from './presets.js';
import { allowsQuantization, fallbackType, llamaOrder, nDims, tensorCategory } from './rules.js';
import { llamaShapes, presetSizes } from './sizes.js';

const dir = fileURLToPath(new URL('../../../fixtures/quantize/schemas/', import.meta.url));

interface Section {
  preset: string;
  defaultType: string;
  overrides: Map<string, string>;
}

function parseSchema(text: string): { header: Record<string, string>; sections: Section[] } {
  const header: Record<string, string> = {};
  const sections: Section[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# n_embd=')) {
      for (const kv of line.slice(2).split(', ')) {
        const [k, v] = kv.split('=');
        header[k] = v;
      }
    } else if (line.startsWith('[')) {
      const m = /^\[(\w+)\] (\w+)$/.exec(line);
      if (!m) throw new Error(`bad section line ${line}`);
      sections.push({ preset: m[1], defaultType: m[2], overrides: new Map() });
    } else if (line.length > 0 && !line.startsWith('#')) {
      const [name, type] = line.split(' ');
      sections[sections.length - 1].overrides.set(name, type);
    }
  }
  return { header, sections };
}

describe("per-tensor types equal llama.cpp's for real llama shapes", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.schema'));
  it('has a schema for every shape', () => {
    expect(files.map((f) => f.replace('.schema', '')).sort()).toEqual(llamaShapes.map((s) => s.name).sort());
  });
  for (const shape of llamaShapes) {
    it(`${shape.name}: every preset, every tensor`, () => {
      const { header, sections } = parseSchema(readFileSync(`${dir}${shape.name}.schema`, 'utf8'));
      // The shape nibble sizes is the one llama.cpp was given.
      expect(header).toEqual({
        n_embd: String(shape.nEmbd),
        n_ff: String(shape.nFf),
        n_vocab: String(shape.nVocab),
        n_layer: String(shape.nLayer),
        n_head: String(shape.nHead),
        n_head_kv: String(shape.nHeadKv),
        tied: String(shape.tied),
      });
      let compared = 0;
      for (const s of sections) {
        expect(findPreset(s.preset)?.defaultType, s.preset).toBe(s.defaultType);
        const [size] = presetSizes(shape, [s.preset]);
        const ours = new Map<string, string>();
        for (const t of size.plan.tensors) {
          if (!allowsQuantization(t.name, [...t.shape].reverse())) continue;
          if (t.to !== s.defaultType) ours.set(t.name, t.to);
          compared++;
        }
        expect([...ours].sort(), `${shape.name} ${s.preset}`).toEqual([...s.overrides].sort());
      }
      expect(compared).toBeGreaterThan(sections.length * shape.nLayer * 7);
    });
  }
});

describe('rule helpers', () => {
  it("orders tensors like llama.cpp's weight_name_comparer", () => {
    const names = [
      'output.weight',
      'blk.10.attn_q.weight',
      'blk.2.ffn_up.weight',
      'blk.2.attn_q.weight',
      'token_embd.weight',
    ];
    expect([...names].sort(llamaOrder)).toEqual([
      'output.weight',
      'token_embd.weight',
      'blk.2.attn_q.weight',
      'blk.2.ffn_up.weight',
      'blk.10.attn_q.weight',
    ]);
  });
  it('counts dimensions like ggml_n_dims', () => {
    expect(nDims([256, 1])).toBe(1);
    expect(nDims([256, 2])).toBe(2);
    expect(nDims([256, 1, 4])).toBe(3);
    expect(allowsQuantization('blk.0.attn_q.weight', [256, 1])).toBe(false);
  });
  it('falls back for rows that do not fit the block', () => {
    expect(fallbackType('q4_K', 64)).toBe('q5_0');
    expect(fallbackType('q5_K', 96)).toBe('q5_1');
    expect(fallbackType('q6_K', 96)).toBe('q8_0');
    expect(fallbackType('q2_K', 64)).toBe('q4_0');
    expect(fallbackType('q3_K', 64)).toBe('q4_0');
    expect(fallbackType('iq4_xs', 64)).toBe('iq4_nl');
    expect(fallbackType('tq1_0', 96)).toBe('q4_0');
    expect(fallbackType('q4_0', 172)).toBe('f16');
    expect(fallbackType('q4_K', 80)).toBe('f16');
    expect(fallbackType('q4_K', 512)).toBe('q4_K');
  });
  it('keeps norms, routers and position embeddings', () => {
    expect(allowsQuantization('blk.0.attn_norm.weight', [64, 2])).toBe(false);
    expect(allowsQuantization('blk.0.ffn_gate_inp.weight', [64, 8])).toBe(false);
    expect(allowsQuantization('position_embd.weight', [64, 8])).toBe(false);
    expect(allowsQuantization('blk.0.attn_q.bias', [64, 8])).toBe(false);
    expect(tensorCategory('blk.0.attn_qkv.weight')).toBe('attn_qkv');
  });
});
