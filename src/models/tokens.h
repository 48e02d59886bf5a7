/* tokens.h — the captioning vocabulary's special token ids (the CS231n
 * release's, docs/coco.md). They are part of what a captioning model means
 * (its loss does not count <NULL> targets, decoding starts at <START> and
 * stops at <END>), so they live here, where models may include them, and the
 * coco reader (data/coco.h) checks files against them. */
#ifndef CTRAIN_TOKENS_H
#define CTRAIN_TOKENS_H

/* Captions are <START> ... <END> padded with <NULL>; ids below COCO_SPECIALS are these. */
enum { COCO_NULL = 0, COCO_START = 1, COCO_END = 2, COCO_UNK = 3, COCO_SPECIALS = 4 };

#endif
