/* attention.h — `ctrain attention`: what seed 000 §6 shows a student, as
 * files. One image of a split goes through a checkpoint's model in eval mode
 * and the softmax weights of every attention layer are written out:
 *
 *   OUT/attention.h5   /layer{i} float32 (heads, tq, tk) for i = 0, 1, ... in
 *                      graph order; root attributes checkpoint, model, split,
 *                      index, label, label_name, predicted, predicted_name,
 *                      classes (strings), layers; each dataset has `mask`
 *                      (none, causal or given).
 *   OUT/input.png      the image, 8x nearest-neighbour (256 x 256).
 *   OUT/attention_layer{i}_head{h}.png
 *                      the image beside the (tq, tk) heat map (viridis, the
 *                      head's own min..max, query rows down, key columns
 *                      across) and, when the tokens are image positions
 *                      (attn_cnn's 8x8 grid, vit's patches), the weight the
 *                      mean query puts on each key position, over the image. */
#ifndef CTRAIN_VIZ_ATTENTION_H
#define CTRAIN_VIZ_ATTENTION_H

#include "core/error.h"

/* split: train, val or test; index: the image's row in it. A model without
 * attention layers, or an index outside the split, is a usage error. */
int viz_attention(const char *ckpt, const char *data, const char *split, long index,
                  const char *out_dir, struct ct_err *e);

#endif
