#!/bin/sh
# Greedy decoding against PyTorch: a caption_transformer trained briefly by
# `ctrain train` on synthetic COCO is loaded from its checkpoint into the
# PyTorch module of tests/reference/models.py (strict), whose sample() decodes
# every val image from <START> with a growing sequence; `ctrain sample`
# decodes them on its fixed-shape causal graph. The captions must be equal
# word for word, and the corpus BLEU-1..4 of PyTorch's captions computed by
# bleu_ref.py must equal the trainer's last validation BLEU (same checkpoint).
# usage: greedy_torch.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic-coco "$tmp/src" --train 300 --val 80 --seed 9 >/dev/null
"$ctrain" prepare coco "$tmp/src" "$tmp/coco.h5" >/dev/null
"$ctrain" train "$src/configs/caption_transformer.ini" --set data.path="$tmp/coco.h5" \
  --set model.dim=64 --set model.ffn_dim=256 --set train.batch_size=25 --set train.epochs=4 \
  --set run.dir="$tmp/run" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
ckpt="$tmp/run/checkpoints/step_00000096.h5"
"$ctrain" sample "$ckpt" --data "$tmp/coco.h5" --n 80 >"$tmp/sample.txt" 2>"$tmp/sample.err" ||
  { cat "$tmp/sample.err"; exit 1; }
/usr/bin/python3 - "$tmp" "$ckpt" "$src" <<'PY'
import json, re, sys
import h5py, numpy as np, torch
d, ckpt, src = sys.argv[1:4]
sys.path.insert(0, f"{src}/tests/reference")
sys.path.insert(0, f"{src}/tests/caption")
from models import CaptionTransformer
from bleu_ref import corpus_bleu, words

with h5py.File(f"{d}/coco.h5", "r") as f:
    vocab = [w.decode() if isinstance(w, bytes) else w for w in f["idx_to_word"][()]]
    feats = torch.from_numpy(f["val/features"][()])
    idx, caps = f["val/image_idxs"][()], f["val/captions"][()]
    T = int(f.attrs["max_length"])
model = CaptionTransformer(vocab=len(vocab), input_dim=feats.shape[1], wordvec_dim=64, heads=2,
                           layers=2, ffn=256, dropout=0.1, max_length=T)
with h5py.File(ckpt, "r") as f:
    model.load_state_dict({k: torch.as_tensor(f["model"][k][()]) for k in f["model"]}, strict=True)
model.eval()
torch.set_num_threads(2)
out = model.sample(feats, max_length=T - 1).numpy()   # (N_img, T-1): words, <END>, <NULL>...
torch_caps = [words(r) for r in out]

# ctrain's table: "  index  sampled caption | first reference", then "  | reference" lines
got = {}
for line in open(f"{d}/sample.txt"):
    m = re.fullmatch(r" +(\d+)  (.*?) *\| .*\n", line)
    if m:
        got[int(m.group(1))] = m.group(2).split()
assert sorted(got) == list(range(len(feats))), sorted(got)[:5]
diff = [i for i in got if got[i] != [vocab[t] for t in torch_caps[i]]]
for i in diff[:5]:
    print(f"image {i}: ctrain '{' '.join(got[i])}' torch '{' '.join(vocab[t] for t in torch_caps[i])}'")
assert not diff, f"{len(diff)} of {len(got)} greedy captions differ from PyTorch's"

refs = [[words(c) for c in caps[idx == i]] for i in range(len(feats))]
bleu, _ = corpus_bleu(list(zip(torch_caps, refs)))
val = [json.loads(l) for l in open(f"{d}/run/metrics.jsonl") if '"val"' in l][-1]
for n in range(4):
    assert abs(val[f"bleu{n + 1}"] - bleu[n]) <= 1e-8, (val, bleu)
lengths = sorted(len(c) for c in torch_caps)
print(f"ok: {len(got)} greedy captions ({len(set(map(tuple, torch_caps)))} distinct, "
      f"{lengths[0]}..{lengths[-1]} words) equal PyTorch's; "
      f"BLEU-1..4 {', '.join(f'{b:.4f}' for b in bleu)} as the trainer's")
PY
