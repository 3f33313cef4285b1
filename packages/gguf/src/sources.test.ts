import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufError, openGguf, tokenizerMetadata } from './index.js';
import { openGgufFile } from './node.js';

const path = 'fixtures/models/stories260K.gguf';
const whole = readFileSync(path);

/** A static server for one file with `Range` support; it records the byte ranges it served. */
function rangeServer(
  body: Buffer,
  ranges = true,
): Promise<{ server: Server; url: string; served: [number, number][] }> {
  const served: [number, number][] = [];
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!ranges || !m) {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
      served.push([0, body.length]);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] === '' ? body.length - 1 : Number(m[2]), body.length - 1);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    served.push([start, end + 1]);
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 });
    res.end(body.subarray(start, end + 1));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/model.gguf`, served });
    });
  });
}

describe('URL source (HTTP range requests)', () => {
  let srv: Awaited<ReturnType<typeof rangeServer>>;
  let plain: Awaited<ReturnType<typeof rangeServer>>;
  beforeAll(async () => {
    srv = await rangeServer(whole);
    plain = await rangeServer(whole, false);
  });
  afterAll(() => {
    srv.server.close();
    plain.server.close();
  });

  it('reads the header with a small first request, then only the tensors asked for', async () => {
    srv.served.length = 0;
    const file = await openGguf(srv.url, { initialReadBytes: 4096 });
    const headerBytes = srv.served.reduce((n, [a, b]) => n + b - a, 0);
    // The header spans ~14 KB of this 1.2 MB file; reads double from 4 KB, so at most ~32 KB are fetched.
    expect(headerBytes).toBeLessThan(4 * file.dataOffset);
    expect(headerBytes).toBeGreaterThanOrEqual(file.headerByteLength);
    expect(tokenizerMetadata(file).tokens.length).toBe(512);
    srv.served.length = 0;
    const info = file.getTensor('blk.3.ffn_up.weight')!;
    const t = await file.readTensor('blk.3.ffn_up.weight');
    expect(srv.served).toEqual([[info.byteOffset, info.byteOffset + info.byteLength]]);
    expect(Buffer.from(t.data).equals(whole.subarray(info.byteOffset, info.byteOffset + info.byteLength))).toBe(true);
  });

  it('accepts a URL object', async () => {
    const file = await openGguf(new URL(srv.url));
    expect(file.tensors.length).toBe(48);
  });

  it('refuses a server that ignores Range instead of downloading the file', async () => {
    await expect(openGguf(plain.url)).rejects.toMatchObject({ code: 'E_GGUF_SOURCE' });
  });

  it('reports HTTP errors and bad files as GgufError', async () => {
    await expect(openGguf(srv.url.replace(/:\d+\//, ':1/'))).rejects.toBeInstanceOf(GgufError);
    const bad = await rangeServer(Buffer.from('not a gguf file at all'));
    try {
      await expect(openGguf(bad.url)).rejects.toMatchObject({ code: 'E_GGUF_MAGIC' });
    } finally {
      bad.server.close();
    }
  });
});

describe('Blob source', () => {
  it('reads the header and tensors from slices', async () => {
    let sliced = 0;
    class CountingBlob extends Blob {
      override slice(start?: number, end?: number): Blob {
        sliced += (end ?? this.size) - (start ?? 0);
        return super.slice(start, end);
      }
    }
    const blob = new CountingBlob([whole]);
    const file = await openGguf(blob, { initialReadBytes: 1024 });
    expect(sliced).toBeLessThan(whole.length / 10);
    const info = file.getTensor('output_norm.weight')!;
    const t = await file.readTensor('output_norm.weight');
    expect(Buffer.from(t.data).equals(whole.subarray(info.byteOffset, info.byteOffset + info.byteLength))).toBe(true);
  });
});

describe('Node file path', () => {
  it('reads through a file handle and closes it', async () => {
    const file = await openGgufFile(path, { initialReadBytes: 512 });
    const info = file.getTensor('token_embd.weight')!;
    const t = await file.readTensor('token_embd.weight');
    expect(Buffer.from(t.data).equals(whole.subarray(info.byteOffset, info.byteOffset + info.byteLength))).toBe(true);
    await file.close();
    await expect(file.readTensor('token_embd.weight')).rejects.toMatchObject({ code: 'E_GGUF_SOURCE' });
  });

  it('reports a missing file as GgufError', async () => {
    await expect(openGgufFile('fixtures/models/missing.gguf')).rejects.toMatchObject({ code: 'E_GGUF_SOURCE' });
  });
});
