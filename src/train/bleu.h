/* bleu.h — corpus BLEU (Papineni et al., 2002) on token ids, as docs/coco.md
 * defines it: for n = 1..4 the clipped n-gram matches of every candidate
 * against all references of its image, summed over the corpus, over the
 * candidate n-grams summed; the brevity penalty from the summed candidate
 * length c and the summed closest reference length r (a tie goes to the
 * shorter); BLEU-N = BP * exp(sum_{n<=N} log(p_n) / N), no smoothing (0 when
 * some p_n is 0 or undefined, or c is 0). */
#ifndef CTRAIN_BLEU_H
#define CTRAIN_BLEU_H

#include <stdint.h>

enum {
  BLEU_N = 4,
  BLEU_MATCH = 0,                /* v[BLEU_MATCH + n - 1]: clipped n-gram matches */
  BLEU_TOTAL = BLEU_N,           /* v[BLEU_TOTAL + n - 1]: candidate n-grams */
  BLEU_CAND_LEN = 2 * BLEU_N,    /* candidate words */
  BLEU_REF_LEN = 2 * BLEU_N + 1, /* closest reference words */
  BLEU_STATS = 2 * BLEU_N + 2
};

/* The corpus's sufficient statistics: sums of integers, so parts of a corpus
 * (ranks) add exactly as doubles, and the corpus score does not depend on how
 * it was split. */
struct bleu_stats {
  double v[BLEU_STATS];
};

/* The words of a caption row of t tokens: after a leading <START>, up to the
 * first <END> or <NULL> (exclusive). Returns their count; *words points at
 * the first. */
int bleu_words(const int32_t *row, int t, const int32_t **words);

/* Adds one image: candidate `cand` (clen words) against nrefs references. */
void bleu_add(struct bleu_stats *s, const int32_t *cand, int clen, int nrefs,
              const int32_t *const *refs, const int *rlens);

/* BLEU-1..BLEU_N of the corpus, in [0, 1]. */
void bleu_scores(const struct bleu_stats *s, double bleu[BLEU_N]);

#endif
