#!/usr/bin/python3
"""The synthetic COCO files as CS231n reads them, and the ctrain layout made
from them.

Usage: test_coco_layout.py COCO_TOOL

1. synthetic-coco output loads through a copy of assignment 3's
   load_coco_data (coco_utils.py): the same keys, dtypes and shapes as the
   release, the vocabulary with the special tokens at 0..3, and every caption
   decodes (decode_captions) to a well-formed template sentence.
2. The captions are a learnable function of the features: nearest-centroid
   classifiers fitted on train features predict each attribute word of the
   val captions far above chance.
3. prepare_coco's output holds exactly the same captions, indices, features
   and vocabulary, with the documented attributes.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "brown", "grey"]
OBJECTS = ["dog", "cat", "horse", "bird", "car", "bus", "boat", "train"]
PLURALS = ["dogs", "cats", "horses", "birds", "cars", "buses", "boats", "trains"]
PLACES = ["on the grass", "on the street", "near the water", "in a field", "on the beach",
          "in the snow"]
CAPTION = re.compile(r"^<START> (a photo of a|a photo of two|there is a|there are two|a|two) "
                     r"(\w+) (\w+) (%s) <END>$" % "|".join(PLACES))

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def load_coco_data(base_dir, pca_features=True):
    """CS231n assignment 3's loader, as it touches the files."""
    data = {}
    with h5py.File(os.path.join(base_dir, "coco2014_captions.h5"), "r") as f:
        for k, v in f.items():
            data[k] = np.asarray(v)
    suffix = "_pca" if pca_features else ""
    for split in ("train", "val"):
        with h5py.File(os.path.join(base_dir, f"{split}2014_vgg16_fc7{suffix}.h5"), "r") as f:
            data[f"{split}_features"] = np.asarray(f["features"])
    with open(os.path.join(base_dir, "coco2014_vocab.json"), "r") as f:
        for k, v in json.load(f).items():
            data[k] = v
    for split in ("train", "val"):
        with open(os.path.join(base_dir, f"{split}2014_urls.txt"), "r") as f:
            data[f"{split}_urls"] = np.asarray([line.strip() for line in f])
    return data


def decode_captions(captions, idx_to_word):
    """CS231n's decode_captions."""
    decoded = []
    for row in np.atleast_2d(captions):
        words = []
        for t in row:
            word = idx_to_word[t]
            if word != "<NULL>":
                words.append(word)
            if word == "<END>":
                break
        decoded.append(" ".join(words))
    return decoded


def attributes(sentence):
    """(count, colour, object, place) indices stated by one caption."""
    m = CAPTION.match(sentence)
    if not m:
        return None
    lead, colour, obj, place = m.groups()
    two = lead.endswith("two")
    nouns = PLURALS if two else OBJECTS
    if colour not in COLOURS or obj not in nouns:
        return None
    return int(two), COLOURS.index(colour), nouns.index(obj), PLACES.index(place)


def check_cs231n_layout(d, n_train, n_val, per):
    keys = {"train_captions", "train_image_idxs", "val_captions", "val_image_idxs",
            "train_features", "val_features", "idx_to_word", "word_to_idx", "train_urls",
            "val_urls"}
    check(set(d) == keys, f"load_coco_data keys {sorted(d)}")
    for split, n in (("train", n_train), ("val", n_val)):
        caps, idxs, feats = d[f"{split}_captions"], d[f"{split}_image_idxs"], d[f"{split}_features"]
        check(caps.dtype == np.int32 and caps.shape == (n * per, 17), f"{split}_captions {caps.dtype} {caps.shape}")
        check(idxs.dtype == np.int32 and idxs.shape == (n * per,), f"{split}_image_idxs {idxs.dtype} {idxs.shape}")
        check(feats.dtype == np.float32 and feats.shape == (n, 512), f"{split}_features {feats.dtype} {feats.shape}")
        check(d[f"{split}_urls"].shape == (n,), f"{split}_urls {d[f'{split}_urls'].shape}")
        check(np.array_equal(np.bincount(idxs, minlength=n), np.full(n, per)),
              f"{split}: every image has {per} captions")
        check(np.isfinite(feats).all(), f"{split}_features finite")
    itw, wti = d["idx_to_word"], d["word_to_idx"]
    check(isinstance(itw, list) and isinstance(wti, dict) and len(itw) == len(wti),
          "idx_to_word is a list and word_to_idx a dict of the same size")
    check(itw[:4] == ["<NULL>", "<START>", "<END>", "<UNK>"], f"special tokens {itw[:4]}")
    check(all(wti[w] == i for i, w in enumerate(itw)), "word_to_idx inverts idx_to_word")
    for split in ("train", "val"):
        caps = d[f"{split}_captions"]
        check(caps.min() >= 0 and caps.max() < len(itw), f"{split} token ids in the vocabulary")
        decoded = decode_captions(caps, itw)
        bad = [s for s in decoded if attributes(s) is None]
        check(not bad, f"{split}: {len(bad)} captions off the templates, e.g. {bad[:2]}")
    print("decoded:", decode_captions(d["train_captions"][:3], itw))


