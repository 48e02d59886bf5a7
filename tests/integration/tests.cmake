# End-to-end tests of the ctrain binary.
set(CTRAIN_IT ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME integration/train_synthetic
  COMMAND ${CTRAIN_IT}/train_synthetic.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
add_test(NAME integration/bad_input
  COMMAND ${CTRAIN_IT}/bad_input.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
add_test(NAME integration/sigint
  COMMAND ${CTRAIN_IT}/sigint.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
add_test(NAME integration/checkpoint_torch
  COMMAND ${CTRAIN_IT}/checkpoint_torch.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/train_synthetic integration/bad_input integration/sigint
  integration/checkpoint_torch
  PROPERTIES LABELS integration TIMEOUT 900 ENVIRONMENT "OMP_NUM_THREADS=2")
# Multi-rank tests (mpirun --oversubscribe, 1 thread a rank).
foreach(t world_size resume_kill ckpt_faults rundir ckpt_dir)
  add_test(NAME integration/${t}
    COMMAND ${CTRAIN_IT}/${t}.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration/${t} PROPERTIES LABELS "integration;mpi" TIMEOUT 600
    ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endforeach()
add_test(NAME integration/disk_full
  COMMAND ${CTRAIN_IT}/disk_full.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/disk_full PROPERTIES LABELS integration TIMEOUT 300
  SKIP_RETURN_CODE 77 ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
# A rank that stops answering (SIGSTOP) ends the job within
# run.comm_timeout_s (5 s) with one line naming the collective; `timeout`
# turns a hang into a failure well before ctest's TIMEOUT.
add_test(NAME integration/comm_timeout
  COMMAND timeout -k 5 120 ${CTRAIN_IT}/comm_timeout.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/comm_timeout PROPERTIES LABELS "integration;mpi" TIMEOUT 180
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
# MPI_Init waits for every rank: one that comes 60 s late ends the job after
# CTRAIN_COMM_TIMEOUT_S (2 s) with one line naming MPI_Init.
add_test(NAME integration/mpi_init_timeout
  COMMAND timeout -k 5 120 ${CTRAIN_IT}/mpi_init_timeout.sh $<TARGET_FILE:ctrain>
  ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/mpi_init_timeout PROPERTIES LABELS "integration;mpi" TIMEOUT 180
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
# eval on 1, 2 and 3 ranks: the same counts and loss (mpirun --oversubscribe).
add_test(NAME integration/eval_ranks
  COMMAND ${CTRAIN_IT}/eval_ranks.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/eval_ranks PROPERTIES LABELS "integration;mpi" TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
# launch/gpu_bundle.sh's tarball in a chroot holding only glibc (unshare -m):
# ctrain, prepare, 20 steps on 1 and 2 ranks (the bundle's mpirun). Skips
# (77) where no mount namespace can be made.
add_test(NAME integration/gpu_bundle
  COMMAND ${CTRAIN_IT}/gpu_bundle.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/gpu_bundle PROPERTIES LABELS "integration;mpi" TIMEOUT 300
  SKIP_RETURN_CODE 77 ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
