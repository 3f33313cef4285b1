import { q4_0 } from '@nibble/formats/q4_0'; // only Q4_0's code ends up in a bundle

// A [2, 64] weight matrix: rows of 64 values, each row quantized on its own in blocks of 32.
const weights = new Float32Array(128).map((_, i) => Math.sin(i) * 0.1);

const bytes = q4_0.quantize(weights, { rowLength: 64 }); // ggml's bytes: 18 per block of 32 values
const back = q4_0.dequantize(bytes); // ggml's floats

let maxError = 0;
for (let i = 0; i < weights.length; i++) maxError = Math.max(maxError, Math.abs(weights[i] - back[i]));
console.log(`${weights.length} values -> ${bytes.length} bytes (${(bytes.length * 8) / weights.length} bits each)`);
console.log(`max |error| ${maxError.toFixed(4)}`);
