/* ops.h — the one list of ops ctrain computes, forward and backward.
 *
 * A backend (cpu/, cuda/) fills a `struct ops_backend` with function
 * pointers. Kernels know tensors only as pointers and sizes; they never see
 * the graph, the comm layer or a file.
 *
 * Conventions, shared by every op:
 * - float32, row-major, contiguous unless a leading dimension is given.
 * - Backward functions ACCUMULATE (+=) into every gradient they write; the
 *   caller zeroes gradients once per step. A NULL gradient pointer means
 *   "not needed" and is skipped.
 * - `ctx` carries the backend's per-graph state: thread count, a scratch
 *   buffer planned at build time (no kernel allocates) and the backend's own
 *   state (ops_backend.state).
 */
#ifndef CTRAIN_OPS_H
#define CTRAIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ops_ctx {
  const void *state;  /* the backend's own state, as in its table (ops_backend.state) */
  int threads;        /* OpenMP threads (cpu) */
  float *scratch;     /* planned workspace, `scratch_len` floats */
  size_t scratch_len; /* as returned by the *_scratch functions, maxed */
  /* Sums `n` doubles in place over every data-parallel replica (sync
   * BatchNorm); NULL keeps statistics local. Set by the trainer, so kernels
   * never see the comm layer. `buf` is backend memory (the planned scratch):
   * host memory on cpu, device memory on cuda, where the sum is issued in
   * stream order (after the kernels issued before the call, before those
   * issued after it) and the call may return before it has run. */
  void (*reduce_sum)(void *user, double *buf, int n);
  void *reduce_user;
};

enum act_kind { ACT_RELU = 0, ACT_SILU = 1, ACT_GELU = 2 };

enum mask_kind {
  MASK_NONE = 0,   /* attend everywhere */
  MASK_CAUSAL = 1, /* key j > query i is -inf */
  MASK_GIVEN = 2   /* mask[i*tk + j] == 0 is -inf, (tq, tk) shared by batch */
};

struct conv2d_shape {
  int n, c, h, w;  /* input (n, c, h, w) */
  int oc, kh, kw;  /* weight (oc, c, kh, kw) */
  int stride, pad; /* same in both dimensions, as the models use */
  int oh, ow;      /* output (n, oc, oh, ow) */
};

/* Scaled dot-product attention over `b` batches and `h` heads.
 * q (b, tq, ldq) with head i in columns [i*dh, (i+1)*dh); k, v (b, tk, ldk/ldv);
 * out (b, tq, ldo), heads concatenated the same way.
 * probs (b, h, tq, tk) holds softmax(scale * q k^T + mask). */
struct attn_shape {
  int b, h, tq, tk, dh;
  int ldq, ldk, ldv, ldo; /* row strides (elements) of q, k, v, out */
  float scale;
  enum mask_kind mask;
  const float *given_mask; /* (tq, tk), MASK_GIVEN only */
};

/* Counter-based random stream: value i of stream (key, counter) is a pure
 * function, so a kernel can regenerate any element without state. */
struct rng_stream {
  uint64_t key;
  uint64_t counter;
};

/* Training augmentation of 3x32x32 images (src/data/augment.h describes the
 * transforms; kernels/ops_shared.h holds their maths, shared by both
 * backends). Random choices for an image are draws of the counter stream
 * (key, its position in the epoch). */
enum { AUG_CROP = 1, AUG_FLIP = 2, AUG_ROTATE = 4, AUG_CUTOUT = 8 };
enum { AUG_SIDE = 32, AUG_PLANE = AUG_SIDE * AUG_SIDE, AUG_IMAGE = 3 * AUG_PLANE };
struct augment_params {
  unsigned flags;   /* AUG_* bits; 0 = only conversion and normalisation */
  int crop_pad;     /* 4 */
  float rotate_deg; /* 5: the angle is uniform in [-deg, deg] */
  int cutout_size;  /* 16: side of the square, clipped at the borders */
  float cutout_p;   /* 0.5 */
  int normalize;    /* (x - mean[c]) / std[c]; cutout fills with mean (else 0) */
  float mean[3], std[3];
  uint64_t key;
};

