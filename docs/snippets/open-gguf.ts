import { generalMetadata, llamaHyperparams } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node'; // in a browser: openGguf(file | blob | url) from '@nibble/gguf'

const file = await openGgufFile('stories260K.gguf'); // reads the header only
console.log(generalMetadata(file).architecture, `${file.tensors.length} tensors`);

const { embeddingLength, blockCount } = llamaHyperparams(file);
console.log(`embedding ${embeddingLength}, ${blockCount} layers`);

const emb = await file.readTensor('token_embd.weight'); // reads this tensor's bytes only
console.log(emb.dtype, emb.shape);
await file.close();
