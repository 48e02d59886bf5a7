/* cuda_ops.h — the CUDA backend's functions, one per entry of ops_backend
 * (kernels/ops.h documents each); kernels/cuda/backend.cu fills the table. */
#ifndef CTRAIN_CUDA_OPS_H
#define CTRAIN_CUDA_OPS_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

void *cuda_alloc(const struct ops_backend *be, size_t bytes);
void cuda_release(const struct ops_backend *be, void *p);
void cuda_memset0(const struct ops_backend *be, void *p, size_t bytes);
void cuda_upload(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
void cuda_download(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
void cuda_upload_async(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
int cuda_graph_capture_begin(const struct ops_backend *be, char *msg, size_t len);
int cuda_graph_capture_end(const struct ops_backend *be, void **graph, char *msg, size_t len);
int cuda_graph_launch(const struct ops_backend *be, void *graph, char *msg, size_t len);
void cuda_graph_free(const struct ops_backend *be, void *graph);
void cuda_patch_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *x,
                    float *y);
void cuda_patch_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *dy,
                    float *dx);
void cuda_pad2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *x,
                    float *y);
void cuda_pad2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *dy,
                    float *dx);
void cuda_matmul(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void cuda_matmul_batched(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k,
                         float alpha, const float *a, int lda, long stride_a, const float *b,
                         int ldb, long stride_b, float beta, float *c, int ldc, long stride_c,
                         int batch);
void cuda_linear_fwd(const struct ops_ctx *ctx, int m, int k, int n, const float *x, const float *w,
                     const float *bias, float *y);
void cuda_linear_bwd(const struct ops_ctx *ctx, int m, int k, int n, const float *dy,
                     const float *x, const float *w, float *dx, float *dw, float *dbias);
void cuda_linear_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                         const float *x, const float *w, const float *bias, float *h, float *y);
void cuda_linear_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                         const float *dy, const float *x, const float *w, const float *h, float *dh,
                         float *dx, float *dw, float *dbias);
size_t cuda_conv2d_scratch(const struct conv2d_shape *s, int threads);
void cuda_conv2d_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                     const float *w, const float *bias, float *y);
void cuda_conv2d_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                     const float *x, const float *w, float *dx, float *dw, float *dbias);
void cuda_batchnorm2d_fwd(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                          const float *gamma, const float *beta, float *running_mean,
                          float *running_var, int64_t *num_batches, float momentum, float eps,
                          int training, float *y, float *save_mean, float *save_rstd);
void cuda_batchnorm2d_bwd(const struct ops_ctx *ctx, int n, int c, int hw, const float *dy,
                          const float *x, const float *gamma, const float *save_mean,
                          const float *save_rstd, float *dx, float *dgamma, float *dbeta);
void cuda_maxpool2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                        const float *x, float *y, int32_t *idx);
void cuda_maxpool2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                        const float *dy, const int32_t *idx, float *dx);
void cuda_mean_mid_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y);
void cuda_mean_mid_bwd(const struct ops_ctx *ctx, int b, int t, int d, const float *dy, float *dx);
void cuda_mean_last_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x, float *y);
void cuda_mean_last_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *dy, float *dx);
void cuda_layernorm_fwd(const struct ops_ctx *ctx, int rows, int d, const float *x,
                        const float *gamma, const float *beta, float eps, float *y, float *mean,
                        float *rstd);
void cuda_layernorm_bwd(const struct ops_ctx *ctx, int rows, int d, const float *dy, const float *x,
                        const float *gamma, const float *mean, const float *rstd, float *dx,
                        float *dgamma, float *dbeta);
void cuda_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                  float *y);
void cuda_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                  const float *dy, float *dx);
size_t cuda_attention_scratch(const struct attn_shape *s, int threads);
void cuda_attention_fwd(const struct ops_ctx *ctx, const struct attn_shape *s, const float *q,
                        const float *k, const float *v, float p, struct rng_stream rng,
                        float *probs, float *probs_drop, float *out);
void cuda_attention_bwd(const struct ops_ctx *ctx, const struct attn_shape *s, const float *dout,
                        const float *q, const float *k, const float *v, const float *probs,
                        const float *probs_drop, float *dq, float *dk, float *dv);
void cuda_embedding_fwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                        const float *table, float *y);
void cuda_embedding_bwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                        const float *dy, float *dtable);
void cuda_posenc_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y);
void cuda_dropout_fwd(const struct ops_ctx *ctx, size_t n, float p, struct rng_stream rng,
                      const float *x, float *y, uint8_t *keep);
void cuda_dropout_bwd(const struct ops_ctx *ctx, size_t n, float p, const float *dy,
                      const uint8_t *keep, float *dx);
void cuda_add_fwd(const struct ops_ctx *ctx, size_t n, const float *a, const float *b, float *y);
void cuda_axpy(const struct ops_ctx *ctx, size_t n, float alpha, const float *x, float *y);
void cuda_scale(const struct ops_ctx *ctx, size_t n, float alpha, float *y);
void cuda_transpose_fwd(const struct ops_ctx *ctx, int b, int r, int c, const float *x, float *y);
void cuda_transpose_bwd(const struct ops_ctx *ctx, int b, int r, int c, const float *dy, float *dx);
void cuda_cross_entropy_fwd(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                            const int32_t *labels, int ignore_index, float smoothing, float divisor,
                            float *probs, float *loss, int32_t *count);
void cuda_cross_entropy_bwd(const struct ops_ctx *ctx, int n, int classes, const float *probs,
                            const int32_t *labels, int ignore_index, float smoothing, float divisor,
                            const int32_t *count, const float *dloss, float *dlogits);
void cuda_score(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                const int32_t *labels, int ignore_index, const float *loss, float weight,
                double *acc);
void cuda_adam_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *m,
                    float *v, const float *hyper, float beta2, float eps, float wd, int decoupled);
void cuda_sgd_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *buf,
                   const float *hyper, float momentum, float wd);
void cuda_augment(const struct ops_ctx *ctx, const struct augment_params *a, int n, int valid,
                  const uint8_t *src, const int32_t *labels, uint64_t pos0, uint64_t pos_step,
                  float *x, int32_t *y);
void cuda_grad_clip(const struct ops_ctx *ctx, size_t n, float *grad, float max_norm,
                    const float *loss, const int64_t *step, int64_t *bad);

#ifdef __cplusplus
}
#endif
#endif
