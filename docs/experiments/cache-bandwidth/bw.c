// Read bandwidth of one core for a buffer of a given size (docs/performance.md, "micro-cnn's conv1
// input gradient, profiled"): gcc -O2 -mavx512f -o bw bw.c && ./bw 3211264 200
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
// Reads a buffer of N floats REPS times (vector loads, summed), one thread: the read bandwidth
// of the cache level the buffer fits in.
int main(int argc, char **argv) {
  size_t n = atol(argv[1]) / 4; int reps = atoi(argv[2]);
  float *a = aligned_alloc(64, n * 4);
  for (size_t i = 0; i < n; i++) a[i] = i * 1e-9f;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i += 64) {
      s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
      s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
      s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
      s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double t = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (t < best) best = t;
  }
  float out[16]; _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  printf("%zu bytes: fastest %.1f us, %.1f GB/s (%g)\n", n * 4, best * 1e6, n * 4 / best / 1e9, out[0]);
}
