# A real single-node Slurm cluster on localhost; skipped (77) only when Slurm
# cannot be installed.
add_test(NAME slurm/requeue
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/slurm_requeue.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(slurm/requeue PROPERTIES LABELS "slurm;mpi" TIMEOUT 900 SKIP_RETURN_CODE 77
  RUN_SERIAL TRUE ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")

# A real 3-node cluster on this machine (nodes_cluster.sh): one network
# namespace and slurmd per node, Open MPI over TCP on the veths.
foreach(t nodes_train nodes_loss)
  add_test(NAME slurm/${t}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/${t}.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(slurm/${t} PROPERTIES LABELS "slurm;mpi" TIMEOUT 900 SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endforeach()
