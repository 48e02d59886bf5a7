/* cublas_emu.cpp — cuBLAS on the CPU BLAS (cublas_emu.h). */
#include "kernels/cuda/emu/cublas_emu.h"

#include <cblas.h>

#include <vector>

namespace emu {

struct blas_handle {
  cudaStream_t stream;
  cublasMath_t math;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new blas_handle{nullptr, CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  device_drain(); /* as cuBLAS does: its queued products finish first */
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

/* float32 rounded to TF32: 10 mantissa bits, round to nearest even. */
float to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) { /* finite */
    u += 0x0fffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
  }
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

/* A column-major (rows, cols) operand with leading dimension ld, rounded to
 * TF32 into `out` (same layout). */
const float *tf32_copy(const float *x, int rows, int cols, int ld, std::vector<float> &out) {
  out.assign(static_cast<size_t>(ld) * (cols > 0 ? cols - 1 : 0) + rows, 0.0f);
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++)
      out[static_cast<size_t>(j) * ld + i] = to_tf32(x[static_cast<size_t>(j) * ld + i]);
  return out.data();
}

cublasStatus_t check(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                     int k, const float *alpha, int lda, int ldb, const float *beta, int ldc,
                     int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  auto op_ok = [](cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T; };
  int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  auto at_least = [](int v) { return v > 1 ? v : 1; };
  if (!op_ok(ta) || !op_ok(tb) || m < 0 || n < 0 || k < 0 || batch < 0 || !alpha || !beta ||
      lda < at_least(a_rows) || ldb < at_least(b_rows) || ldc < at_least(m))
    return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

void gemm1(cublasMath_t math, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
           float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c,
           int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) { /* C = beta C, as cuBLAS (beta 0 overwrites NaN) */
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        float *x = &c[static_cast<size_t>(j) * ldc + i];
        *x = beta == 0.0f ? 0.0f : beta * *x;
      }
    return;
  }
  std::vector<float> ta32, tb32;
  if (math == CUBLAS_TF32_TENSOR_OP_MATH) {
    a = ta == CUBLAS_OP_N ? tf32_copy(a, m, k, lda, ta32) : tf32_copy(a, k, m, lda, ta32);
    b = tb == CUBLAS_OP_N ? tf32_copy(b, k, n, ldb, tb32) : tf32_copy(b, n, k, ldb, tb32);
  }
  cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta,
              c, ldc);
}

/* A product queued on the handle's stream: the scalars are read when it is
 * issued, as cuBLAS reads host scalars. */
struct gemm_job {
  cudaStream_t stream;
  cublasMath_t math;
  cublasOperation_t ta, tb;
  int m, n, k, lda, ldb, ldc, batch;
  float alpha, beta;
  const float *a, *b;
  float *c;
  long long sa, sb, sc;
};

void run_gemm(void *p) {
  const gemm_job &j = *static_cast<gemm_job *>(p);
  device_scope scope;
  device_touch(j.a);
  device_touch(j.b);
  device_touch(j.c);
  for (int i = 0; i < j.batch; i++)
    gemm1(j.math, j.ta, j.tb, j.m, j.n, j.k, j.alpha, j.a + i * j.sa, j.lda, j.b + i * j.sb, j.ldb,
          j.beta, j.c + i * j.sc, j.ldc);
}

/* The bytes a column-major (rows, cols) operand with leading dimension ld
 * spans over `batch` matrices `stride` apart. */
size_t extent(int rows, int cols, int ld, long long stride, int batch) {
  if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
  size_t one = static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows);
  return 4 * (one + static_cast<size_t>(stride) * static_cast<size_t>(batch - 1));
}

void issue(const gemm_job &j) {
  emu::count_blas();
  size_t na = j.ta == CUBLAS_OP_N ? extent(j.m, j.k, j.lda, j.sa, j.batch)
                                  : extent(j.k, j.m, j.lda, j.sa, j.batch);
  size_t nb = j.tb == CUBLAS_OP_N ? extent(j.k, j.n, j.ldb, j.sb, j.batch)
                                  : extent(j.n, j.k, j.ldb, j.sb, j.batch);
  span spans[3];
  size_t n = 0;
  if (na) spans[n++] = span{j.a, na};
  if (nb) spans[n++] = span{j.b, nb};
  if (size_t nc = extent(j.m, j.n, j.ldc, j.sc, j.batch)) spans[n++] = span{j.c, nc};
  stream_issue(j.stream, "cublasSgemm", spans, n, run_gemm, new gemm_job(j),
               [](void *p) { delete static_cast<gemm_job *>(p); });
}

} // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *a, int lda,
                           const float *b, int ldb, const float *beta, float *c, int ldc) {
  cublasStatus_t s = check(h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc, 1);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  issue(gemm_job{h->stream, h->math, ta, tb, m, n, k, lda, ldb, ldc, 1, *alpha, *beta, a, b, c, 0,
                 0, 0});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *a, int lda,
                                         long long stride_a, const float *b, int ldb,
                                         long long stride_b, const float *beta, float *c, int ldc,
                                         long long stride_c, int batch) {
  cublasStatus_t s = check(h, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc, batch);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  issue(gemm_job{h->stream, h->math, ta, tb, m, n, k, lda, ldb, ldc, batch, *alpha, *beta, a, b, c,
                 stride_a, stride_b, stride_c});
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS:
    return "the operation completed successfully";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "the library was not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "the resource allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "an invalid numeric value was used as an argument";
  }
  return "unknown error";
}

} // namespace emu
