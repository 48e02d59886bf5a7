#!/bin/sh
# A real single-node Slurm cluster on localhost for the test: munge,
# slurmctld and slurmd from Debian, configured in a temporary directory,
# started here and stopped by the caller's `slurm_stop`. Sourced.
#   slurm_start DIR     (needs root; exits 77 when Slurm cannot be installed)
slurm_install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null &&
    command -v sbatch >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || return 1
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y slurmctld slurmd slurm-client munge; } \
    >/dev/null 2>&1
}

# The slurm.conf lines both test clusters share, for the cluster in DIR:
# munge on our own socket, root, no cgroups (proctrack/linuxproc, task/none:
# containers have none to give), CPUs allocated one by one as the node lines
# declare them (CR_CPU, config_overrides), PMIx (Debian's Open MPI speaks
# nothing else), requeueing allowed.
slurm_conf_common() {
  cat <<CONF
AuthType=auth/munge
AuthInfo=socket=$1/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$1/state
SlurmctldLogFile=$1/log/slurmctld.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=pmix
JobRequeue=1
SchedulerType=sched/backfill
CONF
}

# munged with a fresh key and socket of our own, then slurmctld, for the
# configuration DIR/slurm.conf (logs in DIR/log); exports SLURM_CONF.
slurm_controller_start() {
  export SLURM_CONF="$1/slurm.conf"
  dd if=/dev/urandom of="$1/munge/munge.key" bs=1024 count=1 2>/dev/null
  chmod 700 "$1/munge"
  chmod 400 "$1/munge/munge.key"
  munged --key-file="$1/munge/munge.key" --socket="$1/munge/socket" \
    --pid-file="$1/munge/munged.pid" --log-file="$1/log/munged.log" --seed-file="$1/munge/seed" \
    --force || return 1
  slurmctld -f "$1/slurm.conf" -i
}

slurm_start() {
  dir=$1
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
  host=$(hostname -s)
  # nproc obeys OMP_NUM_THREADS (ctest sets 1 for the ranks): ask without
  # it, and declare at least the 2 CPUs the test's 2-task jobs need (a node
  # smaller than a job leaves it pending for ever, Reason=PartitionConfig).
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  [ "$cpus" -ge 2 ] || cpus=2
  # A port of our own, so that two test runs on one host do not meet.
  port=$((20000 + ($$ % 10000) * 2))
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
  # proctrack/linuxproc and task/none: no cgroups needed (containers);
  # MpiDefault=pmix: Debian's Open MPI speaks PMIx only. The node is what
  # this file says (config_overrides) and CPUs are allocated one by one
  # (CR_CPU): a CI machine whose 2 CPUs are one core's hyperthreads, or
  # whose hardware has more CPUs than the container may use, must still
  # run a 2-task job.
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ctraintest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
$(slurm_conf_common "$dir")
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  slurm_controller_start "$dir" || return 1
  slurmd -f "$dir/slurm.conf" || return 1
  i=0
  # "idle" exactly: "idle*" is a node whose slurmd has not answered.
  until [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; do
    i=$((i + 1))
    [ $i -lt 60 ] || { echo "slurm did not come up:"; sinfo; tail -5 "$dir/log/"*.log; return 1; }
    sleep 0.5
  done
}

# What Slurm says about a job that did not run, and its daemons' last words.
slurm_diagnose() {
  dir=$1 job=$2
  scontrol show job "$job" 2>&1 | grep -E "JobState|Reason|NumCPUs|TRES" || true
  scontrol show node 2>&1 | grep -E "State|CPUTot|RealMemory|Reason" || true
  tail -n 15 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>/dev/null || true
}

# A requeued job waits two minutes (its BeginTime); a cluster would wait, a
# test need not: start it now, but not within the second its previous run's
# credential was revoked, which slurmd compares at one-second resolution and
# would refuse ("Killing non-startable batch job: Job credential revoked").
slurm_start_requeued() {
  scontrol release "$1" 2>/dev/null || true # some versions hold a requeued job
  sleep 2
  scontrol update JobId="$1" StartTime=now 2>/dev/null || true
}

slurm_stop() {
  dir=$1
  for p in slurmd slurmctld munge/munged; do
    if [ -f "$dir/$p.pid" ]; then kill "$(cat "$dir/$p.pid")" 2>/dev/null || true; fi
  done
  sleep 1
}
