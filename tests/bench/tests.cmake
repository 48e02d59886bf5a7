# Benchmarks are built with the tests but run by tests/bench/run.sh, never by ctest.
add_executable(bench_step ${CMAKE_CURRENT_LIST_DIR}/bench_step.c)
target_link_libraries(bench_step PRIVATE ctrain_core)
