#!/usr/bin/python3
"""test_bleu.py BLEU_TOOL -- ctrain's corpus BLEU against bleu_ref.py (an
independent Counter-based implementation) on random token corpora, and
against hand-computed values on known cases (Papineni et al.'s examples,
the brevity penalty, the closest-length tie, clipping across references).
Statistics must be equal exactly (they are integer sums), scores within
1e-12 relative."""
import json
import math
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bleu_ref import END, NULL, START, corpus_bleu, words  # noqa: E402

tool = sys.argv[1]


def run_tool(rows_per_image):
    text = "".join(" | ".join(" ".join(map(str, r)) for r in rows) + "\n" for rows in rows_per_image)
    out = subprocess.run([tool], input=text, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def check(rows_per_image, want=None, label=""):
    got = run_tool(rows_per_image)
    corpus = [(words(rows[0]), [words(r) for r in rows[1:]]) for rows in rows_per_image]
    ref, (match, total, c, r) = corpus_bleu(corpus)
    assert got["match"] == match and got["total"] == total, (label, got, match, total)
    assert got["cand_len"] == c and got["ref_len"] == r, (label, got, c, r)
    for a, b in zip(got["bleu"], ref):
        assert abs(a - b) <= 1e-12 * max(abs(b), 1e-300) or a == b, (label, got["bleu"], ref)
    if want is not None:
        for a, b in zip(got["bleu"], want):
            assert abs(a - b) <= 1e-12 * max(abs(b), 1e-300) or a == b, (label, got["bleu"], want)
    return got


def cap(*ws):
    """A caption row as the data stores it: <START> words <END> <NULL>..."""
    return [START, *ws, END, NULL, NULL]


# --- hand-computed cases (words are ids >= 4) ---------------------------------
the, cat, is_, on, mat, there, a = 4, 5, 6, 7, 8, 9, 10
# Papineni's modified unigram precision: "the the the the the the the" against
# "the cat is on the mat" / "there is a cat on the mat": 2/7; no bigram matches.
# c = 7 > r = 7? closest is 7 (second ref has 7 words): c == r -> BP = 1.
g = check([[[the] * 7 + [END], cap(the, cat, is_, on, the, mat), cap(there, is_, a, cat, on, the, mat)]],
          [2 / 7, 0, 0, 0], "papineni unigram")
assert g["match"][0] == 2 and g["total"][0] == 7 and g["ref_len"] == 7
# Exact match of a 6-word reference: every p_n = 1, BP = 1.
check([[[the, cat, is_, on, the, mat, END], cap(the, cat, is_, on, the, mat)]], [1, 1, 1, 1], "exact")
# Short candidate "the cat" vs a 6-word reference: p1 = p2 = 1, no trigrams
# (BLEU-3/4 = 0 without smoothing), BP = exp(1 - 6/2).
bp = math.exp(1 - 6 / 2)
check([[[the, cat, END], cap(the, cat, is_, on, the, mat)]], [bp, bp, 0, 0], "brevity")
# Closest reference length tie: candidate 5 words, references of 4 and 6:
# r = 4 (the shorter), c > r, BP = 1. p1 = 3/5 (the, cat, on match), p2 = 1/4.
check([[[the, cat, a, on, there, END], cap(the, cat, on, mat), cap(mat, is_, on, the, cat, there)]],
      None, "tie")
g = run_tool([[[the, cat, a, on, there, END], cap(the, cat, on, mat), cap(mat, is_, on, the, cat, there)]])
assert g["ref_len"] == 4 and g["cand_len"] == 5, g
# Clipping takes the maximum over references, not the sum: "the the cat"
# against "the cat" and "the mat": "the" counts once (max 1), cat once: 2/3.
g = check([[[the, the, cat], cap(the, cat), cap(the, mat)]], None, "clip")
assert g["match"][0] == 2 and g["total"][0] == 3, g
# Corpus-level sums, not a mean of sentence scores: two images.
g = check([[[the, cat, END], cap(the, cat)], [[a, mat, on, END], cap(there, is_, a, mat)]], None, "corpus")
assert g["match"][:2] == [4, 2] and g["total"][:2] == [5, 3] and g["ref_len"] == 6, g
# Empty candidate (the model says <END> first): c = 0 -> all zero.
check([[[END], cap(the, cat)]], [0, 0, 0, 0], "empty")
# A candidate's leading <START> is skipped like a reference's; <NULL> ends a row.
check([[[START, the, cat, NULL, mat], cap(the, cat)]], [1, 1, 0, 0], "start/null")

# --- random corpora ---------------------------------------------------------------
rng = random.Random(12345)
for trial in range(40):
    vocab = rng.choice([6, 8, 12, 40])   # small vocabularies: many repeated n-grams
    images = []
    for _ in range(rng.randint(1, 60)):
        def row(max_len):
            n = rng.randint(0, max_len)
            ws = [rng.randrange(4, vocab) for _ in range(n)]
            return [START, *ws, END] + [NULL] * rng.randint(0, 3)
        cand = row(16)[1:]                # decoded rows have no <START>
        refs = [row(15) for _ in range(rng.randint(1, 5))]
        images.append([cand, *refs])
    check(images, None, f"random {trial}")
print("ok: hand-computed cases and 40 random corpora agree with bleu_ref.py")
