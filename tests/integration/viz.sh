#!/bin/sh
# What the notebooks show a student, as files (seed 000 §5.1 and §6): a short
# attn_cnn run on synthetic data, then its attention weights for one test
# image (HDF5 + PNG) and its learning curves (PNG). The PNGs are decoded with
# a small stdlib decoder (Debian's python3 has no PIL), and input.png must be
# the dataset's image, 8x.
# usage: viz.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

attention() { "$ctrain" attention "$1" --data "$2" --split "$3" --index "$4" --out "$5"; }
plot() { "$ctrain" plot "$1"; }

# 704 images, 64 of them split off for /val, leave 640 = 20 batches of 32:
# max_steps = 20 is exactly one epoch, so the run ends with a validation row.
"$ctrain" prepare synthetic "$tmp/d.h5" --train 704 --test 64 --val 64 --seed 5
"$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.max_steps=20 --set train.epochs=1 --set train.batch_size=32 \
  --set run.dir="$tmp/run" --set run.log_every=4 > "$tmp/out.txt"
ckpt=$(sed -n 's/^checkpoint: //p' "$tmp/out.txt")
test -f "$ckpt"

attention "$ckpt" "$tmp/d.h5" test 7 "$tmp/att"
plot "$tmp/run"

# An index past the split is a usage error naming the file and its size.
if attention "$ckpt" "$tmp/d.h5" test 64 "$tmp/att2" 2> "$tmp/err.txt"; then
  echo "index 64 of a 64-image split was accepted" >&2
  exit 1
fi
grep -q "d.h5: --index 64 is out of range: split 'test' has 64 images" "$tmp/err.txt"

/usr/bin/python3 - "$tmp" <<'PY'
import struct, sys, zlib
import h5py, numpy as np

tmp = sys.argv[1]


def read_png(path):
    """8-bit RGB, non-interlaced (what ctrain writes) -> (h, w, 3) uint8."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, (path, kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert kind == b"IEND", path
    w, h, depth, colour, _, _, interlace = ihdr
    assert (depth, colour, interlace) == (8, 2, 0), (path, ihdr)
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + 3 * w), path
    out = np.zeros((h, 3 * w), np.int32)
    prev = np.zeros(3 * w, np.int32)
    for y in range(h):
        f, line = raw[y * (1 + 3 * w)], np.frombuffer(raw, np.uint8, 3 * w, y * (1 + 3 * w) + 1)
        cur = line.astype(np.int32)
        if f == 2:
            cur = (cur + prev) & 255
        elif f in (1, 3, 4):  # these depend on the pixel to the left: per byte
            cur = cur.copy()
            for i in range(3 * w):
                a = cur[i - 3] if i >= 3 else 0
                b, c = prev[i], prev[i - 3] if i >= 3 else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + pred) & 255
        else:
            assert f == 0, (path, f)
        out[y] = prev = cur
    return out.reshape(h, w, 3).astype(np.uint8)


f = h5py.File(f"{tmp}/att/attention.h5", "r")
d = h5py.File(f"{tmp}/d.h5", "r")
assert f.attrs["model"] == b"attn_cnn" and f.attrs["index"] == 7 and f.attrs["split"] == b"test"
assert f.attrs["layers"] == 2 and sorted(f.keys()) == ["layer0", "layer1"], list(f.keys())
assert f.attrs["label"] == d["test/labels"][7]
def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


classes = [text(c) for c in f.attrs["classes"]]
assert classes == [text(c) for c in d.attrs["classes"]], classes
assert 0 <= f.attrs["predicted"] < len(classes)
assert text(f.attrs["predicted_name"]) == classes[f.attrs["predicted"]]
for i in range(2):
    w = f[f"layer{i}"]
    assert w.shape == (1, 64, 64) and w.dtype == np.float32, (w.shape, w.dtype)
    assert w.attrs["mask"] == b"causal"
    w = w[0].astype(np.float64)
    assert np.abs(w.sum(axis=1) - 1).max() < 1e-5, np.abs(w.sum(axis=1) - 1).max()
    assert (np.triu(w, 1) == 0).all(), "weight above the diagonal of a causal mask"

img = read_png(f"{tmp}/att/input.png")
assert img.shape == (256, 256, 3), img.shape
want = d["test/images"][7].transpose(1, 2, 0).repeat(8, 0).repeat(8, 1)
assert (img == want).all(), "input.png is not test image 7"
for i in range(2):
    heat = read_png(f"{tmp}/att/attention_layer{i}_head0.png")
    # image | 64x64 map at 4 px a cell + colour bar | mean-query 8x8 map over the image
    assert heat.shape == (384, 1022, 3), heat.shape
    assert (heat[64:320, 24:280] == want).all(), "the heat map picture lacks the input image"
    assert len(np.unique(heat[64:320, 364:620].reshape(-1, 3), axis=0)) > 8, "flat heat map"
curves = read_png(f"{tmp}/run/curves.png")
assert curves.shape == (440, 1100, 3), curves.shape
# the train line, the validation marker and the accuracy marker are drawn
for rgb in [(31, 119, 180), (255, 127, 14), (44, 160, 44)]:
    assert (curves == rgb).all(axis=2).sum() > 20, rgb
rows = [l for l in open(f"{tmp}/run/metrics.jsonl")]
assert sum('"val"' in l for l in rows) == 1 and '"step":20,' in rows[-1], rows[-2:]
print("ok: attention.h5 (2 x (1,64,64), causal, rows sum to 1), 4 PNGs decoded")
PY
