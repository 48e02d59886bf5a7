# CUDA backend tests, label cuda-emu: the kernels of kernels/cuda run in the
# SIMT host emulator (ctrain_cuda_emu, built with AddressSanitizer).
set(cuda_emu_env "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=1")
# Tests that also link ctrain_core take the whole emulator archive first, so
# that every CUDA-backend symbol ctrain_core refers to (device.cu's and
# comm/nccl.cu's among them) is the emulator's, never that of the nvcc-built
# ctrain_cuda which ctrain_core links too.
set(cuda_emu_whole "$<LINK_LIBRARY:WHOLE_ARCHIVE,ctrain_cuda_emu>")

add_executable(test_emu ${CMAKE_CURRENT_LIST_DIR}/test_emu.cpp)
target_link_libraries(test_emu PRIVATE ctrain_cuda_emu)
add_test(NAME cuda/test_emu COMMAND test_emu)
# The emulator must stop each of these kernels with a report naming the bug.
set(cuda_emu_cases oob divergent exited warp-mask shared-uninit dyn-uninit no-barrier host-deref
  block-race stream-race)
foreach(case ${cuda_emu_cases})
  add_test(NAME cuda/test_emu_${case} COMMAND test_emu ${case})
endforeach()
set_tests_properties(cuda/test_emu_oob PROPERTIES PASS_REGULAR_EXPRESSION
  "AddressSanitizer: use-after-poison.*oob_write")
set_tests_properties(cuda/test_emu_divergent PROPERTIES PASS_REGULAR_EXPRESSION
  "divergent barrier: .* waits at __syncthreads at .*test_emu.cpp:[0-9]+, .* at .*test_emu.cpp:[0-9]+")
set_tests_properties(cuda/test_emu_exited PROPERTIES PASS_REGULAR_EXPRESSION
  "divergent barrier: .* waits at __syncthreads .* but thread [(]5,0,0[)] has exited")
set_tests_properties(cuda/test_emu_warp-mask PROPERTIES PASS_REGULAR_EXPRESSION
  "names lanes [(]mask 0xffffffff[)] beyond the block's threads")
set_tests_properties(cuda/test_emu_shared-uninit PROPERTIES PASS_REGULAR_EXPRESSION
  "kernel shared_uninit, block [(]0,0,0[)]: thread [(]31,0,0[)] reads __shared__ memory that no thread of the block wrote")
set_tests_properties(cuda/test_emu_dyn-uninit PROPERTIES PASS_REGULAR_EXPRESSION
  "kernel dyn_uninit, block [(]0,0,0[)]: thread [(]31,0,0[)] reads __shared__ memory that no thread of the block wrote")
set_tests_properties(cuda/test_emu_no-barrier PROPERTIES PASS_REGULAR_EXPRESSION
  "kernel tree_sum, block [(]0,0,0[)]: thread [(][0-9]+,0,0[)] reads __shared__ memory that no thread of the block wrote")
set_tests_properties(cuda/test_emu_host-deref PROPERTIES PASS_REGULAR_EXPRESSION
  "host access to device memory at 0x[0-9a-f]+ [(]byte 12 of a cudaMalloc of 400 bytes[)](.|\n)*AddressSanitizer: SEGV")
set_tests_properties(cuda/test_emu_block-race PROPERTIES PASS_REGULAR_EXPRESSION
  "kernel block_race: blocks [(]0,0,0[)] and [(]1,0,0[)] both write device memory at 0x[0-9a-f]+ [(]byte [0-9]+ of a cudaMalloc of 400 bytes[)] in one launch, not by atomics")
set_tests_properties(cuda/test_emu_stream-race PROPERTIES PASS_REGULAR_EXPRESSION
  "stream race: fill_value on stream [0-9]+ and add_from on stream [0-9]+ both reach device memory at 0x[0-9a-f]+, and no event orders them")