struct ops_backend {
  const char *name;
  /* What the backend keeps besides its functions: NULL on cpu; on cuda one
   * device's stream, cuBLAS handle and reduction buffers
   * (cuda_backend_open). The memory entries take the table itself, the
   * ops reach it through ctx->state. */
  const void *state;

  /* Memory the graph plans, in the backend's address space (device memory
   * for cuda): alloc returns NULL when out of memory, never for 0 bytes;
   * memset0 zeroes; upload/download copy host <-> backend and have finished
   * when they return; upload_async takes the host bytes when called (the
   * caller may reuse them at once) and lands them in order with the ops
   * issued around it, without waiting for any. Every op below takes
   * backend pointers, except where a host pointer is stated. */
  void *(*alloc)(const struct ops_backend *be, size_t bytes);
  void (*release)(const struct ops_backend *be, void *p);
  void (*memset0)(const struct ops_backend *be, void *p, size_t bytes);
  void (*upload)(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
  void (*download)(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
  void (*upload_async)(const struct ops_backend *be, void *dst, const void *src, size_t bytes);
  /* CUDA Graphs (NULL where the backend has none): between capture_begin
   * and capture_end the ops issued are recorded into a graph, not run;
   * graph_launch runs the graph's work again, graph_free frees it. Each
   * returns 0, or -1 with the failed call in msg (a capture that failed
   * has run nothing). */
  int (*graph_capture_begin)(const struct ops_backend *be, char *msg, size_t len);
  int (*graph_capture_end)(const struct ops_backend *be, void **graph, char *msg, size_t len);
  int (*graph_launch)(const struct ops_backend *be, void *graph, char *msg, size_t len);
  void (*graph_free)(const struct ops_backend *be, void *graph);

  /* C(m,n) = alpha op(A) op(B) + beta C, row-major, t* != 0 transposes. */
  void (*matmul)(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
  void (*matmul_batched)(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k,
                         float alpha, const float *a, int lda, long stride_a, const float *b,
                         int ldb, long stride_b, float beta, float *c, int ldc, long stride_c,
                         int batch);

  /* y(m,n) = x(m,k) w(n,k)^T + bias(n); bias may be NULL. */
  void (*linear_fwd)(const struct ops_ctx *ctx, int m, int k, int n, const float *x, const float *w,
                     const float *bias, float *y);
  void (*linear_bwd)(const struct ops_ctx *ctx, int m, int k, int n, const float *dy,
                     const float *x, const float *w, float *dx, float *dw, float *dbias);

  /* A linear layer and its activation, fused where the backend gains by
   * it: h (m,n) = x (m,k) w (n,k)^T + bias(n) (bias may be NULL), y =
   * act(h); h is kept for backward. Backward overwrites dh (m,n) with
   * dy * act'(h) (the node's own buffer) and accumulates dx, dw, dbias as
   * linear_bwd does. */
  void (*linear_act_fwd)(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                         const float *x, const float *w, const float *bias, float *h, float *y);
  void (*linear_act_bwd)(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                         const float *dy, const float *x, const float *w, const float *h, float *dh,
                         float *dx, float *dw, float *dbias);

  /* Convolution; scratch needs conv2d_scratch(s, threads) floats. */
  size_t (*conv2d_scratch)(const struct conv2d_shape *s, int threads);
  void (*conv2d_fwd)(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                     const float *w, const float *bias, float *y);
  void (*conv2d_bwd)(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                     const float *x, const float *w, float *dx, float *dw, float *dbias);

  /* BatchNorm2d over x (n, c, hw). Training: batch statistics (biased
   * variance to normalise, unbiased into running_var), running stats updated
   * with `momentum`, *num_batches (num_batches_tracked; NULL: none) + 1;
   * save_mean/save_rstd (c) kept for backward.
   * Eval: running statistics, save_* and *num_batches untouched. */
  void (*batchnorm2d_fwd)(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                          const float *gamma, const float *beta, float *running_mean,
                          float *running_var, int64_t *num_batches, float momentum, float eps,
                          int training, float *y, float *save_mean, float *save_rstd);
  void (*batchnorm2d_bwd)(const struct ops_ctx *ctx, int n, int c, int hw, const float *dy,
                          const float *x, const float *gamma, const float *save_mean,
                          const float *save_rstd, float *dx, float *dgamma, float *dbeta);

  /* MaxPool2d, kernel k, stride s, no padding, floor mode. idx holds the
   * flat input index (within the (h,w) plane) of each output's maximum;
   * NULL in inference, where no backward needs it. */
  void (*maxpool2d_fwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                        const float *x, float *y, int32_t *idx);
  void (*maxpool2d_bwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                        const float *dy, const int32_t *idx, float *dx);

  /* Mean over the middle axis: x (b, t, d) -> y (b, d) (mean over tokens). */
  void (*mean_mid_fwd)(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y);
  void (*mean_mid_bwd)(const struct ops_ctx *ctx, int b, int t, int d, const float *dy, float *dx);
  /* Mean over the last axis: x (rows, cols) -> y (rows). Global average pool
   * of (n, c, h, w) is rows = n*c, cols = h*w. */
  void (*mean_last_fwd)(const struct ops_ctx *ctx, int rows, int cols, const float *x, float *y);
  void (*mean_last_bwd)(const struct ops_ctx *ctx, int rows, int cols, const float *dy, float *dx);

  /* LayerNorm over the last axis d of x (rows, d); mean/rstd (rows) saved. */
  void (*layernorm_fwd)(const struct ops_ctx *ctx, int rows, int d, const float *x,
                        const float *gamma, const float *beta, float eps, float *y, float *mean,
                        float *rstd);
  void (*layernorm_bwd)(const struct ops_ctx *ctx, int rows, int d, const float *dy, const float *x,
                        const float *gamma, const float *mean, const float *rstd, float *dx,
                        float *dgamma, float *dbeta);

  /* Elementwise activations; GELU is the exact erf form (PyTorch default). */
  void (*act_fwd)(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                  float *y);
  void (*act_bwd)(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                  const float *dy, float *dx);

  /* Attention. With dropout p > 0 in training, probs_drop (b,h,tq,tk) holds
   * probs * keep / (1-p), keep drawn from `rng`; otherwise probs_drop is NULL.
   * scratch needs attention_scratch(s, threads) floats. */
  size_t (*attention_scratch)(const struct attn_shape *s, int threads);
  void (*attention_fwd)(const struct ops_ctx *ctx, const struct attn_shape *s, const float *q,
                        const float *k, const float *v, float p, struct rng_stream rng,
                        float *probs, float *probs_drop, float *out);
  void (*attention_bwd)(const struct ops_ctx *ctx, const struct attn_shape *s, const float *dout,
                        const float *q, const float *k, const float *v, const float *probs,
                        const float *probs_drop, float *dq, float *dk, float *dv);

  /* Embedding: y (n, d) = table[idx[i]]; table (vocab, d). */
  void (*embedding_fwd)(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                        const float *table, float *y);
  void (*embedding_bwd)(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                        const float *dy, float *dtable);

  /* y (b, t, d) = x + P(t, d), P the sinusoidal encoding (ops_shared.h).
   * Backward is the identity: use axpy. */
  void (*posenc_fwd)(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y);

  /* Dropout with keep mask (n) saved; p == 0 copies. */
  void (*dropout_fwd)(const struct ops_ctx *ctx, size_t n, float p, struct rng_stream rng,
                      const float *x, float *y, uint8_t *keep);
  void (*dropout_bwd)(const struct ops_ctx *ctx, size_t n, float p, const float *dy,
                      const uint8_t *keep, float *dx);

  /* y = a + b; y += alpha * x; y = alpha * y. */
  void (*add_fwd)(const struct ops_ctx *ctx, size_t n, const float *a, const float *b, float *y);
  void (*axpy)(const struct ops_ctx *ctx, size_t n, float alpha, const float *x, float *y);
  void (*scale)(const struct ops_ctx *ctx, size_t n, float alpha, float *y);

  /* y (b, c, r) = transpose of x (b, r, c); backward is the transpose back
   * accumulated: transpose_bwd(dy (b,c,r)) += into dx (b,r,c). */
  void (*transpose_fwd)(const struct ops_ctx *ctx, int b, int r, int c, const float *x, float *y);
  void (*transpose_bwd)(const struct ops_ctx *ctx, int b, int r, int c, const float *dy, float *dx);

  /* ViT patch extraction: x (n, c, h, w) -> y (n, (h/p)(w/p), c*p*p), p
   * dividing h and w. Patches in row-major grid order, each flattened
   * channel-major, then row, then column: torch's
   * x.reshape(n, c, h/p, p, w/p, p).permute(0, 2, 4, 1, 3, 5). A permutation,
   * so backward scatters dy (n, (h/p)(w/p), c*p*p) back: dx (n, c, h, w) += . */
  void (*patch_fwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *x,
                    float *y);
  void (*patch_bwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *dy,
                    float *dx);
  /* Zero padding: x (n, c, h, w) -> y (n, c, h + 2 pad, w + 2 pad) with zero
   * borders; backward dx (n, c, h, w) += the interior of dy. */
  void (*pad2d_fwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *x,
                    float *y);
  void (*pad2d_bwd)(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *dy,
                    float *dx);

  /* Cross-entropy over logits (n, classes) with integer labels. Rows whose
   * label == ignore_index do not count. Label smoothing eps mixes the one-hot
   * target with the uniform distribution as PyTorch does. Writes the mean
   * loss over counted rows to *loss, softmax probabilities to probs and the
   * number of counted rows to *count (all backend memory: no host
   * synchronisation). `divisor` > 0 overrides the mean's denominator (the
   * captioning loss divides by N*T). Backward reads *count and d loss from
   * *dloss (backend memory; NULL: 1, the loss is the graph's output). */
  void (*cross_entropy_fwd)(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                            const int32_t *labels, int ignore_index, float smoothing, float divisor,
                            float *probs, float *loss, int32_t *count);
  void (*cross_entropy_bwd)(const struct ops_ctx *ctx, int n, int classes, const float *probs,
                            const int32_t *labels, int ignore_index, float smoothing, float divisor,
                            const int32_t *count, const float *dloss, float *dlogits);

  /* Training metrics without host synchronisation (backend memory): adds
   * weight * *loss to acc[0] and, over the rows whose label counts (as in
   * cross_entropy), 1 to acc[2] and 1 to acc[1] when the row's first maximal
   * logit is at its label. */
  void (*score)(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                const int32_t *labels, int ignore_index, const float *loss, float weight,
                double *acc);

  /* Optimizers over flat buffers. The scalars that change from step to step
   * are read from `hyper` in backend memory (ops_adam_hyper, ops_sgd_hyper
   * in ops_shared.h fill it), so a replayed CUDA Graph takes the current
   * step's. Adam: wd as L2 (added to the gradient, torch.optim.Adam) unless
   * decoupled (AdamW). */
  void (*adam_step)(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *m,
                    float *v, const float *hyper, float beta2, float eps, float wd, int decoupled);
  /* SGD with momentum (torch semantics: buf = momentum*buf + g, first step
   * buf = g), L2 weight decay. */
  void (*sgd_step)(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *buf,
                   const float *hyper, float momentum, float wd);

  /* A training batch from uint8 images resident in backend memory: row r
   * of n is image src + r * AUG_IMAGE (CHW, 0..255) with label labels[r],
   * augmented with the draws of counter pos0 + r * pos_step and scaled to
   * 0..1 (then normalised) into x (n, 3, 32, 32); y[r] = labels[r]. Rows
   * r >= valid are zeros with label -1. */
  void (*augment)(const struct ops_ctx *ctx, const struct augment_params *a, int n, int valid,
                  const uint8_t *src, const int32_t *labels, uint64_t pos0, uint64_t pos_step,
                  float *x, int32_t *y);

  /* The gradient's guard and clipping, without host synchronisation
   * (backend memory): norm = sqrt(sum grad^2), summed in double in an order
   * fixed by n and the backend. When *loss or norm is not finite, grad is
   * left alone and, if bad[0] < 0, bad = {*step, 1 (loss) or 2 (gradient)}
   * (step in backend memory: a replayed CUDA Graph records the step's own);
   * otherwise, when max_norm > 0 and norm > max_norm, grad is scaled by
   * max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). */
  void (*grad_clip)(const struct ops_ctx *ctx, size_t n, float *grad, float max_norm,
                    const float *loss, const int64_t *step, int64_t *bad);
};

/* The CPU backend: a constant table, state NULL. The CUDA backend's table
 * is opened per device (kernels/cuda/cuda_backend.h). */
const struct ops_backend *ops_cpu(void);

#ifdef __cplusplus
}
#endif
#endif
