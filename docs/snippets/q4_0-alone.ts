// A project that needs only Q4_0: one import, and the bundle carries Q4_0's code and nothing else of nibble's formats.
import { q4_0 } from '@nibble/formats/q4_0';

// Reused buffers: quantizeInto and dequantizeInto allocate nothing, so this loop can run per frame or per request.
const rowLength = 4096;
const rows = 8;
const weights = new Float32Array(rows * rowLength).map((_, i) => Math.cos(i / 7) * 0.05);
const blocks = new Uint8Array((weights.length / q4_0.info.blockSize) * q4_0.info.bytesPerBlock);
const decoded = new Float32Array(weights.length);

q4_0.quantizeInto(weights, blocks, { rowLength });
q4_0.dequantizeInto(blocks, decoded);
console.log(`${q4_0.name}: ${weights.byteLength} bytes of f32 -> ${blocks.byteLength} bytes; ${q4_0.errorBound}`);
