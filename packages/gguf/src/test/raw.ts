/**
 * A minimal hand-written GGUF byte builder for tests: it writes exactly the fields it is told to, so tests can build
 * malformed files that the real writer refuses to produce.
 */
export class Raw {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: number | bigint): this {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) {
      this.parts.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.parts.push(...b);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.parts.push(...b);
    return this;
  }
  bytes(n: number, fill = 0): this {
    for (let i = 0; i < n; i++) this.parts.push(fill);
    return this;
  }
  padTo(a: number): this {
    while (this.parts.length % a !== 0) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  build(): Uint8Array {
    return new Uint8Array(this.parts);
  }
}

/** "GGUF", version, tensor count, kv count. */
export function header(version: number, tensors: number | bigint, kvs: number | bigint): Raw {
  return new Raw().u8(0x47).u8(0x47).u8(0x55).u8(0x46).u32(version).u64(tensors).u64(kvs);
}
