/* caption_transformer's graph: the state_dict names and the parameter count
 * of the seed's module (MODELS.md §5; PyTorch's CaptionTransformer in
 * tests/reference/models.py has 3,803,884 for V 1004, D 512, W 256, 2
 * layers, FFN 2048), the input and output shapes the trainer feeds and
 * reads, the loss's <NULL> mask and B*T divisor, and the errors for a model
 * given the other kind of data or a bad width. Numerics: the PyTorch parity
 * test (reference/parity_caption_transformer). */
#include <math.h>
#include <string.h>

#include "graph/graph.h"
#include "models/models.h"
#include "models/tokens.h"
#include "testutil.h"

static struct model_spec caption_spec(int batch, int dim, int heads, int ffn, int vocab) {
  return (struct model_spec){.name = "caption_transformer",
                             .task = TASK_CAPTIONS,
                             .batch = batch,
                             .dim = dim,
                             .depth = 2,
                             .heads = heads,
                             .ffn_dim = ffn,
                             .vocab_size = vocab,
                             .feature_dim = 512,
                             .max_length = 17};
}

static int build(const struct model_spec *spec, struct graph *g, struct model_io *io,
                 struct ct_err *e) {
  graph_init(g, ops_cpu(), 1, 3);
  int rc = model_build(g, spec, io, e);
  if (rc == CT_OK) rc = graph_plan(g, e);
  return rc;
}

/* Parameter count, names and shapes of the seed's configuration. */
static void test_structure(void) {
  struct model_spec spec = caption_spec(4, 256, 2, 2048, 1004);
  struct graph g;
  struct model_io io;
  struct ct_err e = {0};
  TU_CHECK(build(&spec, &g, &io, &e) == CT_OK);
  /* W*D+W, V*W, 2 x (8 attention linears W*W+W, fc1 F*W+F, fc2 W*F+W,
   * 3 LayerNorms 2W), V*W+V */
  TU_CHECK(g.params_count == 3803884);
  /* every parameter on a 256-byte boundary of the flat buffer, the gaps
   * zero, the buffer no longer than the parameters plus the gaps */
  size_t params = 0, misaligned = 0, end = 0;
  for (int t = 0; t < g.ntensors; t++) {
    if (g.tensors[t].kind != TK_PARAM) continue;
    size_t off = (size_t)((const float *)g.tensors[t].data - g.params);
    params++;
    misaligned += (off * sizeof(float)) % 256 != 0;
    if (off + g.tensors[t].numel > end) end = off + g.tensors[t].numel;
  }
  TU_CHECK(misaligned == 0 && end == g.params_len);
  TU_CHECK(g.params_len >= g.params_count && g.params_len < g.params_count + 64 * params);
  const char *names[] = {"visual_projection.weight",
                         "embedding.weight",
                         "transformer.layers.0.self_attn.query.weight",
                         "transformer.layers.0.cross_attn.key.bias",
                         "transformer.layers.1.cross_attn.proj.weight",
                         "transformer.layers.1.ffn.fc2.bias",
                         "transformer.layers.1.norm_cross.weight",
                         "output.bias"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (graph_find(&g, names[i]) < 0) fprintf(stderr, "missing parameter %s\n", names[i]);
    TU_CHECK(graph_find(&g, names[i]) >= 0);
  }
  const struct tensor *in = &g.tensors[io.input], *tok = &g.tensors[io.tokens],
                      *lab = &g.tensors[io.labels], *lg = &g.tensors[io.logits];
  TU_CHECK(in->ndim == 2 && in->shape[0] == 4 && in->shape[1] == 512 && in->dtype == DT_F32);
  TU_CHECK(tok->ndim == 2 && tok->shape[0] == 4 && tok->shape[1] == 16 && tok->dtype == DT_I32);
  TU_CHECK(lab->ndim == 1 && lab->shape[0] == 64 && lab->dtype == DT_I32);
  TU_CHECK(lg->ndim == 2 && lg->shape[0] == 64 && lg->shape[1] == 1004);
  graph_free(&g);
}

/* At init (weights N(0, 0.02)) every logit is near 0, so each counted token
 * costs about ln V: the loss is (counted tokens) ln V / (B*T), and 0 when
 * every target is <NULL>. */
static void test_loss_mask(void) {
  enum { B = 3, T = 16, V = 45 };
  struct model_spec spec = caption_spec(B, 32, 2, 64, V);
  struct graph g;
  struct model_io io;
  struct ct_err e = {0};
  TU_CHECK(build(&spec, &g, &io, &e) == CT_OK);
  int32_t *cin = (int32_t *)g.tensors[io.tokens].data;
  int32_t *cout = (int32_t *)g.tensors[io.labels].data;
  for (int i = 0; i < B * T; i++) {
    cin[i] = COCO_START + i % (V - 1);
    cout[i] = COCO_NULL;
  }
  g.training = 0;
  graph_forward(&g);
  TU_CHECK(tensor_f32(&g, io.loss)[0] == 0.0f);
  const int counted = 7;
  for (int i = 0; i < counted; i++)
    cout[i * 5] = COCO_END + i;
  graph_forward(&g);
  TU_CLOSE(tensor_f32(&g, io.loss)[0], counted * log((double)V) / (B * T), 2e-2, 0);
  graph_free(&g);
}

static void expect_error(const struct model_spec *spec, const char *what) {
  struct graph g;
  struct model_io io;
  struct ct_err e = {0};
  TU_CHECK(build(spec, &g, &io, &e) == CT_ERR_USAGE);
  if (!strstr(e.msg, what)) fprintf(stderr, "error '%s' does not say '%s'\n", e.msg, what);
  TU_CHECK(strstr(e.msg, what) != NULL);
  graph_free(&g);
}

static void test_errors(void) {
  struct model_spec spec = caption_spec(2, 32, 2, 64, 45);
  spec.task = TASK_IMAGES;
  expect_error(&spec, "trains on captioning data");
  spec = caption_spec(2, 32, 2, 64, 45);
  snprintf(spec.name, sizeof spec.name, "vit");
  expect_error(&spec, "classifies images");
  spec = caption_spec(2, 30, 4, 64, 45);
  expect_error(&spec, "heads must divide dim");
  spec = caption_spec(2, 32, 2, 64, 3);
  expect_error(&spec, "vocab_size >= 4");

  /* Image models have no token input. */
  struct model_spec img = {.name = "vit",
                           .num_classes = 10,
                           .batch = 2,
                           .image_c = 3,
                           .image_h = 32,
                           .image_w = 32,
                           .patch = 8,
                           .dim = 32,
                           .depth = 1,
                           .heads = 2,
                           .ffn_dim = 64};
  struct graph g;
  struct model_io io;
  struct ct_err e = {0};
  TU_CHECK(build(&img, &g, &io, &e) == CT_OK);
  TU_CHECK(io.tokens == -1);
  graph_free(&g);
}

int main(void) {
  test_structure();
  test_loss_mask();
  test_errors();
  TU_DONE();
}
