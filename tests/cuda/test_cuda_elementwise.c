/* test_cuda_elementwise.c — the CUDA backend's elementwise ops (embedding,
 * dropout, activations, add/axpy/scale, transpose, patches, padding), the
 * loss and the score, augmentation and the optimizers, run in the SIMT
 * emulator against the CPU backend (tolerances: ops_compare.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops_shared.h"
#include "ops_compare.h"

static void test_embedding_dropout_elementwise(void) {
  const int n = 41, d = 37, vocab = 9;
  int32_t idx[41];
  for (int i = 0; i < n; i++)
    idx[i] = (i * 7) % vocab; /* repeated ids */
  int32_t *didx = dev(idx, sizeof idx);
  struct t table = mk((size_t)vocab * d), y = mk((size_t)n * d), dtable = mk((size_t)vocab * d);
  CPU->embedding_fwd(&cctx, n, d, idx, table.h, y.h);
  GPU->embedding_fwd(&gctx, n, d, didx, table.d, y.d);
  CMP("embedding_fwd", y, EXACT);
  CPU->embedding_bwd(&cctx, n, d, idx, y.h, dtable.h);
  GPU->embedding_bwd(&gctx, n, d, didx, y.d, dtable.d);
  CMP("embedding_bwd", dtable, EXACT);
  struct t px = mk((size_t)3 * 19 * 34), py = mk(px.n);
  CPU->posenc_fwd(&cctx, 3, 19, 34, px.h, py.h);
  GPU->posenc_fwd(&gctx, 3, 19, 34, px.d, py.d);
  CMP("posenc_fwd", py, EXACT);
  GPU->release(GPU, didx);
  drop(&table);
  drop(&y);
  drop(&dtable);
  drop(&px);
  drop(&py);

  const size_t len = 1000 + 37; /* a tail past the last full block */
  struct t x = mk(len), dy = mk(len), dx = mk(len), out = mk(len);
  uint8_t *keep = malloc(len), *dkeep = GPU->alloc(GPU, len);
  float ps[] = {0.0f, 0.3f, 1.0f};
  for (int i = 0; i < 3; i++) {
    struct rng_stream rng = {42, (uint64_t)i};
    CPU->dropout_fwd(&cctx, len, ps[i], rng, x.h, out.h, keep);
    GPU->dropout_fwd(&gctx, len, ps[i], rng, x.d, out.d, dkeep);
    CMP("dropout_fwd", out, EXACT);
    cmp_bytes("dropout_fwd keep", dkeep, keep, len);
    CPU->dropout_bwd(&cctx, len, ps[i], dy.h, keep, dx.h);
    GPU->dropout_bwd(&gctx, len, ps[i], dy.d, dkeep, dx.d);
    CMP("dropout_bwd", dx, EXACT);
  }
  free(keep);
  GPU->release(GPU, dkeep);
  for (int kind = ACT_RELU; kind <= ACT_GELU; kind++) {
    CPU->act_fwd(&cctx, (enum act_kind)kind, len, x.h, out.h);
    GPU->act_fwd(&gctx, (enum act_kind)kind, len, x.d, out.d);
    CMP("act_fwd", out, EXACT);
    CPU->act_bwd(&cctx, (enum act_kind)kind, len, x.h, dy.h, dx.h);
    GPU->act_bwd(&gctx, (enum act_kind)kind, len, x.d, dy.d, dx.d);
    CMP("act_bwd", dx, EXACT);
  }
  CPU->add_fwd(&cctx, len, x.h, dy.h, out.h);
  GPU->add_fwd(&gctx, len, x.d, dy.d, out.d);
  CMP("add_fwd", out, EXACT);
  CPU->axpy(&cctx, len, -0.3f, x.h, out.h);
  GPU->axpy(&gctx, len, -0.3f, x.d, out.d);
  CMP("axpy", out, EXACT);
  CPU->scale(&cctx, len, 1.7f, out.h);
  GPU->scale(&gctx, len, 1.7f, out.d);
  CMP("scale", out, EXACT);
  /* grad_clip: scaled to half the norm (the two sides sum the norm in
   * different orders: RED), then the guard's record. */
  double norm = 0;
  for (size_t i = 0; i < len; i++)
    norm += (double)out.h[i] * out.h[i];
  const float loss = 0.25f, nan_loss = NAN;
  float *loss_d = dev(&loss, sizeof loss), *nan_d = dev(&nan_loss, sizeof nan_loss);
  int64_t bad[2] = {-1, -1}, *bad_d = dev(bad, sizeof bad), steps[2] = {9, 10};
  int64_t *steps_d = dev(steps, sizeof steps);
  CPU->grad_clip(&cctx, len, out.h, (float)(sqrt(norm) / 2), &loss, &steps[0], bad);
  GPU->grad_clip(&gctx, len, out.d, (float)(sqrt(norm) / 2), loss_d, &steps_d[0], bad_d);
  CMP("grad_clip", out, RED);
  CPU->grad_clip(&cctx, len, out.h, 1e-3f, &nan_loss, &steps[1], bad);
  GPU->grad_clip(&gctx, len, out.d, 1e-3f, nan_d, &steps_d[1], bad_d);
  CMP("grad_clip guarded", out, RED);
  cmp_bytes("grad_clip bad", bad_d, bad, sizeof bad);
  GPU->release(GPU, loss_d);
  GPU->release(GPU, nan_d);
  GPU->release(GPU, bad_d);
  GPU->release(GPU, steps_d);
  drop(&x);
  drop(&dy);
  drop(&dx);
  drop(&out);

  const int b = 3, r = 37, c = 45; /* two tiles each way, partial */
  struct t tx = mk((size_t)b * r * c), ty = mk(tx.n), tdx = mk(tx.n);
  CPU->transpose_fwd(&cctx, b, r, c, tx.h, ty.h);
  GPU->transpose_fwd(&gctx, b, r, c, tx.d, ty.d);
  CMP("transpose_fwd", ty, EXACT);
  CPU->transpose_bwd(&cctx, b, r, c, ty.h, tdx.h);
  GPU->transpose_bwd(&gctx, b, r, c, ty.d, tdx.d);
  CMP("transpose_bwd", tdx, EXACT);
  drop(&tx);
  drop(&ty);
  drop(&tdx);
}