list(TRANSFORM cuda_emu_cases PREPEND cuda/test_emu_ OUTPUT_VARIABLE cuda_emu_case_tests)
set_tests_properties(cuda/test_emu ${cuda_emu_case_tests} PROPERTIES LABELS cuda-emu TIMEOUT 120
  ENVIRONMENT "${cuda_emu_env}")

# The race build (CMakeLists.txt): the emulator's own tests and a planted
# warp-level race, whose report names the two threads of one warp.
add_executable(test_emu_race ${CMAKE_CURRENT_LIST_DIR}/test_emu.cpp)
target_compile_options(test_emu_race PRIVATE ${CTRAIN_EMU_RACE_FLAGS})
target_link_libraries(test_emu_race PRIVATE ctrain_cuda_emu_race)
add_test(NAME cuda/test_emu_race COMMAND test_emu_race)
add_test(NAME cuda/test_emu_race_warp-race COMMAND test_emu_race warp-race)
set_tests_properties(cuda/test_emu_race_warp-race PROPERTIES PASS_REGULAR_EXPRESSION
  "kernel warp_neighbour, block [(]0,0,0[)]: thread [(][0-9]+,0,0[)] reads __shared__ memory [(]byte [0-9]+[)] that thread [(][0-9]+,0,0[)] of its warp wrote with no __syncwarp or __syncthreads between them")
set_tests_properties(cuda/test_emu_race cuda/test_emu_race_warp-race PROPERTIES LABELS cuda-emu
  TIMEOUT 120 ENVIRONMENT "${cuda_emu_env}")

