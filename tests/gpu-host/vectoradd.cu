// Vector addition on the GPU, checked on the CPU: the smallest real CUDA workload.
// Built on the GPU host by tests/gpu-host/run.sh with
//   nvcc -cudart static -Xlinker --as-needed -o vectoradd vectoradd.cu
// so that the container needs only glibc and what the CDI spec mounts (libcuda).
// Uses only C library calls (printf, malloc) so that it runs against an older glibc.
// Prints "Test PASSED" and exits 0 on success; anything else exits non-zero.
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cuda_runtime.h>

#define CHECK(call)                                                              \
  do {                                                                           \
    cudaError_t err_ = (call);                                                   \
    if (err_ != cudaSuccess) {                                                   \
      printf("CUDA error %d (%s) at %s: %s\nTest FAILED\n", (int)err_,          \
             cudaGetErrorName(err_), #call, cudaGetErrorString(err_));           \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

__global__ void vector_add(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    c[i] = a[i] + b[i];
  }
}

int main(void) {
  const int n = 1 << 24;  // 16 Mi elements, 64 MiB per vector
  const size_t bytes = (size_t)n * sizeof(float);

  int count = 0;
  CHECK(cudaGetDeviceCount(&count));
  if (count < 1) {
    printf("no CUDA device visible\nTest FAILED\n");
    return 1;
  }
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  printf("CUDA devices visible: %d; device 0: %s (sm_%d%d)\n", count, prop.name, prop.major,
         prop.minor);

  float *ha = (float *)malloc(bytes), *hb = (float *)malloc(bytes), *hc = (float *)malloc(bytes);
  if (!ha || !hb || !hc) {
    printf("host allocation failed\nTest FAILED\n");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    ha[i] = (float)(i % 1000) * 0.5f;
    hb[i] = (float)(i % 777) * 2.0f;
  }

  float *da, *db, *dc;
  CHECK(cudaMalloc(&da, bytes));
  CHECK(cudaMalloc(&db, bytes));
  CHECK(cudaMalloc(&dc, bytes));
  CHECK(cudaMemcpy(da, ha, bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(db, hb, bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemset(dc, 0, bytes));

  const int threads = 256;
  vector_add<<<(n + threads - 1) / threads, threads>>>(da, db, dc, n);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaMemcpy(hc, dc, bytes, cudaMemcpyDeviceToHost));

  int errors = 0;
  for (int i = 0; i < n; i++) {
    if (fabsf(hc[i] - (ha[i] + hb[i])) > 1e-5f) {
      if (errors < 5) {
        printf("mismatch at %d: got %f, want %f\n", i, hc[i], ha[i] + hb[i]);
      }
      errors++;
    }
  }
  CHECK(cudaFree(da));
  CHECK(cudaFree(db));
  CHECK(cudaFree(dc));
  free(ha);
  free(hb);
  free(hc);
  if (errors != 0) {
    printf("%d of %d elements wrong\nTest FAILED\n", errors, n);
    return 1;
  }
  printf("%d elements added on the GPU and checked on the CPU\nTest PASSED\n", n);
  return 0;
}