static void test_patch_pad(void) {
  const int n = 2, c = 3, h = 12, w = 8, p = 4, pad = 3;
  size_t in = (size_t)n * c * h * w, pl = (size_t)n * c * (h + 2 * pad) * (w + 2 * pad);
  struct t x = mk(in), y = mk(in), dx = mk(in), py = mk(pl);
  CPU->patch_fwd(&cctx, n, c, h, w, p, x.h, y.h);
  GPU->patch_fwd(&gctx, n, c, h, w, p, x.d, y.d);
  CMP("patch_fwd", y, EXACT);
  CPU->patch_bwd(&cctx, n, c, h, w, p, y.h, dx.h);
  GPU->patch_bwd(&gctx, n, c, h, w, p, y.d, dx.d);
  CMP("patch_bwd", dx, EXACT);
  CPU->pad2d_fwd(&cctx, n, c, h, w, pad, x.h, py.h);
  GPU->pad2d_fwd(&gctx, n, c, h, w, pad, x.d, py.d);
  CMP("pad2d_fwd", py, EXACT);
  CPU->pad2d_bwd(&cctx, n, c, h, w, pad, py.h, dx.h);
  GPU->pad2d_bwd(&gctx, n, c, h, w, pad, py.d, dx.d);
  CMP("pad2d_bwd", dx, EXACT);
  drop(&x);
  drop(&y);
  drop(&dx);
  drop(&py);
}

