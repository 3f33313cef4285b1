// ggml's own matrix-vector product, native, one thread: the same-run peer of benchmarks/matmul-wasm/bench.ts.
//
// Loads node-llama-cpp's prebuilt libggml-cpu-*.so variants, keeps the one ggml itself would pick on this CPU (the
// highest ggml_backend_score), and times what ggml_compute_forward_mul_mat does for one activation row of a weight
// that was not repacked: quantize the row to the weight's vec_dot type (from_float), then one vec_dot per weight row.
// The weight is the bench's own: the same 64 LCG rows quantized (here by ggml_quantize_chunk), tiled to OUT rows, in
// enough distinct copies to exceed MIN_BYTES, so the bytes come from DRAM as in a decode step.
//
// llama.cpp repacks Q4_0 (and a few others) at load into an interleaved layout on CPUs with AVX2/AVX-512 and then
// runs its own gemv instead; this is the plain vec_dot path, the figure the matmul issue quotes.
//
//   cc -O2 -o ggml_matvec ggml_matvec.c -ldl
//   ggml_matvec TYPE OUT IN MIN_BYTES RUNS LIB...
//
// Prints one JSON object: the variant, the median GB/s of weight bytes, ms per matvec and y[0..3] (for a sanity
// check against ours). Exit status 2 with a message on stderr when no library loads or the type has no vec_dot.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*from_float_t)(const float *x, void *y, int64_t k);
typedef void (*vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
// ggml-cpu.h, struct ggml_type_traits_cpu (llama.cpp as bundled with node-llama-cpp 3.21).
struct type_traits_cpu {
  from_float_t from_float;
  vec_dot_t vec_dot;
  int vec_dot_type;
  int64_t nrows;
};
typedef const struct type_traits_cpu *(*get_traits_t)(int type);
typedef int (*score_t)(void);
typedef void (*init_t)(void);
typedef size_t (*quantize_chunk_t)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float *imatrix);
typedef size_t (*row_size_t)(int type, int64_t ne);

static void die(const char *msg, const char *what) {
  fprintf(stderr, "ggml_matvec: %s%s\n", msg, what ? what : "");
  exit(2);
}

// The bench's values(): an LCG mapped to [-scale, scale), rounded to f32 as a Float32Array store rounds.
static void values(float *a, int64_t n, uint32_t seed, double scale) {
  uint32_t s = seed;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    a[i] = (float)((((double)s / 4294967296.0) * 2.0 - 1.0) * scale);
  }
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 7) die("usage: ggml_matvec TYPE OUT IN MIN_BYTES RUNS LIB...", NULL);
  const int type = atoi(argv[1]);
  const int64_t out = atoll(argv[2]), in = atoll(argv[3]);
  const double min_bytes = atof(argv[4]);
  const int runs = atoi(argv[5]);
  if (out < 64 || out > 65536 || in < 256 || in > 65536 || in % 256 || runs < 1 || runs > 100 || min_bytes > 4e9)
    die("arguments out of range (OUT 64..65536, IN a multiple of 256 up to 65536, RUNS 1..100, MIN_BYTES <= 4e9)",
        NULL);

  // The variant ggml would load: highest score among those this CPU can run (score 0 = unsupported).
  void *best = NULL;
  const char *best_name = NULL;
  int best_score = 0;
  for (int i = 6; i < argc; i++) {
    void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    score_t score = (score_t)dlsym(h, "ggml_backend_score");
    int sc = score ? score() : 0;
    if (sc > best_score) {
      if (best) dlclose(best);
      best = h, best_score = sc, best_name = argv[i];
    } else {
      dlclose(h);
    }
  }
  if (!best) die("no libggml-cpu variant loads on this CPU", NULL);
  // libggml-base.so is already loaded as the variant's dependency; RTLD_NOLOAD finds that copy.
  char base_path[4096];
  snprintf(base_path, sizeof base_path, "%s", best_name);
  char *slash = strrchr(base_path, '/');
  snprintf(slash ? slash + 1 : base_path, sizeof base_path - (slash ? (size_t)(slash + 1 - base_path) : 0),
           "libggml-base.so");
  void *base = dlopen(base_path, RTLD_NOW | RTLD_NOLOAD);
  if (!base) die("libggml-base.so not found beside ", best_name);
  init_t cpu_init = (init_t)dlsym(best, "ggml_cpu_init");
  get_traits_t get_traits = (get_traits_t)dlsym(best, "ggml_get_type_traits_cpu");
  quantize_chunk_t quantize_chunk = (quantize_chunk_t)dlsym(base, "ggml_quantize_chunk");
  row_size_t row_size = (row_size_t)dlsym(base, "ggml_row_size");
  if (!cpu_init || !get_traits || !quantize_chunk || !row_size) die("missing ggml symbols in ", best_name);
  cpu_init();
  const struct type_traits_cpu *tr = get_traits(type);
  const struct type_traits_cpu *vt = tr ? get_traits(tr->vec_dot_type) : NULL;
  if (!tr || !tr->vec_dot || !vt || (!vt->from_float && tr->vec_dot_type != 0)) die("type has no vec_dot", NULL);

  const size_t rb = row_size(type, in);
  float *tile = malloc(sizeof(float) * 64 * in);
  float *x = malloc(sizeof(float) * in);
  uint8_t *block = malloc(rb * 64);
  const size_t bytes = rb * out;
  int copies = (int)((min_bytes + bytes - 1) / bytes);
  if (copies < 1) copies = 1;
  uint8_t *w = malloc(bytes * copies);
  uint8_t *xq = malloc(row_size(tr->vec_dot_type, in));
  float *y = malloc(sizeof(float) * out);
  if (!tile || !x || !block || !w || !xq || !y) die("out of memory", NULL);
  values(tile, 64 * in, 1, 0.05);
  values(x, in, 2, 1);
  quantize_chunk(type, tile, block, 0, 64, in, NULL);
  for (int c = 0; c < copies; c++)
    for (size_t o = 0; o < bytes; o += rb * 64) memcpy(w + c * bytes + o, block, o + rb * 64 <= bytes ? rb * 64 : bytes - o);

  double *times = malloc(sizeof(double) * runs);
  for (int r = 0; r < runs + 1; r++) {
    const double t0 = now_ms();
    for (int c = 0; c < copies; c++) {
      // As ggml's mul_mat: the activation row is converted once per matmul, then one dot per weight row.
      if (tr->vec_dot_type == 0) memcpy(xq, x, sizeof(float) * in);
      else vt->from_float(x, xq, in);
      const uint8_t *wc = w + c * bytes;
      for (int64_t i = 0; i < out; i++) tr->vec_dot((int)in, &y[i], 0, wc + i * rb, 0, xq, 0, 1);
    }
    if (r > 0) times[r - 1] = (now_ms() - t0) / copies;
  }
  qsort(times, runs, sizeof(double), cmp);
  const double ms = times[runs / 2];
  const char *name = strrchr(best_name, '/');
  printf("{\"variant\":\"%s\",\"gbs\":%.4f,\"ms\":%.5f,\"y\":[%.8g,%.8g,%.8g,%.8g]}\n", name ? name + 1 : best_name,
         bytes / 1e9 / (ms / 1000), ms, y[0], y[1], y[2], y[3]);
  return 0;
}
