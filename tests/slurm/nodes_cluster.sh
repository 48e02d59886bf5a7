#!/bin/sh
# A real multi-node Slurm cluster on one machine, for the tests: each node is
# its own network namespace (a veth on a bridge, an address in a private
# test subnet), UTS namespace (hostname = node name) and mount namespace (its
# own /dev/shm; its own TmpFS for Slurm), running its own slurmd;
# one slurmctld and one munged in the root namespace, on the bridge. The
# shared directory DIR plays the cluster's shared file system. Sourced.
#   nodes_start DIR N      (root; N nodes node1..nodeN)
#   nodes_mpi_env DIR      exports what a job needs to use the links
#   nodes_crash DIR I      node I's link goes down, then SIGKILL to every
#                          process in it (slurmd, slurmstepd, the ranks)
#   nodes_traffic DIR      bytes sent by each node on its link
#   nodes_diagnose DIR JOB / nodes_stop DIR (also on failure: the caller's trap)
# Everything nodes_start creates (namespaces, links, daemons) is recorded in
# DIR first and removed by nodes_stop. Source slurm_cluster.sh first
# (slurm_install).

# The subnet: 10.213.X.0/24 with X of our own, unused by this machine.
nodes_subnet() {
  x=$((($$ % 200) + 20))
  while ip -4 addr show 2>/dev/null | grep -q "inet 10\.213\.$x\."; do x=$((x + 1)); done
  echo "10.213.$x"
}

nodes_start() {
  dir=$1 n=$2
  mkdir -p "$dir/state" "$dir/munge" "$dir/log" "$dir/run"
  id=$$
  net=$(nodes_subnet)
  echo "$id" >"$dir/id"
  echo "$net" >"$dir/net"
  echo "$n" >"$dir/count"
  # Every link and namespace has our PID in its name (15-character limit):
  # two test runs on one host do not meet, and nodes_stop knows what is ours.
  br="ctb$id"
  ip link add "$br" type bridge || return 1
  ip addr add "$net.1/24" dev "$br" && ip link set "$br" up || return 1
  i=1
  nodelines=""
  while [ "$i" -le "$n" ]; do
    ns="ct${id}n$i"
    ip netns add "$ns" || return 1
    ip link add "cv${id}n$i" type veth peer name eth0 netns "$ns" || return 1
    ip link set "cv${id}n$i" master "$br" up || return 1
    ip -n "$ns" addr add "$net.$((10 + i))/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || return 1
    mkdir -p "$dir/node$i/tmp" "$dir/node$i/spool"
    nodelines="${nodelines}NodeName=node$i NodeAddr=$net.$((10 + i)) NodeHostname=node$i CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=2048 State=UNKNOWN
"
    i=$((i + 1))
  done
  port=$((20000 + (id % 10000) * 2))
  # Slurm as in slurm_cluster.sh (no cgroups; PMIx; CPUs as declared), plus:
  # nodes that stop answering are DOWN after SlurmdTimeout, and their jobs
  # requeued (JobRequeue); a returned node does not rejoin by itself.
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ctrainnodes
SlurmctldHost=$(hostname -s)($net.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
$(slurm_conf_common "$dir")
SlurmdSpoolDir=$dir/%n/spool
TmpFS=$dir/%n/tmp
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmdLogFile=$dir/log/slurmd-%n.log
ReturnToService=0
SlurmdTimeout=10
MessageTimeout=5
KillWait=5
${nodelines}PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  slurm_controller_start "$dir" || return 1
  i=1
  while [ "$i" -le "$n" ]; do
    # nsenter --net changes only the network (ip netns exec would remount
    # /sys, and slurmd then finds no cgroup file system); unshare gives the
    # node its hostname and a private /dev/shm. /tmp stays shared (the
    # source and build trees may be there); Slurm's PMIx directories, which
    # would collide in it, go to the node's own TmpFS.
    nsenter --net="/run/netns/ct${id}n$i" unshare --uts --mount --propagation private sh -c \
      "hostname node$i && mount -t tmpfs -o size=512m tmpfs /dev/shm &&
       exec slurmd -f '$dir/slurm.conf' -N node$i" || return 1
    i=$((i + 1))
  done
  i=0
  until [ "$(sinfo -h -N -o %T 2>/dev/null | grep -cx idle)" -eq "$n" ]; do
    i=$((i + 1))
    [ $i -lt 80 ] || { echo "slurm did not come up:"; sinfo -N; tail -n 5 "$dir/log/"*.log; return 1; }
    sleep 0.5
  done
}

# Exports what a job (sbatch --export=ALL) needs to run across the nodes:
# Open MPI's TCP transport only, on the test subnet: no shared-memory
# shortcut between two "nodes" of one machine (nor, for simplicity, inside
# one), so what the ranks exchange crosses the veths.
nodes_mpi_env() {
  export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include="$(cat "$1/net").0/24"
}

nodes_crash() {
  dir=$1 i=$2
  id=$(cat "$dir/id")
  # The link first, so that the other nodes see silence (as from a dead
  # machine), not a reset connection from a live kernel.
  ip link set "cv${id}n$i" down
  pids=$(ip netns pids "ct${id}n$i")
  # shellcheck disable=SC2086 # a list of PIDs
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

nodes_traffic() {
  dir=$1
  id=$(cat "$dir/id") n=$(cat "$dir/count")
  i=1
  while [ "$i" -le "$n" ]; do
    # The host side's received bytes are what the node sent.
    printf 'node%s %s\n' "$i" "$(cat "/sys/class/net/cv${id}n$i/statistics/rx_bytes" 2>/dev/null || echo 0)"
    i=$((i + 1))
  done
}

nodes_diagnose() {
  dir=$1 job=$2
  scontrol show job "$job" 2>&1 | grep -E "JobState|Reason|NodeList|Restarts" || true
  sinfo -N -o "%N %T %E" 2>&1 || true
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/"slurmd-*.log 2>/dev/null || true
}

nodes_stop() {
  dir=$1
  [ -f "$dir/id" ] || return 0
  id=$(cat "$dir/id")
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^ct${id}n"); do
    pids=$(ip netns pids "$ns")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    ip netns del "$ns"
  done
  for p in "$dir/run/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
  done
  ip link del "ctb$id" 2>/dev/null || true
  sleep 1
}