static void test_cross_entropy(void) {
  const int n = 100, classes = 11; /* 13 blocks of 8 rows */
  int32_t labels[100];
  for (int i = 0; i < n; i++)
    labels[i] = i % 9 == 4 ? -1 : (i * 5) % classes; /* some ignored rows */
  int32_t *dl = dev(labels, sizeof labels);
  struct t z = mk((size_t)n * classes), pr = mk(z.n), loss = mk(1), dz = mk(z.n);
  float eps[] = {0.0f, 0.1f}, div[] = {0.0f, 150.0f};
  const float dloss = 0.7f;
  float *dloss_d = dev(&dloss, sizeof dloss);
  int32_t count = -1, *count_d = dev(&count, sizeof count);
  for (int v = 0; v < 2; v++) {
    CPU->cross_entropy_fwd(&cctx, n, classes, z.h, labels, -1, eps[v], div[v], pr.h, loss.h,
                           &count);
    GPU->cross_entropy_fwd(&gctx, n, classes, z.d, dl, -1, eps[v], div[v], pr.d, loss.d, count_d);
    CMP("cross_entropy_fwd probs", pr, RED);
    CMP("cross_entropy_fwd loss", loss, RED);
    cmp_bytes("cross_entropy_fwd count", count_d, &count, sizeof count);
    /* d loss from memory, then NULL (1) */
    CPU->cross_entropy_bwd(&cctx, n, classes, pr.h, labels, -1, eps[v], div[v], &count,
                           v ? NULL : &dloss, dz.h);
    GPU->cross_entropy_bwd(&gctx, n, classes, pr.d, dl, -1, eps[v], div[v], count_d,
                           v ? NULL : dloss_d, dz.d);
    CMP("cross_entropy_bwd", dz, RED);
  }
  GPU->release(GPU, dloss_d);
  GPU->release(GPU, count_d);
  GPU->release(GPU, dl);
  drop(&z);
  drop(&pr);
  drop(&loss);
  drop(&dz);
}

/* The training score over 70 classes (three lanes' worth per row), with
 * ties placed in different lanes and loop rounds of the warp's scan. */
static void test_score(void) {
  const int n = 77, classes = 70;
  int32_t labels[77];
  struct t z = mk((size_t)n * classes);
  for (int r = 0; r < n; r++) {
    labels[r] = r % 7 == 3 ? -1 : (r * 11) % classes;
    if (r % 3 == 0) { /* a tie of maxima, sometimes at the label */
      z.h[(size_t)r * classes + 40] = 5.0f;
      z.h[(size_t)r * classes + (r % 2 ? 5 : labels[r] >= 0 ? labels[r] : 6)] = 5.0f;
    }
  }
  GPU->upload(GPU, z.d, z.h, z.n * sizeof(float));
  int32_t *dl = dev(labels, sizeof labels);
  const float loss = 1.25f;
  double acc[3] = {0.5, 1, 2};
  float *loss_d = dev(&loss, sizeof loss);
  double *acc_d = dev(acc, sizeof acc);
  CPU->score(&cctx, n, classes, z.h, labels, -1, &loss, 3.0f, acc);
  GPU->score(&gctx, n, classes, z.d, dl, -1, loss_d, 3.0f, acc_d);
  cmp_bytes("score", acc_d, acc, sizeof acc);
  GPU->release(GPU, dl);
  GPU->release(GPU, loss_d);
  GPU->release(GPU, acc_d);
  drop(&z);
}

/* A batch of 5 rows, 2 of them tail, under each transform alone and all
 * together, normalised or not: the same maths on both sides, bit for bit
 * (ops_shared.h's own sin/cos; augment.cu without FMA contraction). */
