#!/bin/sh
# What the multi-node tests share: a 1-rank reference run, jobs submitted
# through slurm/train_nodes.sbatch with world_size.sh's settings (so that
# another world size changes only the order of sums; world_close.py), and
# waiting for a job. Sourced with $ctrain and $src set; nodes_setup sets
# $tmp, the cluster's shared directory.
. "$src/tests/slurm/slurm_cluster.sh"
. "$src/tests/slurm/nodes_cluster.sh"
STEPS=20

# A 3-node cluster in $tmp, removed on exit (ctest's timeout too), and the
# 1-rank reference run; exits 77 where the cluster cannot run.
nodes_setup() {
  nodes_can_run || exit 77
  tmp=$(mktemp -d /var/tmp/ctrain-nodes.XXXXXX)
  trap 'nodes_stop "$tmp/cluster"; rm -rf "$tmp"' EXIT
  trap 'exit 1' INT TERM HUP
  nodes_start "$tmp/cluster" 3 || { echo "FAIL: could not start the cluster"; exit 1; }
  nodes_mpi_env "$tmp/cluster"
  nodes_reference
}
nodes_common_args() {
  printf '%s\n' --set data.path="$tmp/d.h5" --set data.val_size=72 --set data.shuffle=false \
    --set data.augment=none --set train.batch_size=24 --set train.max_steps=$STEPS \
    --set train.optimizer=sgd --set train.lr=0.01 --set run.threads=1 --set run.checkpoint_every=4 \
    --set run.log_every=4 --set run.keep=20 --set run.comm_timeout_s=20
}

nodes_reference() {
  "$ctrain" prepare synthetic "$tmp/d.h5" --train 600 --test 48 --seed 5 >/dev/null
  # shellcheck disable=SC2046 # one word per line
  "$ctrain" train "$src/configs/attn_cnn.ini" $(nodes_common_args) --set run.dir="$tmp/ref" \
    >"$tmp/ref.log" 2>&1 || { echo "FAIL: the 1-rank reference run"; cat "$tmp/ref.log"; exit 1; }
}

# submit NAME SBATCH_OPTIONS... : the job's id
nodes_submit() {
  name=$1
  shift
  # shellcheck disable=SC2046
  (cd "$src" && sbatch --parsable --output="$tmp/$name.out" --export=ALL,CTRAIN="$ctrain" "$@" \
    slurm/train_nodes.sbatch configs/attn_cnn.ini $(nodes_common_args) --set run.dir="$tmp/$name")
}

nodes_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

# wait JOB NAME [SECONDS]: until it completes; a failure prints its output
# and what Slurm says, and ends the test.
nodes_wait() {
  job=$1 name=$2 limit=${3:-300}
  start=$(date +%s)
  while :; do
    s=$(nodes_state "$job")
    case "$s" in COMPLETED) return 0 ;; FAILED | CANCELLED | TIMEOUT | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
      echo "FAIL: job $job ($name) $s:"; cat "$tmp/$name.out"; nodes_diagnose "$tmp/cluster" "$job"; exit 1 ;; esac
    [ $(($(date +%s) - start)) -lt "$limit" ] || {
      echo "FAIL: job $job ($name) still ${s:-unknown} after $limit s"
      cat "$tmp/$name.out" 2>/dev/null || true
      nodes_diagnose "$tmp/cluster" "$job"
      exit 1
    }
    sleep 0.5
  done
}

# close NAME WORLD_SIZE: the job's last checkpoint against the reference.
nodes_close() {
  /usr/bin/python3 "$src/tests/integration/world_close.py" "$tmp/ref/checkpoints/step_$(printf %08d $STEPS).h5" \
    "$tmp/$1/checkpoints/step_$(printf %08d $STEPS).h5" "$2" || { cat "$tmp/$1.out"; exit 1; }
}

# Whether this machine can hold the cluster: root, Slurm (installed when
# missing) and network namespaces; says why not.
nodes_can_run() {
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: the multi-node cluster needs root"; return 1; }
  slurm_install || { echo "SKIP: cannot install Slurm (needs apt)"; return 1; }
  probe="ctprobe$$"
  ip netns add "$probe" 2>/dev/null && ip netns del "$probe" ||
    { echo "SKIP: cannot create network namespaces here"; return 1; }
}

# wait_requeued JOB NAME [SECONDS]: until Slurm has requeued the job (it is
# pending again, restarted once more), then starts it now.
nodes_wait_requeued() {
  job=$1 name=$2 limit=${3:-120}
  start=$(date +%s)
  until scontrol show job "$job" 2>/dev/null | grep -q "JobState=PENDING.*" &&
    scontrol show job "$job" 2>/dev/null | grep -q "Restarts=[1-9]"; do
    [ $(($(date +%s) - start)) -lt "$limit" ] ||
      { echo "FAIL: job $job ($name) not requeued"; cat "$tmp/$name.out"; nodes_diagnose "$tmp/cluster" "$job"; exit 1; }
    sleep 0.2
  done
  slurm_start_requeued "$job"
}
