#!/usr/bin/env python3
"""llama.cpp as the peer of benchmarks/quantize/bench.ts: one llama_model_quantize run (the call llama-quantize
makes) through ctypes on the prebuilt libllama of node-llama-cpp 3.21.1, in its own process so that its peak RSS is
its own.

  python3 benchmarks/quantize/llama_peer.py IN OUT PRESET THREADS [--bins DIR]

Prints one JSON object: {"seconds": wall time of the call, "peakRssMB": this process's peak RSS}. Exits 2 when the
library is missing, 1 when llama.cpp refuses.
"""
import ctypes
import glob
import json
import os
import resource
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
FTYPES = {'Q4_0': 2, 'Q4_1': 3, 'Q5_0': 8, 'Q5_1': 9, 'Q8_0': 7, 'Q2_K': 10, 'Q3_K_M': 12, 'Q4_K_S': 14,
          'Q4_K_M': 15, 'Q5_K_M': 17, 'Q6_K': 18, 'IQ4_NL': 25, 'IQ4_XS': 30, 'F16': 1}


class QuantizeParams(ctypes.Structure):
    """struct llama_model_quantize_params of llama.h (80fb11a); checked against the library's defaults below."""
    _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int), ('output_tensor_type', ctypes.c_int),
                ('token_embedding_type', ctypes.c_int), ('allow_requantize', ctypes.c_bool),
                ('quantize_output_tensor', ctypes.c_bool), ('only_copy', ctypes.c_bool), ('pure', ctypes.c_bool),
                ('keep_split', ctypes.c_bool), ('dry_run', ctypes.c_bool), ('imatrix', ctypes.c_void_p),
                ('kv_overrides', ctypes.c_void_p), ('tt_overrides', ctypes.c_void_p),
                ('prune_layers', ctypes.c_void_p), ('max_buf_size', ctypes.c_size_t)]


def main():
    args = sys.argv[1:]
    bins = None
    if '--bins' in args:
        i = args.index('--bins')
        bins = args[i + 1]
        del args[i:i + 2]
    inp, out, preset, threads = args[0], args[1], args[2], int(args[3])
    if bins is None:
        hits = sorted(glob.glob(os.path.join(root, 'node_modules/.pnpm/@node-llama-cpp+linux-x64@3.21.1/node_modules/'
                                                  '@node-llama-cpp/linux-x64/bins/linux-x64')))
        if not hits:
            print('llama_peer: @node-llama-cpp/linux-x64 3.21.1 is not installed', file=sys.stderr)
            sys.exit(2)
        bins = hits[0]
    ctypes.CDLL(os.path.join(bins, 'libggml-base.so'), mode=ctypes.RTLD_GLOBAL)
    ctypes.CDLL(os.path.join(bins, 'libggml.v0.4.0.so'), mode=ctypes.RTLD_GLOBAL)
    llama = ctypes.CDLL(os.path.join(bins, 'libllama.v0.4.0.so'), mode=ctypes.RTLD_GLOBAL)
    llama.llama_model_quantize_default_params.restype = QuantizeParams
    llama.llama_model_quantize.restype = ctypes.c_uint32
    llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]
    log_cb = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(lambda *_: None)
    llama.llama_log_set(log_cb, None)
    llama.llama_backend_init()
    p = llama.llama_model_quantize_default_params()
    if p.ftype != 7 or p.output_tensor_type != 43 or p.max_buf_size != 8 << 30:
        print('llama_peer: llama_model_quantize_params has an unexpected layout', file=sys.stderr)
        sys.exit(2)
    p.nthread = threads
    p.ftype = FTYPES[preset]
    t0 = time.perf_counter()
    rc = llama.llama_model_quantize(inp.encode(), out.encode(), ctypes.byref(p))
    seconds = time.perf_counter() - t0
    if rc != 0:
        print('llama_peer: llama_model_quantize failed', file=sys.stderr)
        sys.exit(1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'seconds': seconds, 'peakRssMB': peak}))


if __name__ == '__main__':
    main()
