/**
 * Before/after for the runner and the JS backend: two checkouts' runners side by side in one process, alternating
 * run by run so that both see the same machine load: prompt and decode tok/s (the runner's own timings), all tokens
 * per CPU-second, and whether both generate the same ids. Each runner gets its own backend instance explicitly
 * (two copies' registries are kept apart by the IR version in the registry key).
 *
 *   # an older checkout's packages in /tmp/old (git archive <rev> packages | tar -x -C /tmp/old) with
 *   # /tmp/old/node_modules/@nibble/<pkg> links to them; run from outside this repository with an empty tsconfig
 *   # (TSX_TSCONFIG_PATH), or tsx's `paths` mapping sends the old copy's @nibble/* imports to this checkout
 *   OLD=/tmp/old/packages/runner/src/node.ts OLD_JS=/tmp/old/packages/backend-js/src/index.ts \
 *   NEW=$REPO/packages/runner/src/node.ts NEW_JS=$REPO/packages/backend-js/src/index.ts \
 *   MODELS=$REPO/fixtures/models/stories260K.gguf RUNS=15 $REPO/node_modules/.bin/tsx --conditions=source ab.ts
 */
interface Stats {
  promptTokens: number;
  generatedTokens: number;
  promptMs: number;
  decodeMs: number;
}
interface Runner {
  loadModel(
    path: string,
    options: { backend: unknown },
  ): Promise<{
    generate(
      prompt: string,
      o: { temperature: number; maxTokens: number },
    ): { collect(): Promise<{ ids: number[]; stats: Stats }> };
  }>;
}
type Ctor = new () => unknown;

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`set ${k}`);
  return v;
};
const A = (await import(env('OLD'))) as Runner;
const AJ = ((await import(env('OLD_JS'))) as { JsBackend: Ctor }).JsBackend;
const B = (await import(env('NEW'))) as Runner;
const BJ = ((await import(env('NEW_JS'))) as { JsBackend: Ctor }).JsBackend;
const models = env('MODELS').split(',');
const runs = Number(process.env.RUNS ?? 15);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const text =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.';
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];

for (const path of models) {
  const engines = [
    {
      name: 'old',
      model: await A.loadModel(path, { backend: new AJ() }),
      p: [] as number[],
      d: [] as number[],
      c: [] as number[],
      ids: '',
    },
    {
      name: 'new',
      model: await B.loadModel(path, { backend: new BJ() }),
      p: [] as number[],
      d: [] as number[],
      c: [] as number[],
      ids: '',
    },
  ];
  // One warm-up round, then `runs` rounds; who goes first alternates.
  for (let r = 0; r <= runs; r++) {
    for (const e of r % 2 ? [engines[1], engines[0]] : engines) {
      const t = cpu();
      const g = await e.model.generate(text, { temperature: 0, maxTokens: 64 }).collect();
      const spent = cpu() - t;
      if (r === 0) continue;
      e.p.push(g.stats.promptTokens / (g.stats.promptMs / 1000));
      e.d.push(g.stats.generatedTokens / (g.stats.decodeMs / 1000));
      e.c.push((g.stats.promptTokens + g.stats.generatedTokens) / spent);
      e.ids = JSON.stringify(g.ids.slice(-64));
    }
  }
  const [o, n] = engines;
  const f = (k: 'p' | 'd' | 'c') =>
    `old ${median(o[k]).toFixed(1)}, new ${median(n[k]).toFixed(1)} (new/old ${(median(n[k]) / median(o[k])).toFixed(3)})`;
  console.log(
    `${path.split('/').pop()}, median of ${runs}: prompt tok/s ${f('p')}; decode tok/s ${f('d')}; tokens per CPU-s ${f('c')}; same ids: ${o.ids === n.ids}`,
  );
}

export {};
