import { it } from 'vitest';
import { GraphBuilder, hostTensor } from '@nibble/tensor';
import { formats } from '@nibble/formats';
import { webgpuNode } from './node.js';
it('time', async () => {
  for (const mv of [{}, { wg: 64 }, { rows: 2 }, { wg: 32, rows: 2 }]) {
  const b = await webgpuNode.create({ matvec: mv });
  console.log(JSON.stringify(mv), b.info.adapter, b.info.subgroups, b.info.subgroupMin, b.info.subgroupMax);
  const time = async (label: string, K: number, build: (g: GraphBuilder, x: any) => any, inputs: any = {}) => {
    const g = new GraphBuilder(); const n = g.param('n', { max: 5 });
    const x = g.input('x', 'f32', [n, K]);
    g.output('y', build(g, x));
    const graph = g.build();
    const xs = new Float32Array(K);
    await b.run(graph, { x: xs, n: 1, ...inputs });
    const t = performance.now();
    for (let i = 0; i < 10; i++) await b.run(graph, { x: xs, n: 1, ...inputs });
    console.log(label, ((performance.now() - t) / 10).toFixed(2), 'ms');
  };
  for (const dt of ['f32', 'q4_0']) {
    for (const K of [64, 1024]) {
      const w = await b.upload(hostTensor(dt as 'f32', [512, K], formats[dt].quantize(new Float32Array(512 * K).fill(0.5), { rowLength: K })));
      await time(`matvec ${dt} 512x${K}`, K, (g, x) => g.matmul(g.weight(w), x));
    }
  }
  b.dispose();
  }
});
