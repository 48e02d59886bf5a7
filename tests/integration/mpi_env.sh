# Sourced by the multi-rank tests: `mpi N cmd...` runs cmd on N ranks of
# this machine (oversubscribed beyond its cores; as root, Open MPI wants
# --allow-run-as-root). In the background use `mpi_exec N cmd... &`: the
# subshell becomes mpirun, so $! is mpirun and `pkill -P $!` reaches the
# ranks themselves, not mpirun (which would kill the job on its own terms).
mpi_args() {
  [ "$(id -u)" -eq 0 ] && printf '%s ' --allow-run-as-root
  printf '%s ' --oversubscribe --bind-to none
}
mpi() {
  n=$1
  shift
  # shellcheck disable=SC2046 # the options are single words
  mpirun $(mpi_args) -np "$n" "$@"
}
mpi_exec() {
  n=$1
  shift
  # shellcheck disable=SC2046
  exec mpirun $(mpi_args) -np "$n" "$@"
}
