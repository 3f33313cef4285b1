#!/usr/bin/env python3
"""ggml as the peer of benchmarks/formats/bench.ts: quantize / dequantize throughput of ggml's own code, same input.

Loads the prebuilt x86-64 libggml-base.so that node-llama-cpp ships (@node-llama-cpp/linux-x64, a benchmarks/
dependency) through ctypes and times, one thread, median of runs:

  quantize:   ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, NULL), the call llama-quantize makes
              (no importance matrix). Q8_1 and Q8_K have no quantize_chunk case (they are only ever activation
              formats), so for those the type's from_float_ref row function is timed instead.
  dequantize: the type's to_float from ggml_get_type_traits(type).

This library is ggml-base, built without architecture flags: its quantize and to_float functions are the
portable reference C of ggml-quants.c (and ggml.c's fp16/bf16 row converters), compiled for baseline x86-64
(SSE2, no AVX, no F16C), not the SIMD kernels of the CPU backend (libggml-cpu-*.so).

Before timing anything it checks that the struct layout read below is right: to_float of ggml's golden Q4_0 bytes
must reproduce the golden dequantized file byte for byte, and every type's traits must name the expected type.

  python3 benchmarks/formats/ggml_peer.py --input x.f32 [--row-length 4096] [--runs 5] [--types q4_0,q8_0] [--lib L]
                                         [--save-quantized out.bin]

Prints one JSON object on stdout. Exits 2 (with a message on stderr) when the library cannot be found or fails
the check. Needs only the Python standard library.
"""
import argparse
import ctypes
import glob
import json
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

# nibble format name -> ggml_type id (ggml.h's enum ggml_type).
TYPE_IDS = {
    'f32': 0, 'f16': 1, 'q4_0': 2, 'q4_1': 3, 'q5_0': 6, 'q5_1': 7, 'q8_0': 8, 'q8_1': 9, 'q2_K': 10,
    'q3_K': 11, 'q4_K': 12, 'q5_K': 13, 'q6_K': 14, 'q8_K': 15, 'iq4_nl': 20, 'iq4_xs': 23, 'bf16': 30,
    'tq1_0': 34, 'tq2_0': 35, 'mxfp4': 39,
}
# Types ggml_quantize_chunk aborts on (it has no case for them): time from_float_ref instead.
NO_QUANTIZE_CHUNK = {'q8_1', 'q8_K'}

TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class TypeTraits(ctypes.Structure):
    """struct ggml_type_traits of ggml.h: name, block size, interleave, bytes per block, quantized flag, to_float,
    from_float_ref. Checked against golden data in check_layout() before any figure is trusted."""
    _fields_ = [
        ('type_name', ctypes.c_char_p),
        ('blck_size', ctypes.c_int64),
        ('blck_size_interleave', ctypes.c_int64),
        ('type_size', ctypes.c_size_t),
        ('is_quantized', ctypes.c_bool),
        ('to_float', ctypes.c_void_p),
        ('from_float_ref', ctypes.c_void_p),
    ]


def fail(msg):
    print(f'ggml_peer: {msg}', file=sys.stderr)
    sys.exit(2)


def find_lib(explicit):
    if explicit:
        return explicit
    patterns = [
        os.path.join(root, 'benchmarks/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so'),
        os.path.join(root, 'node_modules/.pnpm/@node-llama-cpp+linux-x64@*/node_modules/@node-llama-cpp/linux-x64/'
                           'bins/linux-x64/libggml-base.so'),
    ]
    for p in patterns:
        hits = sorted(glob.glob(p))
        if hits:
            return hits[0]
    return None


def load(path):
    g = ctypes.CDLL(path)
    g.ggml_quantize_chunk.restype = ctypes.c_size_t
    g.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    g.ggml_row_size.restype = ctypes.c_size_t
    g.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    g.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    g.ggml_get_type_traits.argtypes = [ctypes.c_int]
    for name in ('ggml_version', 'ggml_commit'):
        if hasattr(g, name):
            getattr(g, name).restype = ctypes.c_char_p
    return g


def buffer(nbytes):
    return (ctypes.c_uint8 * nbytes)()


