// Store (and read) bandwidth of one or two threads for a buffer of N floats (docs/performance.md,
// "The first layers against the memory system and the pool"): what the output of small-cnn's
// conv1 at batch 128 (128 × 32 × 26 × 26 floats, 11.1 MB) costs to write, and nothing else.
//   gcc -O2 -march=native -fopenmp -o store store.c && ./store 2768896 2 0
// MODE 0: plain 64-byte stores; 1: non-temporal (streaming) stores; 2: reads (summed).
// The fastest of 200 passes over the same buffer (so it sits in the cache level it fits in).
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  size_t n = atol(argv[1]); int threads = atoi(argv[2]); int mode = atoi(argv[3]);
  n = n / 16 * 16;
  float *a = aligned_alloc(64, n * 4);
  for (size_t i = 0; i < n; i++) a[i] = 0;
  double best = 1e9;
  for (int rep = 0; rep < 200; rep++) {
    double t0 = now();
#pragma omp parallel num_threads(threads)
    {
      int id = omp_get_thread_num();
      size_t lo = n * id / threads / 16 * 16, hi = n * (id + 1) / threads / 16 * 16;
      __m512 v = _mm512_set1_ps((float)rep);
      if (mode == 0) for (size_t i = lo; i < hi; i += 16) _mm512_store_ps(a + i, v);
      else if (mode == 1) for (size_t i = lo; i < hi; i += 16) _mm512_stream_ps(a + i, v);
      else {
        __m512 s = _mm512_setzero_ps();
        for (size_t i = lo; i < hi; i += 16) s = _mm512_add_ps(s, _mm512_load_ps(a + i));
        if (_mm512_reduce_add_ps(s) == -1.0f) printf("!");
      }
    }
    double t = now() - t0;
    if (t < best) best = t;
  }
  printf("%zu floats (%.1f MB), %d thread(s), mode %d: fastest %.3f ms, %.1f GB/s\n", n, n * 4 / 1e6,
         threads, mode, best * 1e3, n * 4 / best / 1e9);
}
