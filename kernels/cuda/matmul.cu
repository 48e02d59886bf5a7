/* matmul.cu — GEMM, batched GEMM and the linear layer on cuBLAS (alone, or
 * with its bias and activation fused into one pass each way).
 *
 * ctrain's matrices are row-major; cuBLAS is column-major. A row-major
 * (m, n) matrix is the column-major (n, m) matrix of its transpose, so
 * C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: swap the operands
 * and m with n, keep the transpose flags and leading dimensions. */
#include "kernels/cuda/common.cuh"

static cublasOperation_t op(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

extern "C" void cuda_matmul(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc) {
  if (m <= 0 || n <= 0) return;
  CUBLAS_CHECK(cublasSgemm(cuda_state_of(ctx)->blas, op(tb), op(ta), n, m, k, &alpha, b, ldb, a,
                           lda, &beta, c, ldc));
}

extern "C" void cuda_matmul_batched(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k,
                                    float alpha, const float *a, int lda, long stride_a,
                                    const float *b, int ldb, long stride_b, float beta, float *c,
                                    int ldc, long stride_c, int batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  CUBLAS_CHECK(cublasSgemmStridedBatched(cuda_state_of(ctx)->blas, op(tb), op(ta), n, m, k, &alpha,
                                         b, ldb, stride_b, a, lda, stride_a, &beta, c, ldc,
                                         stride_c, batch));
}

/* y (m, n) = bias broadcast over rows. */
__global__ void bias_rows(size_t total, int n, const float *__restrict__ bias,
                          float *__restrict__ y) {
  GRID_STRIDE(i, total) { y[i] = bias[i % (size_t)n]; }
}

extern "C" void cuda_linear_fwd(const struct ops_ctx *ctx, int m, int k, int n, const float *x,
                                const float *w, const float *bias, float *y) {
  /* y (m, n) = x (m, k) w (n, k)^T [+ bias]: the bias seeds y and the GEMM
   * accumulates onto it (beta = 1). */
  float beta = 0.0f;
  if (bias) {
    size_t total = (size_t)m * n;
    LAUNCH(bias_rows, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(total, n, bias, y);
    LAUNCH_CHECK("bias_rows");
    beta = 1.0f;
  }
  cuda_matmul(ctx, 0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n);
}

/* Column sums of dy (m, n) accumulated into dbias (n): a block of (32, 8)
 * threads owns 32 columns; its 8 rows of threads stride down the rows and
 * their partial sums are added in row-group order through shared memory. */
#define COLSUM_ROWS 8
__global__ void column_sums(int m, int n, const float *__restrict__ dy, float *__restrict__ out) {
  __shared__ float part[COLSUM_ROWS][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (j < n)
    for (int i = threadIdx.y; i < m; i += COLSUM_ROWS)
      acc += dy[(size_t)i * n + j];
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < n) {
    float s = 0.0f;
    for (int r = 0; r < COLSUM_ROWS; r++)
      s += part[r][threadIdx.x];
    out[j] += s;
  }
}

extern "C" void cuda_linear_bwd(const struct ops_ctx *ctx, int m, int k, int n, const float *dy,
                                const float *x, const float *w, float *dx, float *dw,
                                float *dbias) {
  /* dx (m, k) += dy (m, n) w (n, k);  dw (n, k) += dy^T (n, m) x (m, k) */
  if (dx) cuda_matmul(ctx, 0, 0, m, k, n, 1.0f, dy, n, w, k, 1.0f, dx, k);
  if (dw) cuda_matmul(ctx, 1, 0, n, k, m, 1.0f, dy, n, x, k, 1.0f, dw, k);
  if (dbias) {
    LAUNCH(column_sums, div_up(n, 32), dim3(32, COLSUM_ROWS), 0, cuda_stream(ctx))(m, n, dy, dbias);
    LAUNCH_CHECK("column_sums");
  }
}

/* The forward epilogue in one pass: h += bias, y = act(h). */
__global__ void bias_act_kernel(size_t total, int n, int kind, const float *__restrict__ bias,
                                float *__restrict__ h, float *__restrict__ y) {
  GRID_STRIDE(i, total) {
    float v = h[i];
    if (bias) h[i] = v = v + bias[i % (size_t)n];
    y[i] = ops_act(kind, v);
  }
}

extern "C" void cuda_linear_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k,
                                    int n, const float *x, const float *w, const float *bias,
                                    float *h, float *y) {
  /* h (m, n) = x (m, k) w (n, k)^T, then bias + activation in one pass */
  cuda_matmul(ctx, 0, 1, m, n, k, 1.0f, x, k, w, k, 0.0f, h, n);
  size_t total = (size_t)m * n;
  if (!total) return;
  LAUNCH(bias_act_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (total, n, (int)kind, bias, h, y);
  LAUNCH_CHECK("bias_act_kernel");
}

/* The backward's elementwise part in one pass: dh = dy * act'(h) written,
 * and its column sums into dbias (NULL: none), laid out as column_sums. */
__global__ void act_grad_colsum(int m, int n, int kind, const float *__restrict__ dy,
                                const float *__restrict__ h, float *__restrict__ dh,
                                float *__restrict__ dbias) {
  __shared__ float part[COLSUM_ROWS][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (j < n)
    for (int i = threadIdx.y; i < m; i += COLSUM_ROWS) {
      size_t e = (size_t)i * n + j;
      float d = ops_act_grad(kind, h[e], dy[e]);
      dh[e] = d;
      acc += d;
    }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (dbias && threadIdx.y == 0 && j < n) {
    float s = 0.0f;
    for (int r = 0; r < COLSUM_ROWS; r++)
      s += part[r][threadIdx.x];
    dbias[j] += s;
  }
}

extern "C" void cuda_linear_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k,
                                    int n, const float *dy, const float *x, const float *w,
                                    const float *h, float *dh, float *dx, float *dw, float *dbias) {
  if (m > 0 && n > 0) {
    LAUNCH(act_grad_colsum, div_up(n, 32), dim3(32, COLSUM_ROWS), 0, cuda_stream(ctx))
    (m, n, (int)kind, dy, h, dh, dbias);
    LAUNCH_CHECK("act_grad_colsum");
  }
  cuda_linear_bwd(ctx, m, k, n, dh, x, w, dx, dw, NULL);
}
