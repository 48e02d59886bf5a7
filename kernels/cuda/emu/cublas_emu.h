/* cublas_emu.h — the cuBLAS calls ctrain makes, served by the CPU BLAS with
 * cuBLAS semantics: column-major storage, op(A) per transpose flag, leading
 * dimensions checked as cuBLAS checks them (CUBLAS_STATUS_INVALID_VALUE),
 * strided batches. In CUBLAS_TF32_TENSOR_OP_MATH mode the operands are
 * rounded to TF32 (10-bit mantissa, round to nearest) before the product,
 * accumulating in float32, as the tensor cores do. */
#ifndef CTRAIN_CUBLAS_EMU_H
#define CTRAIN_CUBLAS_EMU_H

#include "kernels/cuda/emu/emu.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };

namespace emu {
struct blas_handle;
}
typedef emu::blas_handle *cublasHandle_t;

namespace emu {
cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *a, int lda,
                           const float *b, int ldb, const float *beta, float *c, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *a, int lda,
                                         long long stride_a, const float *b, int ldb,
                                         long long stride_b, const float *beta, float *c, int ldc,
                                         long long stride_c, int batch);
const char *cublasGetStatusString(cublasStatus_t s);
} // namespace emu

using emu::cublasCreate;
using emu::cublasDestroy;
using emu::cublasGetStatusString;
using emu::cublasSetMathMode;
using emu::cublasSetStream;
using emu::cublasSgemm;
using emu::cublasSgemmStridedBatched;

#endif
