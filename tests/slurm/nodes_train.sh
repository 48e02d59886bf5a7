#!/bin/sh
# Jobs across nodes on a real 3-node Slurm cluster (nodes_cluster.sh: one
# network namespace, hostname and slurmd per node; Open MPI over TCP on the
# veths): sbatch --nodes=2 --ntasks-per-node=2 and --nodes=3 of
# slurm/train_nodes.sbatch complete and end within rounding of a 1-rank run
# (world_close.py's bound); the job's own placement line shows its ranks on
# distinct nodes, and every node of the job sent at least its gradient
# (45,236 floats) once per step over its link (the host side's rx_bytes,
# which a rank of the node only adds to by sending to another node). Then a
# preemption across nodes: the 2x2 job again, USR1 to its batch script
# mid-run (what --signal=B:USR1@120 sends), checkpoint, requeue, resume, and
# the end bitwise identical to the uninterrupted 2x2 job.
# Exit 77 (skipped) when Slurm cannot be installed or namespaces cannot be made.
# usage: nodes_train.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$(realpath "$1") src=$(realpath "$2")
. "$src/tests/slurm/nodes_common.sh"
nodes_setup
grad_bytes=$((45236 * 4))

# job NAME NODES TASKS_PER_NODE PLACEMENT_PATTERN
job() {
  name=$1 nodes=$2 per=$3 pattern=$4
  nodes_traffic "$tmp/cluster" >"$tmp/$name.before"
  id=$(nodes_submit "$name" --nodes="$nodes" --ntasks-per-node="$per")
  nodes_wait "$id" "$name"
  nodes_traffic "$tmp/cluster" >"$tmp/$name.after"
  grep -q "^placement: $pattern\$" "$tmp/$name.out" ||
    { echo "FAIL: job $name's placement is not '$pattern':"; grep placement "$tmp/$name.out"; exit 1; }
  nodes_close "$name" $((nodes * per))
  for node in $(sed -n 's/^placement: [0-9]* nodes: //p' "$tmp/$name.out" | grep -o 'node[0-9]*'); do
    sent=$(($(awk -v n="$node" '$1 == n {print $2}' "$tmp/$name.after") -
      $(awk -v n="$node" '$1 == n {print $2}' "$tmp/$name.before")))
    [ "$sent" -ge $((STEPS * grad_bytes)) ] ||
      { echo "FAIL: $node sent $sent bytes, less than $STEPS gradients ($((STEPS * grad_bytes)))"; exit 1; }
    echo "ok: $node sent $sent bytes over its link during job $name"
  done
  echo "ok: job $name, $nodes nodes x $per tasks: $(grep '^placement' "$tmp/$name.out")"
}
job a 2 2 "2 nodes: node[0-9] (ranks 0-1), node[0-9] (ranks 2-3)"
job b 3 1 "3 nodes: node[0-9] (rank 0), node[0-9] (rank 1), node[0-9] (rank 2)"

p=$(nodes_submit p --nodes=2 --ntasks-per-node=2)
until [ -f "$tmp/p/checkpoints/step_00000004.h5" ]; do
  [ "$(nodes_state "$p")" = RUNNING ] || [ "$(nodes_state "$p")" = PENDING ] ||
    { echo "FAIL: job p ended before step 4"; cat "$tmp/p.out"; exit 1; }
  sleep 0.2
done
scancel --batch --signal=USR1 "$p"
nodes_wait_requeued "$p" p
nodes_wait "$p" p
grep -q "checkpointed at step" "$tmp/p.out" || { echo "FAIL: no checkpoint on USR1"; cat "$tmp/p.out"; exit 1; }
grep -q "requeueing job" "$tmp/p.out" || { echo "FAIL: the script did not requeue"; cat "$tmp/p.out"; exit 1; }
grep -q "resumed from" "$tmp/p.out" || { echo "FAIL: did not resume"; cat "$tmp/p.out"; exit 1; }
/usr/bin/python3 "$src/tests/slurm/same_params.py" "$tmp/a/checkpoints/step_$(printf %08d $STEPS).h5" \
  "$tmp/p/checkpoints/step_$(printf %08d $STEPS).h5"
echo "ok: preempted 2x2 job $p resumed and ended bitwise identical to the uninterrupted one"