# Every op of the CUDA backend against the CPU backend, in two tests sharing
# one harness (tolerances in ops_compare.h).
foreach(t test_cuda_ops test_cuda_elementwise)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c ${CMAKE_CURRENT_LIST_DIR}/ops_compare.c)
  target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${t} PRIVATE ${cuda_emu_whole} ctrain_core)
  add_test(NAME cuda/${t} COMMAND ${t})
  set_tests_properties(cuda/${t} PROPERTIES LABELS cuda-emu TIMEOUT 300
    ENVIRONMENT "${cuda_emu_env}")
  # And on the race build: every kernel's shared-memory accesses checked.
  add_executable(${t}_race ${CMAKE_CURRENT_LIST_DIR}/${t}.c ${CMAKE_CURRENT_LIST_DIR}/ops_compare.c)
  target_include_directories(${t}_race PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${t}_race PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,ctrain_cuda_emu_race>"
    ctrain_core)
  add_test(NAME cuda/${t}_race COMMAND ${t}_race)
  set_tests_properties(cuda/${t}_race PROPERTIES LABELS cuda-emu TIMEOUT 300
    ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endforeach()

# One whole attn_cnn training step, emulated CUDA against CPU.
add_executable(test_cuda_step ${CMAKE_CURRENT_LIST_DIR}/test_cuda_step.c)
target_include_directories(test_cuda_step PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_cuda_step PRIVATE ${cuda_emu_whole} ctrain_core)
add_test(NAME cuda/test_cuda_step COMMAND test_cuda_step)
set_tests_properties(cuda/test_cuda_step PROPERTIES LABELS cuda-emu TIMEOUT 300
  ENVIRONMENT "${cuda_emu_env}")
add_executable(test_cuda_step_race ${CMAKE_CURRENT_LIST_DIR}/test_cuda_step.c)
target_include_directories(test_cuda_step_race PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_cuda_step_race PRIVATE
  "$<LINK_LIBRARY:WHOLE_ARCHIVE,ctrain_cuda_emu_race>" ctrain_core)
add_test(NAME cuda/test_cuda_step_race COMMAND test_cuda_step_race)
set_tests_properties(cuda/test_cuda_step_race PROPERTIES LABELS cuda-emu TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")

# Static shared memory per kernel within the 48 KiB a block gets by default.
add_test(NAME cuda/static_shared COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/static_shared.sh
  $<TARGET_FILE:ctrain_cuda_emu> $<TARGET_FILE:test_emu>)
set_tests_properties(cuda/static_shared PROPERTIES LABELS cuda-emu TIMEOUT 60)

# The trainer itself (train_run_with: shuffle, augmentation, checkpoint, the
# test evaluation) and `ctrain eval` on the emulated CUDA backend against the
# CPU backend (tolerances in train_compare.h, shared with test_nccl_train).
# Single rank, MPI initialised.
add_executable(test_cuda_train ${CMAKE_CURRENT_LIST_DIR}/test_cuda_train.c
  ${CMAKE_CURRENT_LIST_DIR}/train_compare.c)
target_include_directories(test_cuda_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_cuda_train PRIVATE ${cuda_emu_whole} ctrain_core)
add_test(NAME cuda/test_cuda_train COMMAND test_cuda_train ${PROJECT_SOURCE_DIR}/configs/attn_cnn.ini)
set_tests_properties(cuda/test_cuda_train PROPERTIES LABELS cuda-emu TIMEOUT 600
  # Open MPI and OpenBLAS keep allocations past exit: no leak check here.
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")

# NCCL (comm/nccl.h) on 2 ranks over the emulator's NCCL shim (mpirun as in
# tests/integration/mpi_env.sh).
execute_process(COMMAND id -u OUTPUT_VARIABLE cuda_emu_uid OUTPUT_STRIP_TRAILING_WHITESPACE)
set(cuda_emu_mpirun ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none ${MPIEXEC_NUMPROC_FLAG} 2)
if(cuda_emu_uid STREQUAL "0")
  list(APPEND cuda_emu_mpirun --allow-run-as-root)
endif()
# The shim and the module alone: exact sums and means, buckets, sync-BN sums.
add_executable(test_nccl ${CMAKE_CURRENT_LIST_DIR}/test_nccl.cpp)
target_link_libraries(test_nccl PRIVATE ${cuda_emu_whole} ctrain_core)
add_test(NAME cuda/test_nccl COMMAND ${cuda_emu_mpirun} $<TARGET_FILE:test_nccl>)
set_tests_properties(cuda/test_nccl PROPERTIES LABELS cuda-emu TIMEOUT 120
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
# A rank that stops answering (run.comm_timeout_s = 2, test_nccl.cpp): rank
# 0's broadcast fails within seconds, not at the shim's default 300 (past
# the TIMEOUT), and rank 1 sees the comm stopped; both end cleanly.
add_test(NAME cuda/test_nccl_timeout COMMAND ${cuda_emu_mpirun} $<TARGET_FILE:test_nccl> timeout)
set_tests_properties(cuda/test_nccl_timeout PROPERTIES LABELS cuda-emu TIMEOUT 60
  PASS_REGULAR_EXPRESSION "NCCL timeout: a skipped collective failed within run.comm_timeout_s"
  FAIL_REGULAR_EXPRESSION "FAIL "
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
# Sync BN's sums go over a comm of their own: they still work after the
# gradients' comm has stopped on both ranks (test_nccl.cpp).
add_test(NAME cuda/test_nccl_lanes COMMAND ${cuda_emu_mpirun} $<TARGET_FILE:test_nccl> lanes)
set_tests_properties(cuda/test_nccl_lanes PROPERTIES LABELS cuda-emu TIMEOUT 60
  PASS_REGULAR_EXPRESSION "NCCL lanes: sync BN summed on its own comm while the gradients' was stopped"
  FAIL_REGULAR_EXPRESSION "FAIL "
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
# A rank that never calls ncclCommInitRank (ranks 0 and 1 of 3,
# run.comm_timeout_s = 2, test_nccl.cpp): both fail within seconds, not at
# the shim's default 300 (past the TIMEOUT), each with one line naming
# itself and ncclCommInitRank, then create the 2-rank comms.
add_test(NAME cuda/test_nccl_init_timeout COMMAND ${cuda_emu_mpirun} $<TARGET_FILE:test_nccl>
  init-timeout)
set_tests_properties(cuda/test_nccl_init_timeout PROPERTIES LABELS cuda-emu TIMEOUT 60
  PASS_REGULAR_EXPRESSION "NCCL init timeout: a rank that never came failed ncclCommInitRank"
  FAIL_REGULAR_EXPRESSION "FAIL "
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
# The trainer's MPI path for device memory (run.collectives = mpi): emulated
# cuda against cpu, 2 ranks, sync BN, bucketed; never over NCCL.
add_executable(test_mpi_cuda_train ${CMAKE_CURRENT_LIST_DIR}/test_mpi_cuda_train.c
  ${CMAKE_CURRENT_LIST_DIR}/train_compare.c)
target_include_directories(test_mpi_cuda_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_mpi_cuda_train PRIVATE ${cuda_emu_whole} ctrain_core)
add_test(NAME cuda/test_mpi_cuda_train COMMAND ${cuda_emu_mpirun}
  $<TARGET_FILE:test_mpi_cuda_train> ${PROJECT_SOURCE_DIR}/configs/attn_cnn.ini)
set_tests_properties(cuda/test_mpi_cuda_train PROPERTIES LABELS cuda-emu TIMEOUT 600
  # tc_finish prints this line only when every comparison passed
  PASS_REGULAR_EXPRESSION "cuda [(]emulated[)] over MPI through host"
  FAIL_REGULAR_EXPRESSION "over NCCL"
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")

# The trainer: emulated cuda over NCCL against cpu over MPI, 2 ranks, sync BN,
# bucketed. The trainer uses NCCL only in builds with it.
if(CTRAIN_NCCL)
  add_executable(test_nccl_train ${CMAKE_CURRENT_LIST_DIR}/test_nccl_train.c
    ${CMAKE_CURRENT_LIST_DIR}/train_compare.c)
  target_include_directories(test_nccl_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(test_nccl_train PRIVATE ${cuda_emu_whole} ctrain_core)
  add_test(NAME cuda/test_nccl_train COMMAND ${cuda_emu_mpirun} $<TARGET_FILE:test_nccl_train>
    ${PROJECT_SOURCE_DIR}/configs/attn_cnn.ini)
  set_tests_properties(cuda/test_nccl_train PROPERTIES LABELS cuda-emu TIMEOUT 600
    # [^~]* for "anything in between": CMake's matcher recurses on (.|\n)*
    # once per character and crawls on a failing run's long output
    PASS_REGULAR_EXPRESSION "all-reduce over NCCL[^~]*cuda [(]emulated[)] over NCCL equals cpu"
    ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
  # The same on the race build: sync BN's kernels have their shared memory checked.
  add_executable(test_nccl_train_race ${CMAKE_CURRENT_LIST_DIR}/test_nccl_train.c
    ${CMAKE_CURRENT_LIST_DIR}/train_compare.c)
  target_include_directories(test_nccl_train_race PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(test_nccl_train_race PRIVATE
    "$<LINK_LIBRARY:WHOLE_ARCHIVE,ctrain_cuda_emu_race>" ctrain_core)
  add_test(NAME cuda/test_nccl_train_race COMMAND ${cuda_emu_mpirun}
    $<TARGET_FILE:test_nccl_train_race> ${PROJECT_SOURCE_DIR}/configs/attn_cnn.ini)
  set_tests_properties(cuda/test_nccl_train_race PROPERTIES LABELS cuda-emu TIMEOUT 600
    PASS_REGULAR_EXPRESSION "all-reduce over NCCL[^~]*cuda [(]emulated[)] over NCCL equals cpu"
    ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endif()

# Launch and cuBLAS budgets of every recipe's training step (emu_stats.h).
add_executable(test_cuda_budget ${CMAKE_CURRENT_LIST_DIR}/test_cuda_budget.c)
target_include_directories(test_cuda_budget PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_cuda_budget PRIVATE ${cuda_emu_whole} ctrain_core)
add_test(NAME cuda/test_cuda_budget COMMAND test_cuda_budget ${PROJECT_SOURCE_DIR})
set_tests_properties(cuda/test_cuda_budget PROPERTIES LABELS cuda-emu TIMEOUT 600
  ENVIRONMENT "${cuda_emu_env}")
