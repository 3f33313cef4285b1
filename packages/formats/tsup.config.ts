import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ["src/index.ts", "src/float.ts", "src/q8_0.ts", "src/q4_0.ts", "src/q4_1.ts", "src/q5_0.ts", "src/q5_1.ts", "src/int8.ts"],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
});
