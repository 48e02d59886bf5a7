/* bleu.c — corpus BLEU statistics and scores (bleu.h). Captions are short
 * (at most max_length - 1 words), so n-grams are counted by direct comparison
 * without any table: O(L^2) per candidate and reference. */
#include "train/bleu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokens.h"

int bleu_words(const int32_t *row, int t, const int32_t **words) {
  int i = t > 0 && row[0] == COCO_START ? 1 : 0, n = 0;
  *words = row + i;
  while (i + n < t && row[i + n] != COCO_END && row[i + n] != COCO_NULL)
    n++;
  return n;
}

/* Occurrences of the n-gram g in the len words of s. */
static int count_ngram(const int32_t *g, int n, const int32_t *s, int len) {
  int c = 0;
  for (int i = 0; i + n <= len; i++)
    c += memcmp(g, s + i, (size_t)n * sizeof *g) == 0;
  return c;
}

void bleu_add(struct bleu_stats *s, const int32_t *cand, int clen, int nrefs,
              const int32_t *const *refs, const int *rlens) {
  for (int n = 1; n <= BLEU_N; n++) {
    for (int i = 0; i + n <= clen; i++) {
      /* each distinct n-gram once, at its first occurrence */
      if (count_ngram(cand + i, n, cand, i + n - 1) > 0) continue;
      int have = count_ngram(cand + i, n, cand, clen), clip = 0;
      for (int k = 0; k < nrefs; k++) {
        int c = count_ngram(cand + i, n, refs[k], rlens[k]);
        clip = c > clip ? c : clip;
      }
      s->v[BLEU_MATCH + n - 1] += have < clip ? have : clip;
    }
    s->v[BLEU_TOTAL + n - 1] += clen >= n ? clen - n + 1 : 0;
  }
  int best = -1;
  for (int k = 0; k < nrefs; k++) {
    int d = abs(rlens[k] - clen), bd = abs(best - clen);
    if (best < 0 || d < bd || (d == bd && rlens[k] < best)) best = rlens[k];
  }
  s->v[BLEU_CAND_LEN] += clen;
  s->v[BLEU_REF_LEN] += best > 0 ? best : 0;
}

void bleu_scores(const struct bleu_stats *s, double bleu[BLEU_N]) {
  const double c = s->v[BLEU_CAND_LEN], r = s->v[BLEU_REF_LEN];
  const double bp = c <= 0 ? 0 : c > r ? 1 : exp(1 - r / c);
  double logsum = 0;
  int zero = bp == 0;
  for (int n = 1; n <= BLEU_N; n++) {
    double match = s->v[BLEU_MATCH + n - 1], total = s->v[BLEU_TOTAL + n - 1];
    zero |= match <= 0 || total <= 0;
    if (!zero) logsum += log(match / total);
    bleu[n - 1] = zero ? 0 : bp * exp(logsum / n);
  }
}
