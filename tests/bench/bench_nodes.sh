#!/bin/sh
# Data parallelism across nodes, measured on the test cluster of
# tests/slurm/nodes_cluster.sh (3 network namespaces, one slurmd each, Open
# MPI over TCP on veths), under network conditions set on every node's link:
#   none   the veths as they are (memory copies between namespaces)
#   1gbit  tbf at 1 Gbit/s on each node's egress
#   lossy  1 Gbit/s and 0.1 % of the packets each node sends dropped
#          (iptables' statistic match; this kernel has no netem, so no
#          added delay: the model's alpha is what latency there is)
# For each: bench_allreduce on 2 and 3 nodes (one rank each), and ctrain's
# step on 2 nodes x 1 thread for attn_cnn (global batch 128) and resnet10
# (64), blocking and bucketed; plus each model's 1-rank step at the per-rank
# batch (the compute the model adds communication to). Writes into OUT:
# allreduce_COND_P.jsonl, steps.json (scaling_model.py check's rows) and
# summary.txt, then fits and checks the model (scaling_model.py).
#   tests/bench/bench_dist.sh --nodes [BUILD_DIR [OUT]]   (root; never in CI)
set -eu
cd "$(dirname "$0")/../.."
src=$(pwd)
build=${1:-build} out=${2:-bench-nodes}
ctrain=$(realpath "$build/ctrain") bench=$(realpath "$build/tests/bench_allreduce")
mkdir -p "$out"
out=$(realpath "$out")
. tests/slurm/slurm_cluster.sh
. tests/slurm/nodes_cluster.sh
slurm_install || { echo "bench_nodes: cannot install Slurm"; exit 1; }
command -v iptables >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
tmp=$(mktemp -d /var/tmp/ctrain-bench-nodes.XXXXXX)
trap 'nodes_stop "$tmp/cluster"; rm -rf "$tmp"' EXIT
nodes_start "$tmp/cluster" 3
nodes_mpi_env "$tmp/cluster"
id=$(cat "$tmp/cluster/id")
steps=${STEPS:-20}
"$ctrain" prepare synthetic "$tmp/d.h5" --train 5000 --test 100 --seed 1 >/dev/null

shape() {
  i=1
  while [ $i -le 3 ]; do
    ns="ct${id}n$i"
    tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
    ip netns exec "$ns" iptables -F OUTPUT
    case "$1" in
    1gbit | lossy) tc -n "$ns" qdisc add dev eth0 root tbf rate 1gbit burst 256kb latency 50ms ;; esac
    [ "$1" = lossy ] &&
      ip netns exec "$ns" iptables -A OUTPUT -o eth0 -m statistic --mode random --probability 0.001 -j DROP
    i=$((i + 1))
  done
}

# train LOG NODES MODEL BATCH [--set ...]: one run's timing line
train() {
  log=$1 n=$2 model=$3 batch=$4
  shift 4
  srun -N "$n" --ntasks-per-node=1 --mpi=pmix "$ctrain" train "configs/$model.ini" \
    --set data.path="$tmp/d.h5" --set data.val_size=0 --set train.batch_size="$batch" \
    --set train.max_steps="$steps" --set run.threads=1 --set run.log_every=1000 \
    --set run.resume=none --set run.dir="$tmp/run" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
  sed -n 's/^timing: //p' "$log"
}

{
  echo "bench_nodes: $(lscpu | sed -n 's/^Model name: *//p'), commit $(git rev-parse --short HEAD), $steps steps"
  for m in "attn_cnn 128" "resnet10 64"; do
    set -- $m
    # the compute: 1 rank, 1 thread, the per-rank batch (on the first node)
    echo "$1 1 rank b$(($2 / 2)): $(train "$out/$1_1.log" 1 "$1" $(($2 / 2)))"
  done
  for cond in none 1gbit lossy; do
    shape "$cond"
    for p in 2 3; do
      srun -N "$p" --ntasks-per-node=1 --mpi=pmix "$bench" --min-time-s 0.1 >"$out/allreduce_${cond}_$p.jsonl"
    done
    echo "$cond: allreduce of 16 MiB on 2 nodes: $(tail -1 "$out/allreduce_${cond}_2.jsonl")"
    for m in "attn_cnn 128" "resnet10 64"; do
      set -- $m
      for mode in blocking bucketed; do
        echo "$cond $1 2 nodes $mode: $(train "$out/$1_${cond}_$mode.log" 2 "$1" "$2" --set run.allreduce=$mode)"
      done
    done
  done
  shape none
} | tee "$out/summary.txt"

/usr/bin/python3 - "$out" "$src/tests/bench" <<'PY'
import json, re, sys
out = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import scaling_model as sm
def timing(path):
    """(ms per step, ms of it waiting for the all-reduce: none on 1 rank)"""
    m = re.search(r"timing: \d+ steps, ([\d.]+) ms per step(, ([\d.]+) ms of it waiting)?",
                  open(path).read())
    return float(m.group(1)), float(m.group(3) or 0)
models = {m["name"]: m for m in sm.DEFAULT_MODELS}
for cond in ("none", "1gbit", "lossy"):
    rows = []
    for name in ("attn_cnn", "resnet10"):
        compute = timing(f"{out}/{name}_1.log")[0]
        for mode in ("blocking", "bucketed"):
            ms, wait = timing(f"{out}/{name}_{cond}_{mode}.log")
            rows.append({"model": name, "ranks": 2, "compute_ms": compute,
                         "grad_bytes": 4 * models[name]["cpu"]["params"], "measured_ms": ms,
                         "wait_ms": wait, "overlap": mode == "bucketed",
                         "sync_bytes": models[name].get("sync_bytes", [])})
    json.dump(rows, open(f"{out}/steps_{cond}.json", "w"), indent=1)
PY
# The fit: 2 nodes, messages of 1 MiB and more (resnet10's gradient is 19.6
# MB). Not 3 nodes: 3 busy-polling ranks on 2 cores wait for the scheduler
# (~8 ms even for 4 bytes), which is the machine, not the network; nor small
# messages, which tbf lets through in its 256 kB burst at memory speed.
for cond in none 1gbit lossy; do
  echo "== $cond: fit (2 nodes, >= 1 MiB)"
  /usr/bin/python3 tests/bench/scaling_model.py fit --min-bytes 1048576 "$out/allreduce_${cond}_2.jsonl" |
    tee "$out/fit_$cond.txt"
  a=$(sed -n 's/^alpha_us \([0-9.e+-]*\).*/\1/p' "$out/fit_$cond.txt")
  b=$(sed -n 's/^beta_gbs \([0-9.e+-]*\).*/\1/p' "$out/fit_$cond.txt")
  echo "== $cond: check"
  /usr/bin/python3 tests/bench/scaling_model.py check --alpha-us "$a" --beta-gbs "$b" "$out/steps_$cond.json" |
    tee "$out/check_$cond.txt"
done