def check_layout(g):
    """to_float of ggml's golden Q4_0 bytes must give ggml's golden dequantized values exactly."""
    for name, t in TYPE_IDS.items():
        tr = g.ggml_get_type_traits(t).contents
        if tr.type_name is None or tr.type_name.decode() != name:
            fail(f'traits of type {t} name {tr.type_name!r}, expected {name!r}: struct layout mismatch')
    gold = os.path.join(root, 'fixtures/golden/ggml-synthetic/q4_0')
    q = open(os.path.join(gold, 'gauss.bin'), 'rb').read()
    want = open(os.path.join(gold, 'gauss.deq.f32'), 'rb').read()
    tr = g.ggml_get_type_traits(TYPE_IDS['q4_0']).contents
    if tr.blck_size != 32 or tr.type_size != 18 or not tr.is_quantized or not tr.to_float:
        fail(f'q4_0 traits read as blck_size={tr.blck_size} type_size={tr.type_size}: struct layout mismatch')
    src = (ctypes.c_uint8 * len(q)).from_buffer_copy(q)
    out = buffer(len(want))
    TO_FLOAT(tr.to_float)(ctypes.addressof(src), ctypes.addressof(out), len(want) // 4)
    if bytes(out) != want:
        fail('to_float(q4_0) of the golden bytes does not reproduce gauss.deq.f32: struct layout mismatch')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--input', required=True, help='raw little-endian f32 values')
    ap.add_argument('--row-length', type=int, default=4096)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--types', default=','.join(TYPE_IDS))
    ap.add_argument('--lib')
    ap.add_argument('--save-quantized', help='write the quantized bytes of the (single) type here, for comparison')
    a = ap.parse_args()

    path = find_lib(a.lib)
    if not path or not os.path.exists(path):
        fail('libggml-base.so of @node-llama-cpp/linux-x64 not found')
    g = load(path)
    check_layout(g)

    data = open(a.input, 'rb').read()
    n = len(data) // 4
    if n == 0 or n % a.row_length:
        fail(f'input holds {n} values, not a positive multiple of the row length {a.row_length}')
    nrows = n // a.row_length
    x = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)  # [nrows, row_length] f32
    del data
    y = buffer(n * 4)  # [nrows, row_length] f32, dequantized
    gb = n * 4 / 1e9

    rows = []
    for name in a.types.split(','):
        if name not in TYPE_IDS:
            continue
        t = TYPE_IDS[name]
        tr = g.ggml_get_type_traits(t).contents
        q = buffer(g.ggml_row_size(t, a.row_length) * nrows)
        use_chunk = name not in NO_QUANTIZE_CHUNK
        if use_chunk:
            def quantize():
                g.ggml_quantize_chunk(t, ctypes.addressof(x), ctypes.addressof(q), 0, nrows, a.row_length, None)
        elif tr.from_float_ref:
            from_float = FROM_FLOAT(tr.from_float_ref)

            def quantize():
                from_float(ctypes.addressof(x), ctypes.addressof(q), n)
        else:
            quantize = None
        to_float = TO_FLOAT(tr.to_float) if tr.to_float else None
        tq, td, cq, cd = [], [], [], []
        for _ in range(a.runs):
            if quantize:
                c0, t0 = time.process_time(), time.perf_counter()
                quantize()
                tq.append(time.perf_counter() - t0)
                cq.append(time.process_time() - c0)
            if to_float:
                c0, t0 = time.process_time(), time.perf_counter()
                to_float(ctypes.addressof(q), ctypes.addressof(y), n)
                td.append(time.perf_counter() - t0)
                cd.append(time.process_time() - c0)
        if a.save_quantized and tq:
            with open(a.save_quantized, 'wb') as f:
                f.write(bytes(q))
        rate = lambda ts: gb / statistics.median(ts) if ts else None  # noqa: E731
        rows.append({
            'format': name,
            'quantizePath': 'ggml_quantize_chunk' if use_chunk else ('from_float_ref' if quantize else None),
            'quantizeGBs': rate(tq),
            'dequantizeGBs': rate(td),
            'quantizeCpuGBs': rate(cq),
            'dequantizeCpuGBs': rate(cd),
        })
        print(f'ggml {name}: done', file=sys.stderr)

    version = g.ggml_version().decode() if hasattr(g, 'ggml_version') else None
    commit = g.ggml_commit().decode() if hasattr(g, 'ggml_commit') else None
    json.dump({'library': 'libggml-base.so of @node-llama-cpp/linux-x64 (x86-64)', 'ggmlVersion': version,
               'ggmlCommit': commit, 'threads': 1, 'values': n, 'rowLength': a.row_length, 'runs': a.runs,
               'layoutCheck': 'to_float(q4_0) reproduces golden gauss.deq.f32', 'rows': rows}, sys.stdout)
    print()


if __name__ == '__main__':
    main()
