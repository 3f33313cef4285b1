// Test-only helpers that read the repository's fixtures/ folder (never ../shared).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseGguf, tokenizerMetadata } from '@nibble/gguf';
import { fromGgufMetadata } from '../loaders.js';
import type { Tokenizer } from '../tokenizer.js';
import type { TokenizerMetadata } from '../types.js';

/** Absolute path of a file under the repository's fixtures/ folder. */
export function fixturePath(rel: string): string {
  return fileURLToPath(new URL(`../../../../fixtures/${rel}`, import.meta.url));
}

export function readBytes(rel: string): Uint8Array {
  const b = readFileSync(fixturePath(rel));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function readText(rel: string): string {
  return readFileSync(fixturePath(rel), 'utf8');
}

/** The tokenizer metadata of `fixtures/vocab/ggml-vocab-NAME.gguf`, through @nibble/gguf. */
export function vocabMetadata(name: string): TokenizerMetadata {
  return tokenizerMetadata(parseGguf(readBytes(`vocab/ggml-vocab-${name}.gguf`)));
}

const loaded = new Map<string, Tokenizer>();

/** The tokenizer of `fixtures/vocab/ggml-vocab-NAME.gguf` (one instance per test file). */
export function vocabTokenizer(name: string): Tokenizer {
  let t = loaded.get(name);
  if (!t) {
    t = fromGgufMetadata(vocabMetadata(name));
    loaded.set(name, t);
  }
  return t;
}

/** llama.cpp's test cases of a vocabulary: inputs (`.inp`) and expected ids (`.out`). */
export function vocabCases(name: string): { text: string; ids: number[] }[] {
  const inputs = readText(`vocab/ggml-vocab-${name}.gguf.inp`).split('\n__ggml_vocab_test__\n');
  inputs.pop(); // the file ends with a separator
  const lines = readText(`vocab/ggml-vocab-${name}.gguf.out`).split('\n');
  return inputs.map((text, i) => ({
    text,
    ids: lines[i]
      .trim()
      .split(' ')
      .filter((s) => s !== '')
      .map(Number),
  }));
}

/** Vocabularies with an `.inp`/`.out` suite. */
export const SUITES = [
  'llama-spm',
  'bert-bge',
  'gpt-2',
  'mpt',
  'starcoder',
  'deepseek-coder',
  'deepseek-llm',
  'llama-bpe',
  'qwen2',
];

/** Every vocabulary in fixtures/vocab. */
export const VOCABS = [...SUITES, 'baichuan', 'gpt-neox'];
