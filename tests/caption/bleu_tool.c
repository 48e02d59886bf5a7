/* bleu_tool — ctrain's corpus BLEU (src/train/bleu.h) on a corpus from
 * stdin, for test_bleu.py: one image per line, token rows separated by '|',
 * the candidate first, then its references, e.g. `5 6 2 | 1 5 6 7 2 0 | 1 6 2`.
 * Each row goes through bleu_words (after a leading <START>, up to <END> or
 * <NULL>). Prints the statistics and BLEU-1..4 as one JSON line.
 * usage: bleu_tool < corpus.txt */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/bleu.h"

enum { MAX_ROWS = 64, MAX_TOKENS = 256 };

/* Parses one row of integers from *p up to '|' or the line's end. */
static int parse_row(char **p, int32_t *row) {
  int n = 0;
  char *end;
  for (;;) {
    while (**p == ' ' || **p == '\t')
      (*p)++;
    if (**p == '|' || **p == '\n' || **p == 0) break;
    long v = strtol(*p, &end, 10);
    if (end == *p || n == MAX_TOKENS) return -1;
    row[n++] = (int32_t)v;
    *p = end;
  }
  return n;
}

int main(void) {
  static char line[1 << 16];
  static int32_t rows[MAX_ROWS][MAX_TOKENS];
  const int32_t *words[MAX_ROWS];
  int lens[MAX_ROWS];
  struct bleu_stats s = {{0}};
  long images = 0;
  while (fgets(line, sizeof line, stdin)) {
    char *p = line;
    int nrows = 0;
    for (;;) {
      if (nrows == MAX_ROWS) return fprintf(stderr, "bleu_tool: too many rows\n"), 2;
      int n = parse_row(&p, rows[nrows]);
      if (n < 0) return fprintf(stderr, "bleu_tool: bad line %ld\n", images + 1), 2;
      lens[nrows] = bleu_words(rows[nrows], n, &words[nrows]);
      nrows++;
      if (*p != '|') break;
      p++;
    }
    bleu_add(&s, words[0], lens[0], nrows - 1, words + 1, lens + 1);
    images++;
  }
  double b[BLEU_N];
  bleu_scores(&s, b);
  printf("{\"images\":%ld,\"match\":[%.17g,%.17g,%.17g,%.17g],\"total\":[%.17g,%.17g,%.17g,%.17g],"
         "\"cand_len\":%.17g,\"ref_len\":%.17g,\"bleu\":[%.17g,%.17g,%.17g,%.17g]}\n",
         images, s.v[BLEU_MATCH], s.v[BLEU_MATCH + 1], s.v[BLEU_MATCH + 2], s.v[BLEU_MATCH + 3],
         s.v[BLEU_TOTAL], s.v[BLEU_TOTAL + 1], s.v[BLEU_TOTAL + 2], s.v[BLEU_TOTAL + 3],
         s.v[BLEU_CAND_LEN], s.v[BLEU_REF_LEN], b[0], b[1], b[2], b[3]);
  return 0;
}
