// The barrel of formats: one line per format file. `formats`, `getFormat` and `usesImportance` (index.ts) are built
// from what these lines export, so a new format is this line, its file and its `exports` entry in package.json.
export { bf16, f16, f32 } from './float.js';
export { int8, int8Layout } from './int8.js';
export { IQ4NL_VALUES, iq4_nl, iq4_nlRef, iq4_xs } from './iq4.js';
export { mxfp4 } from './mxfp4.js';
export { q1_0 } from './q1_0.js';
export { q2_K } from './q2_k.js';
export { q3_K } from './q3_k.js';
export { q4_0 } from './q4_0.js';
export { q4_1 } from './q4_1.js';
export { q4_K } from './q4_k.js';
export { q5_0 } from './q5_0.js';
export { q5_1 } from './q5_1.js';
export { q5_K } from './q5_k.js';
export { q6_K } from './q6_k.js';
export { q8_0, q8_1 } from './q8_0.js';
export { q8_K } from './q8_k.js';
export { tq1_0, tq2_0 } from './ternary.js';
