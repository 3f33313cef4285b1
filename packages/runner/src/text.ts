/**
 * What the runner needs from a tokenizer, and the adapter from `@nibble/tokenizer`.
 */
import { tokenizerMetadata } from '@nibble/gguf';
import { fromGgufMetadata } from '@nibble/tokenizer';

/** An incremental detokenizer: text in whole characters only, never half a UTF-8 sequence. */
export interface StreamDecoder {
  /** Adds a token and returns the text it completes (may be ''). */
  push(id: number): string;
  /** Whether bytes of an unfinished character are held back. */
  readonly pending: boolean;
  /** Ends the stream: held-back bytes come out (as U+FFFD if they never formed a character). */
  flush(): string;
}

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
  tokenToBytes(id: number, special?: boolean): Uint8Array;
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
      // Through the stream decoder, so that decode(ids) is exactly what generation streamed.
      const d = new Utf8Stream(tok, tok.addSpacePrefix);
      let text = '';
      for (const id of ids) text += d.push(id);
      return text + d.flush();
    },
    isEndOfGeneration: (id) => id === eos || id === eot || id === bos,
    streamDecoder: (previous) =>
      new Utf8Stream(tok, tok.addSpacePrefix && (previous === undefined || previous === bos)),
  };
}

/** Token bytes through a streaming TextDecoder; tracks whether a UTF-8 sequence is open. */
class Utf8Stream implements StreamDecoder {
  readonly #tok: TokenizerCore;
  readonly #dec = new TextDecoder('utf-8');
  #stripSpace: boolean;
  // Continuation bytes still expected by the last lead byte seen.
  #need = 0;

  constructor(tok: TokenizerCore, stripSpace: boolean) {
    this.#tok = tok;
    this.#stripSpace = stripSpace;
  }

  get pending(): boolean {
    return this.#need > 0;
  }

  push(id: number): string {
    let bytes = this.#tok.tokenToBytes(id, false);
    if (bytes.length === 0) return '';
    if (this.#stripSpace) {
      if (bytes[0] === 0x20) bytes = bytes.subarray(1);
      this.#stripSpace = false;
    }
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if ((b & 0xc0) === 0x80) this.#need = this.#need > 0 ? this.#need - 1 : 0;
      else this.#need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
    }
    return this.#dec.decode(bytes, { stream: true });
  }

  flush(): string {
    this.#need = 0;
    return this.#dec.decode();
  }
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
