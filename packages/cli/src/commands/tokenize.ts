/**
 * `nibble tokenize FILE (--text T | --inp F.inp) [--json]`: token ids of a text with the tokenizer of a GGUF file, a
 * llama2.c `tokenizer.bin` or a Hugging Face `tokenizer.json`. `--inp` reads llama.cpp's test-case format (cases
 * separated by `\n__ggml_vocab_test__\n`, no BOS, no special parsing) and prints one line of ids per case, in the
 * `.out` format (every id preceded by a space), so the output can be compared with llama.cpp's `.out` files.
 */
import { readFile } from 'node:fs/promises';
import { tokenizerMetadata } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import {
  fromGgufMetadata,
  fromHfTokenizerJson,
  fromLlama2cTokenizer,
  type Tokenizer,
  TokenizerError,
} from '@nibble/tokenizer';
import { parseOrHelp, UsageError } from '../args.js';
import { tokenizeSpec } from '../specs.js';

const SEPARATOR = '\n__ggml_vocab_test__\n';

async function loadTokenizer(path: string): Promise<Tokenizer> {
  const head = new Uint8Array(await readFile(path).then((b) => b.subarray(0, 4)));
  if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) {
    // GGUF: only the header is read
    const file = await openGgufFile(path);
    try {
      return fromGgufMetadata(tokenizerMetadata(file));
    } finally {
      await file.close();
    }
  }
  if (path.endsWith('.json')) return fromHfTokenizerJson(await readFile(path, 'utf8'));
  const bytes = await readFile(path);
  return fromLlama2cTokenizer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(tokenizeSpec, args);
  if (!p) return 0;
  const [path] = p.positionals;
  const { text, inp, json } = p.values;
  if ((text === undefined) === (inp === undefined)) {
    throw new UsageError("give exactly one of --text and --inp ('nibble tokenize --help')");
  }

  let tok: Tokenizer;
  try {
    tok = await loadTokenizer(path);
  } catch (e) {
    // the tokenizer package has its own error type (it depends on no other nibble package)
    if (e instanceof TokenizerError) throw new TokenizerError(e.code, `${path}: ${e.message}`);
    throw e;
  }

  if (text !== undefined) {
    const ids = tok.encode(text, {
      addSpecial: p.values['add-special'],
      parseSpecial: p.values['parse-special'],
    });
    if (json) console.log(JSON.stringify({ ids, pieces: ids.map((id) => tok.tokenToPiece(id)) }));
    else console.log(ids.join(' '));
    return 0;
  }

  const cases = (await readFile(inp!, 'utf8')).split(SEPARATOR);
  if (cases.length > 1 && cases[cases.length - 1] === '') cases.pop(); // the file ends with a separator
  const all = cases.map((c) => tok.encode(c));
  if (json) console.log(JSON.stringify(all));
  else console.log(all.map((ids) => ids.map((id) => ` ${id}`).join('')).join('\n'));
  return 0;
}
