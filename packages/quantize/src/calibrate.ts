/**
 * Calibration: run a model over text and collect an importance matrix, as llama-imatrix does. The text is tokenized
 * once (with BOS), cut into chunks of `contextSize` tokens; each chunk starts from an empty cache with its first token
 * replaced by BOS, and every weight of every layer (`blk.*`) sees its inputs accumulated.
 *
 * The model is anything with the runner's shape (`@nibble/runner`'s `Model`): this package does not depend on it.
 */
import { QuantizeError } from './errors.js';
import { type Imatrix, ImatrixCollector } from './imatrix.js';

/** The activations entering one weight during one run (the runner's `ObservedInput`). */
export interface ObservedActivations {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/** What calibration needs of a model: `@nibble/runner`'s `Model` has it. */
export interface CalibrationModel {
  readonly contextSize: number;
  readonly tokenizer: { encode(text: string, addSpecial: boolean): number[]; readonly bosId: number | undefined };
  createSession(): Promise<{
    reset(position?: number): void;
    evaluateObserved(
      ids: ArrayLike<number>,
      onInputs: (inputs: ReadonlyMap<string, ObservedActivations>) => void,
    ): Promise<void>;
    dispose(): void;
  }>;
}

/** Options of {@link computeImatrix}. */
export interface ComputeImatrixOptions {
  /** Tokens per chunk (llama-imatrix's `-c`). Default 512, at most the model's context. */
  contextSize?: number;
  /** Chunks to evaluate (`--chunks`). Default: every whole chunk of the text. */
  chunks?: number;
  /** Name recorded in `imatrix.datasets`. Default `'calibration'`. */
  dataset?: string;
  /** Also collect `output.weight` (llama-imatrix's `--process-output`). Default false. */
  processOutput?: boolean;
  /** Called after each chunk. */
  onProgress?(chunk: number, chunks: number): void;
  /** Aborts between chunks. */
  signal?: AbortSignal;
}

/**
 * Runs `model` over `text` and returns the importance matrix of its weights, llama-imatrix's way (see the module
 * note). Needs at least two chunks of text, as llama-imatrix does.
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * import { loadModel } from '@nibble/runner/node';
 * const model = await loadModel('stories260K.gguf', { backend: 'js' });
 * const im = await computeImatrix(model, text, { contextSize: 128, dataset: 'tinyshakespeare.txt' });
 * ```
 */
export async function computeImatrix(
  model: CalibrationModel,
  text: string,
  options: ComputeImatrixOptions = {},
): Promise<Imatrix> {
  const ctx = options.contextSize ?? Math.min(512, model.contextSize);
  if (!Number.isSafeInteger(ctx) || ctx < 2 || ctx > model.contextSize) {
    throw new QuantizeError('E_QUANT_OPTION', `contextSize ${ctx} must be an integer in 2..${model.contextSize}`);
  }
  const tokens = model.tokenizer.encode(text, true);
  if (tokens.length < 2 * ctx) {
    throw new QuantizeError(
      'E_QUANT_OPTION',
      `the text has ${tokens.length} tokens; calibration with chunks of ${ctx} needs at least ${2 * ctx}`,
    );
  }
  const whole = Math.floor(tokens.length / ctx);
  const want = options.chunks ?? whole;
  if (!Number.isSafeInteger(want) || want < 1) {
    throw new QuantizeError('E_QUANT_OPTION', `chunks must be a positive integer, got ${want}`);
  }
  const n = Math.min(want, whole);
  const bos = model.tokenizer.bosId;
  const collector = new ImatrixCollector();
  const keep = (name: string) =>
    name.startsWith('blk.') || (options.processOutput === true && name === 'output.weight');
  const session = await model.createSession();
  try {
    const ids = new Int32Array(ctx);
    for (let c = 0; c < n; c++) {
      options.signal?.throwIfAborted();
      for (let i = 0; i < ctx; i++) ids[i] = tokens[c * ctx + i];
      if (bos !== undefined) ids[0] = bos;
      session.reset();
      await session.evaluateObserved(ids, (inputs) => {
        for (const [name, x] of inputs) if (keep(name)) collector.add(name, x.data, x.rows, x.cols);
      });
      options.onProgress?.(c + 1, n);
    }
  } finally {
    session.dispose();
  }
  return collector.toImatrix({ datasets: [options.dataset ?? 'calibration'], chunkCount: n, chunkSize: ctx });
}
