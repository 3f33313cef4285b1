// llama.cpp's LSTRIP / RSTRIP token attributes: a special token swallows the whitespace before / after it when
// special tokens are parsed (Phi-3 files get RSTRIP by name; llama.cpp's own output is checked in the runner's
// chat-prompt parity test).
import { describe, expect, it } from 'vitest';
import { fromGgufMetadata } from './loaders.js';
import { vocabMetadata } from './test/fixtures.js';
import { Tokenizer } from './tokenizer.js';

describe('special-token whitespace attributes', () => {
  const tokens = ['<unk>', '<s>', '</s>', '<|end|>', 'a', 'b', '\u0120', '\u010a']; // byte-level ' ' and '\n'
  const base = {
    kind: 'bpe' as const,
    pre: 'gpt-2',
    tokens,
    merges: [],
    tokenTypes: Int32Array.of(2, 3, 3, 3, 1, 1, 1, 1),
  };
  const ids = (tok: Tokenizer, text: string) => tok.encode(text, { parseSpecial: true });

  it('rstrip drops the whitespace after the token, lstrip the whitespace before it', () => {
    expect(ids(new Tokenizer(base), 'a <|end|>\n b')).toEqual([4, 6, 3, 7, 6, 5]);
    expect(ids(new Tokenizer({ ...base, rstrip: [3] }), 'a <|end|>\n b')).toEqual([4, 6, 3, 5]);
    expect(ids(new Tokenizer({ ...base, lstrip: [3] }), 'a <|end|>\n b')).toEqual([4, 3, 7, 6, 5]);
    // Only when special tokens are parsed: otherwise the token is text.
    expect(new Tokenizer({ ...base, rstrip: [3] }).encode('<|end|>\n').includes(3)).toBe(false);
  });

  it("a Phi-3 file's special tokens get rstrip by name, <s>, <unk> and <|endoftext|> excepted", () => {
    const meta = vocabMetadata('llama-spm');
    const plain = fromGgufMetadata(meta);
    const phi = fromGgufMetadata(meta, { modelName: 'Phi-3 mini' });
    expect(phi.encode('</s>\n hi', { parseSpecial: true })).toEqual(phi.encode('</s>hi', { parseSpecial: true }));
    expect(plain.encode('</s>\n hi', { parseSpecial: true })).not.toEqual(
      plain.encode('</s>hi', { parseSpecial: true }),
    );
    expect(phi.encode('<s>\n hi', { parseSpecial: true })).toEqual(plain.encode('<s>\n hi', { parseSpecial: true }));
  });
});
