# Benchmarks are built with the tests but run by tests/bench/run.sh, never by ctest.
add_executable(bench_step ${CMAKE_CURRENT_LIST_DIR}/bench_step.c)
target_link_libraries(bench_step PRIVATE ctrain_core)
# The all-reduce the blocking gradient mean issues, alone (MPI only, no ctrain):
# tests/bench/scaling_model.py fits its alpha-beta model to these timings.
add_executable(bench_allreduce ${CMAKE_CURRENT_LIST_DIR}/bench_allreduce.c)
target_link_libraries(bench_allreduce PRIVATE MPI::MPI_C m)
