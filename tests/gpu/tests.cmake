# The real-GPU mode (-DCTRAIN_GPU_TESTS=ON, label gpu): the emulator's CUDA
# tests built again as *_gpu executables against the nvcc-built backend, the
# CUDA runtime, cuBLAS (and NCCL when built with it) instead of the SIMT
# emulator. Without a usable GPU they exit 77 and ctest reports them
# skipped (tests/cuda/device_required.h); tolerances for hardware are in
# tests/cuda/ops_compare.h. tests/gpu/device_check.sh runs them on a GPU.
option(CTRAIN_GPU_TESTS "also build the *_gpu tests, on the real CUDA runtime (label gpu)" OFF)
if(CTRAIN_GPU_TESTS AND NOT CTRAIN_CUDA)
  message(WARNING "ctrain: CTRAIN_GPU_TESTS=ON, but without nvcc there is no CUDA backend to test")
elseif(CTRAIN_GPU_TESTS)
  set(cuda_dir ${CMAKE_CURRENT_LIST_DIR}/../cuda)
  set(gpu_tests
    "test_cuda_ops|test_cuda_ops.c ops_compare.c"
    "test_cuda_elementwise|test_cuda_elementwise.c ops_compare.c"
    "test_cuda_step|test_cuda_step.c"
    "test_cuda_train|test_cuda_train.c train_compare.c")
  foreach(entry ${gpu_tests})
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 name)
    list(GET parts 1 files)
    separate_arguments(files)
    list(TRANSFORM files PREPEND ${cuda_dir}/)
    add_executable(${name}_gpu ${files})
    target_include_directories(${name}_gpu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${cuda_dir})
    target_compile_definitions(${name}_gpu PRIVATE CTRAIN_GPU_TEST)
    target_link_libraries(${name}_gpu PRIVATE ctrain_core) # ctrain_core links ctrain_cuda
    add_test(NAME gpu/${name} COMMAND ${name}_gpu ${PROJECT_SOURCE_DIR}/configs/attn_cnn.ini)
    set_tests_properties(gpu/${name} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 600
      ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
  endforeach()
endif()