static void test_augment(void) {
  enum { N = 5, VALID = 3, IMAGE = 3 * 32 * 32 };
  uint8_t *src = malloc((size_t)N * IMAGE);
  int32_t labels[N] = {3, 1, 4, 1, 5};
  for (size_t i = 0; i < (size_t)N * IMAGE; i++)
    src[i] = (uint8_t)(ops_rng_bits(77, 0, i) >> 56);
  uint8_t *src_d = dev(src, (size_t)N * IMAGE);
  int32_t *labels_d = dev(labels, sizeof labels), y[N], y_d[N];
  int32_t *y_dev = dev(labels, sizeof labels);
  struct t x = mk((size_t)N * IMAGE);
  const unsigned flags[] = {AUG_CROP, AUG_FLIP, AUG_ROTATE, AUG_CUTOUT,
                            AUG_CROP | AUG_FLIP | AUG_ROTATE | AUG_CUTOUT};
  for (size_t f = 0; f < sizeof flags / sizeof *flags; f++)
    for (int norm = 0; norm < 2; norm++) {
      struct augment_params a = {.flags = flags[f],
                                 .crop_pad = 4,
                                 .rotate_deg = 5.0f,
                                 .cutout_size = 16,
                                 .cutout_p = 0.9f,
                                 .normalize = norm,
                                 .mean = {0.49f, 0.48f, 0.45f},
                                 .std = {0.25f, 0.24f, 0.26f},
                                 .key = 1000 + f};
      CPU->augment(&cctx, &a, N, VALID, src, labels, 7, 3, x.h, y);
      GPU->augment(&gctx, &a, N, VALID, src_d, labels_d, 7, 3, x.d, y_dev);
      cmp_bytes("augment (bit for bit)", x.d, x.h, x.n * sizeof(float));
      GPU->download(GPU, y_d, y_dev, sizeof y_d);
      if (memcmp(y, y_d, sizeof y)) {
        fprintf(stderr, "FAIL augment labels\n");
        failures++;
      }
    }
  GPU->release(GPU, src_d);
  GPU->release(GPU, labels_d);
  GPU->release(GPU, y_dev);
  free(src);
  drop(&x);
}

static void test_optim(void) {
  const size_t n = 1000 + 77;
  struct t p = mk(n), g = mk(n), m = mk(n), v = mk(n), hy = mk(OPS_HYPER_LEN);
  for (size_t i = 0; i < n; i++)
    v.h[i] = fabsf(v.h[i]); /* a second moment */
  GPU->upload(GPU, v.d, v.h, n * sizeof(float));
  for (int decoupled = 0; decoupled < 2; decoupled++)
    for (long step = 1; step <= 2; step++) {
      ops_adam_hyper(1e-2f, 0.9f, 0.999f, step, hy.h);
      GPU->upload_async(GPU, hy.d, hy.h, OPS_HYPER_LEN * sizeof(float));
      CPU->adam_step(&cctx, n, p.h, g.h, m.h, v.h, hy.h, 0.999f, 1e-8f, 0.05f, decoupled);
      GPU->adam_step(&gctx, n, p.d, g.d, m.d, v.d, hy.d, 0.999f, 1e-8f, 0.05f, decoupled);
      CMP("adam param", p, EXACT);
      CMP("adam m", m, EXACT);
      CMP("adam v", v, EXACT);
    }
  float moms[] = {0.0f, 0.9f};
  for (int mi = 0; mi < 2; mi++)
    for (long step = 1; step <= 2; step++) {
      ops_sgd_hyper(0.1f, step, hy.h);
      GPU->upload_async(GPU, hy.d, hy.h, OPS_HYPER_LEN * sizeof(float));
      CPU->sgd_step(&cctx, n, p.h, g.h, m.h, hy.h, moms[mi], 1e-3f);
      GPU->sgd_step(&gctx, n, p.d, g.d, m.d, hy.d, moms[mi], 1e-3f);
      CMP("sgd param", p, EXACT);
      CMP("sgd buf", m, EXACT);
    }
  drop(&p);
  drop(&g);
  drop(&m);
  drop(&v);
  drop(&hy);
}

int main(void) {
  oc_open();
  test_embedding_dropout_elementwise();
  test_cross_entropy();
  test_score();
  test_augment();
  test_optim();
  test_patch_pad();
  return oc_close("every elementwise, loss, augmentation and optimizer op of CUDA matches the CPU "
                  "backend");
}
