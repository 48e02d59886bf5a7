/* bench_caption_step — ctrain's side of the captioning benchmark
 * (run_caption.sh): caption_transformer training steps (forward, backward,
 * Adam, train mode with dropout) on random COCO-shaped data, in caption
 * tokens per second (batch x T positions, T = max_length - 1), and peak RSS.
 * Applies the ctrain binary's environment tuning (src/cli/env.c).
 * usage: bench_caption_step BATCH THREADS STEPS [WIDTH HEADS LAYERS FFN VOCAB FEATURES] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/env.h"
#include "kernels/ops_shared.h"
#include "models/tokens.h"
#include "optim/optim.h"
#include "train/session.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int arg(int argc, char **argv, int i, int def) { return argc > i ? atoi(argv[i]) : def; }

int main(int argc, char **argv) {
  env_tune_and_reexec(argv);
  if (argc < 4) {
    fprintf(stderr, "usage: bench_caption_step BATCH THREADS STEPS [WIDTH HEADS LAYERS FFN VOCAB "
                    "FEATURES]\n");
    return 2;
  }
  /* MODELS.md §5 and configs/caption_transformer.ini by default */
  struct model_spec spec = {.name = "caption_transformer",
                            .task = TASK_CAPTIONS,
                            .batch = atoi(argv[1]),
                            .dim = arg(argc, argv, 4, 256),
                            .heads = arg(argc, argv, 5, 2),
                            .depth = arg(argc, argv, 6, 2),
                            .ffn_dim = arg(argc, argv, 7, 2048),
                            .dropout = 0.1f,
                            .vocab_size = arg(argc, argv, 8, 1004),
                            .feature_dim = arg(argc, argv, 9, 512),
                            .max_length = 17};
  const int threads = atoi(argv[2]), steps = atoi(argv[3]);
  struct ct_err e = {0};
  struct session s;
  struct optimizer o;
  if (session_build(&s, ops_cpu(), &spec, threads, 1, &e) ||
      optim_init(&o, s.g.ops, "adam", s.g.params_len, 0.999, 1e-8, 0, 0, &e)) {
    fprintf(stderr, "bench_caption_step: %s\n", e.msg);
    return 1;
  }
  struct graph *g = &s.g;
  const int b = spec.batch, t = spec.max_length - 1, v = spec.vocab_size;
  float *x = s.x.host;          /* (B,D) */
  int32_t *cin = s.tokens.host; /* (B,T) */
  int32_t *cout = s.y.host;     /* (B*T) */
  for (long i = 0; i < (long)b * spec.feature_dim; i++)
    x[i] = 2 * ops_rng_uniform(5, 0, (uint64_t)i) - 1;
  /* captions of 6..14 random words: <START> w.. <END> <NULL>.. (as coco_batch shifts them) */
  for (int r = 0; r < b; r++) {
    int32_t cap[64] = {COCO_START};
    int len = 6 + (int)(9 * ops_rng_uniform(6, 0, (uint64_t)r)), j = 1;
    for (; j <= len && j < t; j++)
      cap[j] = COCO_SPECIALS + (int32_t)((v - COCO_SPECIALS) * ops_rng_uniform(7, r, j));
    cap[j] = COCO_END;
    for (j = 0; j < t; j++) {
      cin[r * t + j] = cap[j];
      cout[r * t + j] = cap[j + 1];
    }
  }
  g->training = 1;
  for (int i = 0; i < 3; i++) { /* warm-up */
    g->step_counter++;
    graph_forward(g);
    graph_backward(g);
    optim_step(&o, &g->ctx, g->params, g->grads, 1e-3, 0.9);
  }
  double t0 = now_s();
  for (int i = 0; i < steps; i++) {
    g->step_counter++;
    graph_forward(g);
    graph_backward(g);
    optim_step(&o, &g->ctx, g->params, g->grads, 1e-3, 0.9);
  }
  double train_s = now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"impl\":\"ctrain\",\"model\":\"caption_transformer\",\"batch\":%d,\"threads\":%d,"
         "\"tokens_per_step\":%d,\"train_tokens_per_s\":%.1f,\"peak_rss_mb\":%.1f}\n",
         b, threads, b * t, (double)steps * b * t / train_s, ru.ru_maxrss / 1024.0);
  optim_free(&o);
  session_free(&s);
  return 0;
}
