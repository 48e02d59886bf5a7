"""bleu_ref.py -- an independent corpus BLEU in plain Python (Counter-based),
the definition of docs/coco.md: words are the tokens after a leading <START>
up to the first <END> or <NULL>; per n = 1..4 the candidate's n-gram counts
clipped by the maximum count in any one reference of its image, summed over
the corpus and divided by the candidate n-grams; brevity penalty from the
summed candidate length c and the summed closest reference length r (ties
to the shorter): BP = 1 if c > r else exp(1 - r/c); BLEU-N = BP *
exp(mean_{n<=N} log p_n), 0 when some p_n is 0 or has no n-grams (no
smoothing) or c = 0."""
import math
from collections import Counter

NULL, START, END = 0, 1, 2


def words(row):
    row = list(row)
    if row and row[0] == START:
        row = row[1:]
    out = []
    for tok in row:
        if tok in (END, NULL):
            break
        out.append(tok)
    return out


def ngrams(ws, n):
    return Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))


def corpus_stats(corpus):
    """corpus: [(candidate words, [reference words, ...]), ...]"""
    match, total = [0] * 4, [0] * 4
    c = r = 0
    for cand, refs in corpus:
        for n in range(1, 5):
            cc = ngrams(cand, n)
            best = Counter()
            for ref in refs:
                best |= ngrams(ref, n)          # element-wise max
            match[n - 1] += sum(min(k, best[g]) for g, k in cc.items())
            total[n - 1] += max(len(cand) - n + 1, 0)
        c += len(cand)
        if refs:
            r += min((abs(len(x) - len(cand)), len(x)) for x in refs)[1]
    return match, total, c, r


def corpus_bleu(corpus):
    match, total, c, r = corpus_stats(corpus)
    if c == 0:
        return [0.0] * 4, (match, total, c, r)
    bp = 1.0 if c > r else math.exp(1 - r / c)
    out = []
    for big_n in range(1, 5):
        if any(match[n] == 0 or total[n] == 0 for n in range(big_n)):
            out.append(0.0)
        else:
            out.append(bp * math.exp(sum(math.log(match[n] / total[n]) for n in range(big_n)) / big_n))
    return out, (match, total, c, r)
