import { defineConfig } from 'tsup';

export default defineConfig({
  entry: [
    'src/index.ts',
    'src/float.ts',
    'src/q8_0.ts',
    'src/q4_0.ts',
    'src/q4_1.ts',
    'src/q5_0.ts',
    'src/q5_1.ts',
    'src/int8.ts',
    'src/q2_k.ts',
    'src/q3_k.ts',
    'src/q4_k.ts',
    'src/q5_k.ts',
    'src/q6_k.ts',
    'src/q8_k.ts',
    'src/iq4.ts',
    'src/ternary.ts',
    'src/mxfp4.ts',
  ],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
});
