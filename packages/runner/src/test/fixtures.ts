/** Paths and loaders for the reference data in the repository's fixtures/ folder. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** fixtures/ at the repository root. */
export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '../../../../fixtures');

export function fixturePath(...parts: string[]): string {
  return join(fixturesDir, ...parts);
}

export function readJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

export function readText(...parts: string[]): string {
  return readFileSync(fixturePath(...parts), 'utf8');
}

export function readF32(...parts: string[]): Float32Array {
  const b = readFileSync(fixturePath(...parts));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** llama2.c's greedy run of stories260K from BOS. */
export interface GreedyRef {
  prompt: number[];
  tokens: number[];
}

/** llama2.c's gold texts (test_all.py and doc/stories260K.md). */
export interface GoldCases {
  cases: { id: string; expected_text?: string; expected_stdout?: string }[];
}

/** llama2.c's per-token log-probabilities over the TinyStories sample. */
export interface NllRef {
  stories: { n_tokens: number; tokens: number[]; logprobs: number[]; sum_logprob: number }[];
  total_logprob: number;
  n_predicted: number;
  ppl: number;
}

/** llama.cpp's greedy run (node-llama-cpp). */
export interface NlcGreedy {
  tokens: number[];
  text: string;
}

/** llama.cpp's perplexity over the same ids. */
export interface NlcNll {
  n_predicted: number;
  total_logprob: number;
  ppl: number;
}
