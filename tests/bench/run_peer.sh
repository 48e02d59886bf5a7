#!/bin/sh
# ctrain against the newest PyTorch from PyPI (the venv tests/bench/peer.sh
# installs), side by side in one run: for each recipe's model at the README
# table's batch and step count, ROUNDS alternating rounds of ctrain's
# bench_step, then bench_torch.py in eager, channels_last and torch.compile
# mode, THREADS threads each. Alternating, rather than one implementation's
# rounds after the other's, spreads a shared machine's load changes over all
# of them, so the ratios hold up better than the absolute figures.
# Prints per model the medians (train and inference images/s, peak RSS), the
# ratio of ctrain to the best PyTorch mode, and torch.compile's compile time:
# round 1 runs with an empty inductor cache (cold), later rounds hit the cache
# that round 1 filled. Raw JSON lines go to a file it names.
# A PyTorch mode that fails is recorded with its error line, not dropped.
# usage: tests/bench/run_peer.sh [MODEL...]     (default: every recipe)
# env: ROUNDS (3), THREADS (2), CTRAIN_SRC (this checkout: the tree whose
#   build/tests/bench_step runs and whose commit is reported),
#   CTRAIN_BENCH_STEP (its bench_step), CTRAIN_PEER_VENV, CTRAIN_PEER_OUT,
#   CTRAIN_PEER_TIMEOUT (seconds per PyTorch run, 1800)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "run_peer.sh: $*" >&2; exit 1; }
rounds=${ROUNDS:-3} threads=${THREADS:-2}
src=${CTRAIN_SRC:-$(cd "$here/../.." && pwd)}
bench=${CTRAIN_BENCH_STEP:-$src/build/tests/bench_step}
venv=${CTRAIN_PEER_VENV:-$HOME/.cache/ctrain/torch-peer}
py=$venv/bin/python
limit=${CTRAIN_PEER_TIMEOUT:-1800}
[ -x "$bench" ] || die "no $bench: build ctrain first (launch/build.sh)"
"$py" -c 'import torch' >/dev/null 2>&1 || die "no torch in $venv: run tests/bench/peer.sh first"

