#!/bin/sh
# Losing a node, on a real 3-node Slurm cluster (nodes_cluster.sh): a job
# on all three nodes (--nodes=2-3, a task each, --requeue) loses node3 in
# mid-run: its link goes down and every process on it is SIGKILLed, as in a
# crash. The job must end (no hang) within the communication timeout
# (run.comm_timeout_s = 20) plus Slurm's detection (SlurmdTimeout 10 s),
# Slurm requeue it (the node is DOWN: NODE_FAIL, JobRequeue), and the job
# resume on the two nodes left, from the newest checkpoint, with world size
# 2 instead of 3, and finish. Then: every checkpoint verifies (none lost or
# corrupted), the resumed step is the newest written before the crash, and
# the end is within world_close.py's bound of a 1-rank run.
# Exit 77 (skipped) when Slurm cannot be installed or namespaces cannot be made.
# usage: nodes_loss.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$(realpath "$1") src=$(realpath "$2")
. "$src/tests/slurm/nodes_common.sh"
nodes_setup

# A node range, one task per node (train_nodes.sbatch says why): the job
# runs on the 3 nodes up and, requeued, on the 2 left.
j=$(nodes_submit l --nodes=2-3)
until [ -f "$tmp/l/checkpoints/step_00000004.h5" ]; do
  case "$(nodes_state "$j")" in PENDING | RUNNING) sleep 0.05 ;; *)
    echo "FAIL: job $j ended before step 4"; cat "$tmp/l.out"; exit 1 ;; esac
done
grep -q "^placement: 3 nodes:" "$tmp/l.out" || { echo "FAIL: job $j is not on 3 nodes"; cat "$tmp/l.out"; exit 1; }
crash=$(date +%s)
nodes_crash "$tmp/cluster" 3
nodes_wait_requeued "$j" l 60
ended=$(($(date +%s) - crash))
[ "$ended" -le 40 ] || { echo "FAIL: the job took $ended s to end after the crash (bound 40)"; exit 1; }
echo "ok: job $j ended $ended s after node3 crashed and was requeued ($(sinfo -h -n node3 -o %T))"
before=$(ls "$tmp/l/checkpoints" | grep '^step_.*\.h5$' | tail -1)
nodes_wait "$j" l
grep -q "^placement: 2 nodes: node1 (rank 0), node2 (rank 1)$" "$tmp/l.out" ||
  { echo "FAIL: the requeued job is not on the two nodes left"; cat "$tmp/l.out"; exit 1; }
grep -q "^resumed from $tmp/l/checkpoints/$before at step .*(saved by 3 ranks" "$tmp/l.out" ||
  { echo "FAIL: did not resume from $before, the newest checkpoint before the crash"; cat "$tmp/l.out"; exit 1; }
for f in "$tmp/l/checkpoints/"step_*.h5; do
  "$ctrain" inspect "$f" | grep -q "^verified:" || { echo "FAIL: $f does not verify"; exit 1; }
done
echo "ok: resumed from $before on 2 nodes; all $(ls "$tmp/l/checkpoints/"step_*.h5 | wc -l) checkpoints verify"
nodes_close l 2
