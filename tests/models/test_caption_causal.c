/* caption_transformer is causal (MODELS.md §5, issue 17): the scores at
 * position j may depend on the caption tokens at positions <= j only. For a
 * model with random weights, changing every token after position t must
 * leave the logits of positions 0..t bit for bit as they were, for t = 0, 1,
 * T/2 and T-2, in eval mode and in training mode (where dropout draws its
 * masks by element index, not by value, so they are the same in both runs).
 * Bitwise: on the cpu backend with the same shapes every product runs the
 * same code in the same order, and a changed key or value after t reaches a
 * query at or before t only through an attention weight of exactly 0.
 *
 * The test has teeth: the same graph with its self-attention's causal mask
 * switched off (the model as nn_sdpa would build it with MASK_NONE; nothing
 * else differs, weights included) must change every earlier position's
 * logits. Switching the nodes in the built graph keeps the model's one
 * builder the only description of it, with no flag in production code. */
#include <stdint.h>
#include <string.h>

#include "graph/graph.h"
#include "kernels/ops_shared.h"
#include "models/models.h"
#include "testutil.h"

enum { B = 3, LEN = 9, T = LEN - 1, V = 20, D_FEAT = 8, THREADS = 2 };

/* Deterministic draws, one stream per use. */
static float uniform(uint64_t stream, uint64_t i, float lo, float hi) {
  return lo + (hi - lo) * ops_rng_uniform(2026, stream, i);
}

static int32_t token(uint64_t stream, uint64_t i) {
  return (int32_t)(ops_rng_bits(2026, stream, i) % V);
}

/* Number of self-attention nodes switched from MASK_CAUSAL to MASK_NONE. */
static int drop_causal_masks(struct graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_ATTENTION && g->nodes[i].p.attn.mask == MASK_CAUSAL) {
      g->nodes[i].p.attn.mask = MASK_NONE;
      n++;
    }
  return n;
}

/* Forward on `tokens`; the logits (B*T, V) into out. */
static void logits_of(struct graph *g, const struct model_io *io, const int32_t *tokens,
                      float *out) {
  memcpy(g->tensors[io->tokens].data, tokens, sizeof(int32_t) * B * T);
  graph_forward(g);
  memcpy(out, tensor_f32(g, io->logits), sizeof(float) * B * T * V);
}

static int same_row(const float *a, const float *b, int b_row, int pos) {
  const size_t off = ((size_t)b_row * T + (size_t)pos) * V;
  return memcmp(a + off, b + off, sizeof(float) * V) == 0;
}

/* For each t: the tokens after t replaced by different ones. causal: the
 * logits at positions <= t must be bitwise unchanged; otherwise every row at
 * a position <= t must have changed. Either way the row at t + 1 must have
 * changed, so the new tokens do reach the model. Returns the number of
 * changed rows at positions <= t, over all t. */
static long check(struct graph *g, const struct model_io *io, int causal) {
  static const int ts[] = {0, 1, T / 2, T - 2};
  static int32_t base[B * T], changed[B * T];
  static float ref[B * T * V], got[B * T * V];
  for (int i = 0; i < B * T; i++)
    base[i] = token(3, (uint64_t)i);
  long moved = 0;
  for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
    const int t = ts[k];
    memcpy(changed, base, sizeof base);
    for (int r = 0; r < B; r++)
      for (int j = t + 1; j < T; j++) {
        int32_t *c = &changed[r * T + j];
        *c = (int32_t)((*c + 1 + token(4, (uint64_t)(r * T + j)) % (V - 1)) % V); /* != base */
      }
    logits_of(g, io, base, ref);
    logits_of(g, io, changed, got);
    for (int r = 0; r < B; r++) {
      for (int j = 0; j <= t; j++) {
        const int same = same_row(ref, got, r, j);
        moved += !same;
        if (same != causal)
          fprintf(stderr, "%s, t %d: row %d position %d %s\n", causal ? "causal" : "maskless", t, r,
                  j, same ? "unchanged" : "changed");
        TU_CHECK(same == causal);
      }
      TU_CHECK(!same_row(ref, got, r, t + 1));
    }
  }
  return moved;
}

int main(void) {
  struct model_spec spec = {.name = "caption_transformer",
                            .task = TASK_CAPTIONS,
                            .batch = B,
                            .dim = 32,
                            .depth = 2,
                            .heads = 4,
                            .ffn_dim = 64,
                            .dropout = 0.1f,
                            .vocab_size = V,
                            .feature_dim = D_FEAT,
                            .max_length = LEN};
  struct graph g;
  struct model_io io;
  struct ct_err e = {0};
  graph_init(&g, ops_cpu(), THREADS, 7);
  if (model_build(&g, &spec, &io, &e) || graph_plan(&g, &e)) {
    fprintf(stderr, "test_caption_causal: %s\n", e.msg);
    return 1;
  }
  /* Random weights wider than the N(0, 0.02) init, so that the attention
   * weights are far from uniform and the signal paths are not near zero. */
  for (size_t i = 0; i < g.params_len; i++)
    g.params[i] = uniform(1, i, -0.5f, 0.5f);
  float *features = tensor_f32(&g, io.input);
  for (int i = 0; i < B * D_FEAT; i++)
    features[i] = uniform(2, (uint64_t)i, -1.0f, 1.0f);
  for (int i = 0; i < B * T; i++)
    ((int32_t *)g.tensors[io.labels].data)[i] = token(5, (uint64_t)i);

  g.step_counter = 3;
  for (int training = 0; training <= 1; training++) {
    g.training = training;
    check(&g, &io, 1);
  }
  /* Every decoder layer's self-attention, and only it, is causal. */
  TU_CHECK(drop_causal_masks(&g) == spec.depth);
  for (int training = 0; training <= 1; training++) {
    g.training = training;
    printf("without the causal mask, %s mode: %ld earlier rows changed\n",
           training ? "training" : "eval", check(&g, &io, 0));
  }
  graph_free(&g);
  TU_DONE();
}
