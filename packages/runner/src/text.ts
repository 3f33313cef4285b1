/**
 * What the runner needs from a tokenizer, and the adapter from `@nibble/tokenizer`.
 */
import { tokenizerMetadata } from '@nibble/gguf';
import {
  fromGgufMetadata,
  type StreamDecoderOptions,
  type StreamDecoder as TokenizerStreamDecoder,
} from '@nibble/tokenizer';

/**
 * The incremental detokenizer the runner streams generated text through: `@nibble/tokenizer`'s, text in whole
 * characters only, never half a UTF-8 sequence.
 */
export type StreamDecoder = Pick<TokenizerStreamDecoder, 'push' | 'pending' | 'flush'>;

/** The tokenizer as the runner uses it. */
export interface RunnerTokenizer {
  /** Text to ids; `addSpecial` adds BOS (and EOS) as the model's metadata says. */
  encode(text: string, addSpecial: boolean): number[];
  /** Text to ids with special tokens in the text (`<|im_start|>`) parsed as such, nothing added: a rendered chat. */
  encodeSpecial(text: string): number[];
  /** Ids to text, special tokens dropped, SentencePiece's leading space removed (as after BOS). */
  decode(ids: readonly number[]): string;
  /** A fresh incremental decoder; `previous` is the token before the first one pushed (e.g. BOS). */
  streamDecoder(previous?: number): StreamDecoder;
  /** Whether a sampled id ends the generation (EOS, EOT, or BOS: a model that starts a new document has finished). */
  isEndOfGeneration(id: number): boolean;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly vocabSize: number;
}

/** The parts of `@nibble/tokenizer`'s Tokenizer the adapter uses. */
export interface TokenizerCore {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly eotId: number;
  readonly addSpacePrefix: boolean;
  encode(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  decoder(options?: StreamDecoderOptions): StreamDecoder;
}

/**
 * Wraps a `@nibble/tokenizer` Tokenizer for the runner: BOS as the vocabulary asks, special tokens never shown in
 * generated text, and SentencePiece's leading space dropped only right after BOS (as run.c and llama.cpp print it),
 * so a continuation of a text prompt keeps its first space.
 *
 * @example
 * ```ts
 * const tok = adaptTokenizer(fromGgufMetadata(tokenizerMetadata(file)));
 * tok.encode('Once upon a time', true); // [1, 403, 407, 261, 378]
 * ```
 */
export function adaptTokenizer(tok: TokenizerCore): RunnerTokenizer {
  const bos = tok.bosId >= 0 ? tok.bosId : undefined;
  const eos = tok.eosId >= 0 ? tok.eosId : undefined;
  const eot = tok.eotId >= 0 ? tok.eotId : undefined;
  return {
    vocabSize: tok.vocabSize,
    bosId: bos,
    eosId: eos,
    encode: (text, addSpecial) => tok.encode(text, { addSpecial, parseSpecial: false }),
    encodeSpecial: (text) => tok.encode(text, { addSpecial: false, parseSpecial: true }),
    decode: (ids) => {
      // Through the stream decoder, so that decode(ids) is exactly what generation streamed after `ids[0]`.
      const afterBos = ids.length > 0 && ids[0] === bos;
      const d = tok.decoder({ special: false, stripLeadingSpace: tok.addSpacePrefix });
      let text = '';
      for (let i = afterBos ? 1 : 0; i < ids.length; i++) text += d.push(ids[i]);
      return text + d.flush();
    },
    isEndOfGeneration: (id) => id === eos || id === eot || id === bos,
    streamDecoder: (previous) =>
      tok.decoder({
        special: false,
        stripLeadingSpace: tok.addSpacePrefix && (previous === undefined || previous === bos),
      }),
  };
}

/**
 * The tokenizer stored in a GGUF file, adapted for the runner.
 *
 * @example
 * ```ts
 * const tok = fromGgufFile(await openGguf(bytes));
 * ```
 */
export function fromGgufFile(file: { readonly metadata: ReadonlyMap<string, unknown> }): RunnerTokenizer {
  const name = file.metadata.get('general.name');
  return adaptTokenizer(
    fromGgufMetadata(tokenizerMetadata(file as Parameters<typeof tokenizerMetadata>[0]), {
      modelName: typeof name === 'string' ? name : undefined,
    }),
  );
}