def image_attributes(d, split):
    """Per image: its attributes, which must agree across its captions."""
    n = d[f"{split}_features"].shape[0]
    attrs = np.full((n, 4), -1)
    consistent = True
    for row, img in zip(d[f"{split}_captions"], d[f"{split}_image_idxs"]):
        a = attributes(decode_captions(row, d["idx_to_word"])[0])
        if attrs[img, 0] >= 0 and tuple(attrs[img]) != a:
            consistent = False
        attrs[img] = a
    check(consistent, f"{split}: all captions of an image state the same attributes")
    return attrs


def check_learnable(d):
    train, val = image_attributes(d, "train"), image_attributes(d, "val")
    xt, xv = d["train_features"], d["val_features"]
    for k, (name, classes) in enumerate((("count", 2), ("colour", 8), ("object", 8),
                                         ("place", 6))):
        centroids = np.stack([xt[train[:, k] == c].mean(0) for c in range(classes)])
        dist = ((xv[:, None, :] - centroids[None]) ** 2).sum(-1)
        acc = (dist.argmin(1) == val[:, k]).mean()
        majority = np.bincount(val[:, k], minlength=classes).max() / len(val)
        print(f"nearest-centroid {name}: val accuracy {acc:.3f} (majority class {majority:.3f})")
        check(acc > 0.9 and acc > majority + 0.3, f"{name} learnable from the features ({acc:.3f})")
        # No single feature gives it away: the attributes live in a random projection.
        best = max(abs(np.corrcoef(xt[:, j], train[:, k] == 0)[0, 1]) for j in range(64))
        check(best < 0.6, f"{name}: one feature correlates {best:.2f} with an attribute")


def check_ctrain_layout(path, d):
    with h5py.File(path, "r") as f:
        for split in ("train", "val"):
            for name, src, dtype in (("captions", "captions", np.int32),
                                     ("image_idxs", "image_idxs", np.int32),
                                     ("features", "features", np.float32)):
                got = f[f"{split}/{name}"]
                check(got.dtype == dtype, f"/{split}/{name} dtype {got.dtype}")
                check(np.array_equal(got[()], d[f"{split}_{src}"]), f"/{split}/{name} equals the source")
        words = [w.decode() if isinstance(w, bytes) else w for w in f["idx_to_word"][()]]
        check(words == d["idx_to_word"], "/idx_to_word equals the JSON vocabulary")
        want = {"vocab_size": len(d["idx_to_word"]), "feature_dim": 512, "max_length": 17,
                "null_id": 0, "start_id": 1, "end_id": 2, "unk_id": 3}
        for k, v in want.items():
            check(int(f.attrs[k]) == v, f"attribute {k} = {f.attrs.get(k)}, want {v}")
        src = f.attrs["features_source"]
        check((src.decode() if isinstance(src, bytes) else src) == "vgg16_fc7_pca", "features_source")


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        subprocess.run([tool, "synthetic", a, "2000", "500", "2", "11"], check=True)
        subprocess.run([tool, "synthetic", b, "2000", "500", "2", "11"], check=True)
        d = load_coco_data(a)
        check_cs231n_layout(d, 2000, 500, 2)
        e = load_coco_data(b)
        check(all(np.array_equal(np.asarray(d[k]), np.asarray(e[k])) for k in d),
              "the same seed gives the same files")
        check_learnable(d)
        out = os.path.join(tmp, "coco.h5")
        subprocess.run([tool, "prepare", a, out], check=True)
        check_ctrain_layout(out, d)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
