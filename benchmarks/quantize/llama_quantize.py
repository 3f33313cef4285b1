#!/usr/bin/env python3
"""llama.cpp as the peer of benchmarks/quantize/bench.ts: llama_model_quantize on a GGUF file, timed.

Loads the prebuilt x86-64 libllama that node-llama-cpp ships (@node-llama-cpp/linux-x64, a benchmarks/ dependency)
through ctypes and calls llama_model_quantize(in, out, params) the way llama-quantize does, with params.nthread and
params.pure set, median of runs, wall time. llama.cpp's own log is silenced.

  python3 benchmarks/quantize/llama_quantize.py --input in.gguf --output out.gguf --ftype 2 [--threads 1]
                                                [--runs 3] [--pure] [--lib-dir DIR]

Prints one JSON object on stdout: {"library", "ftype", "threads", "runs", "seconds": [...], "medianSeconds"}.
Exits 2 (message on stderr) when the library cannot be found or quantizing fails.
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


class QuantizeParams(ctypes.Structure):
    """struct llama_model_quantize_params of llama.h at the release node-llama-cpp 3.21.1 ships (80fb11a)."""
    _fields_ = [
        ('nthread', ctypes.c_int32),
        ('ftype', ctypes.c_int),
        ('output_tensor_type', ctypes.c_int),
        ('token_embedding_type', ctypes.c_int),
        ('allow_requantize', ctypes.c_bool),
        ('quantize_output_tensor', ctypes.c_bool),
        ('only_copy', ctypes.c_bool),
        ('pure', ctypes.c_bool),
        ('keep_split', ctypes.c_bool),
        ('dry_run', ctypes.c_bool),
        ('imatrix', ctypes.c_void_p),
        ('kv_overrides', ctypes.c_void_p),
        ('tt_overrides', ctypes.c_void_p),
        ('prune_layers', ctypes.c_void_p),
        ('max_buf_size', ctypes.c_size_t),
    ]


LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


def fail(msg):
    print(f'llama_quantize: {msg}', file=sys.stderr)
    sys.exit(2)


def find_lib_dir(explicit):
    if explicit:
        return explicit
    for p in [
        os.path.join(root, 'benchmarks/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64'),
        *sorted(glob.glob(os.path.join(root, 'node_modules/.pnpm/@node-llama-cpp+linux-x64@*/node_modules/'
                                             '@node-llama-cpp/linux-x64/bins/linux-x64'))),
    ]:
        if glob.glob(os.path.join(p, 'libllama*.so')):
            return p
    fail('libllama not found (is @node-llama-cpp/linux-x64 installed in benchmarks/?)')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--input', required=True)
    ap.add_argument('--output', required=True)
    ap.add_argument('--ftype', type=int, required=True)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--pure', action='store_true')
    ap.add_argument('--lib-dir')
    a = ap.parse_args()

    lib_dir = find_lib_dir(a.lib_dir)
    # libllama needs ggml's libraries already loaded (it is linked against them by soname).
    for dep in ['libggml-base.so', 'libggml.so*', 'libggml-cpu-x64.so']:
        for p in sorted(glob.glob(os.path.join(lib_dir, dep))):
            try:
                ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
    libs = sorted(glob.glob(os.path.join(lib_dir, 'libllama.v*.so'))) or sorted(glob.glob(os.path.join(lib_dir, 'libllama*.so')))
    try:
        llama = ctypes.CDLL(libs[0], mode=ctypes.RTLD_GLOBAL)
    except (OSError, IndexError) as e:
        fail(f'cannot load libllama from {lib_dir}: {e}')

    quiet = LOG_CALLBACK(lambda level, text, user: None)
    llama.llama_log_set(quiet, None)
    llama.llama_backend_init()
    llama.llama_model_quantize_default_params.restype = QuantizeParams
    llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]
    llama.llama_model_quantize.restype = ctypes.c_uint32

    seconds = []
    for _ in range(a.runs):
        params = llama.llama_model_quantize_default_params()
        params.nthread = a.threads
        params.ftype = a.ftype
        params.pure = a.pure
        t0 = time.perf_counter()
        rc = llama.llama_model_quantize(a.input.encode(), a.output.encode(), ctypes.byref(params))
        seconds.append(time.perf_counter() - t0)
        if rc != 0:
            fail(f'llama_model_quantize returned {rc}')
    print(json.dumps({
        'library': os.path.basename(libs[0]),
        'ftype': a.ftype,
        'threads': a.threads,
        'runs': a.runs,
        'pure': a.pure,
        'seconds': seconds,
        'medianSeconds': statistics.median(seconds),
    }))


if __name__ == '__main__':
    main()