# Recipe, batch and steps as in README.md's "Speed against PyTorch" table.
table="attn_cnn 128 40
vit 64 20
conv_vit 128 20
ultimus 512 10
cnn_vanilla 64 20
cnn_early 64 20
cnn_late 64 20
cnn_double 64 20
resnet10 64 10
resnet10_attn 64 10"
if [ $# -gt 0 ]; then
  sel=""
  for m in "$@"; do
    line=$(printf '%s\n' "$table" | awk -v m="$m" '$1 == m') || true
    [ -n "$line" ] || die "unknown model $m (one of: $(printf '%s\n' "$table" | awk '{printf "%s ", $1}'))"
    sel="$sel$line
"
  done
  table=$sel
fi

mkdir -p "$HOME/.cache/ctrain"
out=${CTRAIN_PEER_OUT:-$HOME/.cache/ctrain/peer-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: >"$out" || die "cannot write $out"
# A fresh inductor cache per run: round 1's compile time is then a cold one.
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$cache/inductor" TRITON_CACHE_DIR="$cache/triton"
export OMP_NUM_THREADS="$threads"
# The same OpenMP tuning that ctrain's binaries apply to themselves
# (src/cli/env.c): with GOMP's default 300000-iteration spin, idle workers
# starve the busy ones on a loaded 2-core machine, and torch.compile's many
# small parallel regions made its steps ~15x slower (measured on attn_cnn,
# batch 16: 0.57 s against 0.04 s per train step). A user's own value wins.
if [ -z "${GOMP_SPINCOUNT:-}" ] && [ -z "${OMP_WAIT_POLICY:-}" ]; then export GOMP_SPINCOUNT=10000; fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
tv=$("$py" -c 'import torch; print(torch.__version__)')
echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), CPU: $cpu ($(nproc) cores), ctrain $commit ($bench), torch $tv, $threads threads, $rounds rounds, GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
echo "raw JSON lines: $out"

# tag ROUND: adds the round to each JSON line, so the summary can tell the
# cold compile (round 1) from the cached ones.
tag() { sed "s/^{/{\"round\": $1, /"; }

printf '%s\n' "$table" | while read -r model batch steps; do
  [ -n "$model" ] || continue
  for r in $(seq "$rounds"); do
    echo "  $model batch $batch, round $r/$rounds" >&2
    "$bench" "$model" "$batch" "$threads" "$steps" | tag "$r" >>"$out" ||
      die "ctrain's bench_step failed on $model"
    for mode in eager channels_last compile; do
      # A failing mode has written its JSON line with "error"; a run killed
      # by the timeout has not, so one is written here.
      set +e
      res=$(timeout "$limit" "$py" "$here/bench_torch.py" --model "$model" --batch "$batch" \
              --threads "$threads" --steps "$steps" --mode "$mode")
      rc=$?
      set -e
      if [ -n "$res" ]; then
        printf '%s\n' "$res" | tag "$r" >>"$out"
      else
        printf '{"round": %s, "impl": "pytorch", "mode": "%s", "model": "%s", "batch": %s, "error": "exit %s%s"}\n' \
          "$r" "$mode" "$model" "$batch" "$rc" "$([ $rc = 124 ] && echo ", timed out after ${limit}s")" >>"$out"
      fi
    done
  done
done

"$py" - "$out" "$cpu" "$commit" "$tv" "$threads" "$rounds" <<'PY'
import json, statistics, sys
path, cpu, commit, tv, threads, rounds = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
models = list(dict.fromkeys((r["model"], r["batch"]) for r in rows))
impls = [("ctrain", None), ("eager", "eager"), ("channels_last", "channels_last"), ("compile", "compile")]

def sel(model, batch, mode):
    return [r for r in rows if r["model"] == model and r["batch"] == batch and
            (r["impl"] == "ctrain" if mode is None else r.get("mode") == mode and r["impl"] == "pytorch")]

def med(rs, key):
    v = [r[key] for r in rs if key in r and "error" not in r]
    return statistics.median(v) if v else None

def f0(v):
    return "-" if v is None else f"{v:,.0f}"

md = []
for model, batch in models:
    print(f"\n{model}, batch {batch}")
    print(f"{'':14} {'train img/s':>12} {'infer img/s':>12} {'peak RSS MB':>12}  compile s (cold / cached: train, infer)")
    res = {}
    for name, mode in impls:
        rs = sel(model, batch, mode)
        errs = [r["error"] for r in rs if "error" in r]
        res[name] = (med(rs, "train_images_per_s"), med(rs, "infer_images_per_s"), med(rs, "peak_rss_mb"), errs)
        extra = ""
        if name == "compile":
            cold = [r for r in rs if r.get("round") == 1 and "compile_s_train" in r and "error" not in r]
            warm = [r for r in rs if r.get("round", 1) > 1 and "error" not in r]
            c = (f"{cold[0]['compile_s_train']:.1f}, {cold[0]['compile_s_infer']:.1f}" if cold else "-")
            w = (f"{med(warm, 'compile_s_train'):.1f}, {med(warm, 'compile_s_infer'):.1f}" if warm else "-")
            res[name] += (c, w)
            extra = f"  {c} / {w}"
        if errs:
            extra += f"  [{len(errs)}/{len(rs)} failed: {errs[0]}]"
        t, i, m, _ = res[name][:4]
        print(f"{name:14} {f0(t):>12} {f0(i):>12} {f0(m):>12}{extra}")
    best = {}
    for k, key in ((0, "train"), (1, "infer")):
        cands = [(res[n][k], n) for n, _ in impls[1:] if res[n][k] is not None]
        best[key] = max(cands) if cands else (None, "-")
    ct, ci = res["ctrain"][0], res["ctrain"][1]
    rt = ct / best["train"][0] if ct and best["train"][0] else None
    ri = ci / best["infer"][0] if ci and best["infer"][0] else None
    print(f"{'ratio':14} {'-' if rt is None else f'{rt:.2f}x':>12} {'-' if ri is None else f'{ri:.2f}x':>12}"
          f"  ctrain / best PyTorch mode (train: {best['train'][1]}, inference: {best['infer'][1]})")
    def pair(n):
        t, i, _, errs = res[n][:4]
        if t is None and errs:
            return f"failed: {errs[0]}"
        return f"{f0(t)} / {f0(i)}"
    comp = res["compile"]
    ctime = "-" if comp[0] is None else comp[4] + ("" if comp[5] == "-" else " (cached " + comp[5] + ")")
    md.append(f"| {model}, {batch} | {pair('ctrain')} | {pair('eager')} | {pair('channels_last')} | {pair('compile')} | "
              f"{'-' if rt is None else f'{rt:.2f}x'} ({best['train'][1]}) | {'-' if ri is None else f'{ri:.2f}x'} ({best['infer'][1]}) | {ctime} |")

print("\nMarkdown (train / inference img/s; ratio = ctrain / best PyTorch mode; compile s train, infer):")
print("| model, batch | ctrain | eager | channels_last | torch.compile | train ratio | inference ratio | compile s, cold (cached) |")
print("|---|---|---|---|---|---|---|---|")
print("\n".join(md))
PY
