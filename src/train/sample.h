/* sample.h — `ctrain sample`: greedy captions of a captioning checkpoint on a
 * split of a `ctrain prepare coco` file, beside the ground truth, and the
 * split's corpus BLEU-1..4 (docs/coco.md). */
#ifndef CTRAIN_SAMPLE_H
#define CTRAIN_SAMPLE_H

#include "comm/comm.h"
#include "core/error.h"

/* Prints the first `show` images of the split (of rank 0's block on more
 * than one rank): the sampled caption and the image's reference captions
 * side by side; then loss, token accuracy and BLEU over the whole split,
 * decoded by every rank on its block of images (device: comm/device.h). */
int sample_checkpoint(const char *ckpt, const char *data, const char *split, long show,
                      const char *device, const struct comm *c, struct ct_err *e);

#endif
