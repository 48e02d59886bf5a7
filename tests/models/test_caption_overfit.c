/* The seed-004 captioning overfit check (MODELS.md §5): caption_transformer
 * with the seed's settings (width 256, 2 heads, 2 layers, FFN 2048, dropout
 * 0.1 as its modules have it) trained by Adam 1e-3 for 100 epochs of 50
 * captions in batches of 25 (200 steps) must end with a training loss below
 * 0.05. The loss is the seed solver's: the last step's, computed in training
 * mode before its update.
 * The captions are synthetic COCO (docs/coco.md) with ONE caption per image:
 * with two, an image's captions may use different templates the features do
 * not determine, which no model can memorise. The seed draws 50 captions of
 * the real release, which are almost surely of 50 different images.
 * This drives the graph and the optimizer directly, in the order the
 * trainer does, to read the loss of the last step itself (the trainer logs
 * windows of steps); tests/caption/ runs captioning through `ctrain train`. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/coco.h"
#include "data/prepare_coco.h"
#include "graph/graph.h"
#include "models/models.h"
#include "optim/optim.h"
#include "testutil.h"

enum { CAPTIONS = 50, BATCH = 25, EPOCHS = 100, THREADS = 2 };
static const double LR = 1e-3, TARGET = 0.05;
static const uint64_t SEED = 231; /* the seed's torch.manual_seed */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const struct ct_err *e) {
  fprintf(stderr, "test_caption_overfit: %s\n", e->msg);
  return 1;
}

int main(void) {
  struct ct_err e = {0};
  char dir[] = "/tmp/ctrain-caption-XXXXXX", src[64], h5[64];
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(src, sizeof src, "%s/src", dir);
  snprintf(h5, sizeof h5, "%s/coco.h5", dir);
  struct coco_info info;
  struct coco_shard shard;
  if (prepare_synthetic_coco(src, CAPTIONS, 10, 1, 11, &e) || prepare_coco(src, h5, 0, &e) ||
      coco_read_info(h5, &info, &e) || coco_read_shard(h5, "train", 0, 1, &shard, &e))
    return fail(&e);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
  TU_CHECK(shard.n == CAPTIONS);

  struct model_spec spec = {.name = "caption_transformer",
                            .task = TASK_CAPTIONS,
                            .batch = BATCH,
                            .dim = 256,
                            .depth = 2,
                            .heads = 2,
                            .ffn_dim = 2048,
                            .dropout = 0.1f,
                            .vocab_size = info.vocab_size,
                            .feature_dim = info.feature_dim,
                            .max_length = info.max_length};
  struct graph g;
  struct model_io io;
  struct optimizer o;
  graph_init(&g, ops_cpu(), THREADS, SEED);
  if (model_build(&g, &spec, &io, &e) || graph_plan(&g, &e) ||
      optim_init(&o, g.ops, "adam", g.params_len, 0.999, 1e-8, 0, 0, &e))
    return fail(&e);
  printf("caption_transformer: V %d, D %d, T %d, %zu parameters\n", info.vocab_size,
         info.feature_dim, info.max_length - 1, g.params_len);

  float *features = tensor_f32(&g, io.input);
  int32_t *cin = (int32_t *)g.tensors[io.tokens].data;
  int32_t *cout = (int32_t *)g.tensors[io.labels].data;
  long perm[CAPTIONS];
  float loss = 0;
  const double t0 = now();
  g.training = 1;
  for (int epoch = 0; epoch < EPOCHS; epoch++) {
    coco_permutation(perm, CAPTIONS, SEED, epoch);
    for (int pos = 0; pos < CAPTIONS; pos += BATCH) {
      const int step = epoch * (CAPTIONS / BATCH) + pos / BATCH;
      TU_CHECK(coco_batch(&shard, perm, pos, BATCH, cin, cout, features) == BATCH);
      g.step_counter = (uint64_t)step;
      graph_forward(&g);
      loss = tensor_f32(&g, io.loss)[0];
      graph_backward(&g);
      optim_step(&o, g.ops, &g.ctx, g.params, g.grads, LR, 0.9);
      if (step % 20 == 0) printf("step %3d loss %.4f\n", step, loss);
    }
  }
  printf("final loss %.4f after %d steps (target < %.2f), %.1f s\n", loss,
         EPOCHS * CAPTIONS / BATCH, TARGET, now() - t0);
  TU_CHECK(loss < TARGET);

  optim_free(&o);
  graph_free(&g);
  coco_shard_free(&shard);
  TU_DONE();
}
