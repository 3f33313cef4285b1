import { NibbleError } from '@nibble/tensor';

/**
 * Stable codes of {@link QuantizeError}. New codes may be added; existing ones never change meaning.
 *
 * - `E_QUANT_PRESET`: an unknown preset or type name, or one nibble has no codec for.
 * - `E_QUANT_TYPE`: a type that cannot store a tensor (an activation-only format, or rows that do not fit its block).
 * - `E_QUANT_REQUANTIZE`: a tensor that is already quantized, without `allowRequantize`.
 * - `E_QUANT_VALUE`: a NaN or infinity in a tensor (names the tensor, row and column).
 * - `E_QUANT_IMATRIX`: an importance matrix that is needed and missing, of the wrong size, or not finite.
 * - `E_QUANT_IMATRIX_FORMAT`: an imatrix file that is neither llama-imatrix's GGUF nor its legacy `.dat` layout.
 * - `E_QUANT_OPTION`: an option out of range (threads, a tensor-type pattern).
 */
export type QuantizeErrorCode =
  | 'E_QUANT_PRESET'
  | 'E_QUANT_TYPE'
  | 'E_QUANT_REQUANTIZE'
  | 'E_QUANT_VALUE'
  | 'E_QUANT_IMATRIX'
  | 'E_QUANT_IMATRIX_FORMAT'
  | 'E_QUANT_OPTION';

/**
 * What `@nibble/quantize` throws on purpose: a stable `code` and, where it applies, the tensor it is about.
 *
 * @example
 * ```ts
 * try {
 *   await quantizeModel(file, sink, { preset: 'Q4_K_M' });
 * } catch (e) {
 *   if (e instanceof QuantizeError && e.code === 'E_QUANT_REQUANTIZE') console.error(e.message);
 * }
 * ```
 */
export class QuantizeError extends NibbleError {
  /** The tensor the error is about, when there is one. */
  readonly tensor: string | undefined;
  /** The option that would change the outcome, as the API spells it (`allowRequantize`) and as the CLI does. */
  readonly option: { readonly api: string; readonly flag: string } | undefined;
  constructor(
    code: QuantizeErrorCode,
    message: string,
    tensor?: string,
    options?: { cause?: unknown; option?: { api: string; flag: string } },
  ) {
    super(code, tensor === undefined ? message : `${tensor}: ${message}`, options);
    this.tensor = tensor;
    this.option = options?.option;
  }

  /** The message with the option named as the `nibble` command line spells it (`--allow-requantize`). */
  cliMessage(): string {
    return this.option ? this.message.split(this.option.api).join(this.option.flag) : this.message;
  }
}
