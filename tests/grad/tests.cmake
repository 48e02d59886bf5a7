# The op table (kernels/ops.h), ggml-style: every op has a CPU and a CUDA
# implementation (op_table walks both tables, the CUDA one in the emulator),
# a gradient check and an emulator case (op_coverage.sh greps the tests).
# The op names are struct ops_backend's function-pointer members, parsed from
# ops.h here; editing ops.h re-runs this parse.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/ops.h)
file(READ ${PROJECT_SOURCE_DIR}/kernels/ops.h ops_h)
string(REGEX MATCH "struct ops_backend {.*\n};" ops_table "${ops_h}")
string(REGEX MATCHALL "\\(\\*[a-z0-9_]+\\)" ops_members "${ops_table}")
string(REGEX REPLACE "\\(\\*([a-z0-9_]+)\\)" "\\1" ops_names "${ops_members}")

add_executable(op_table ${CMAKE_CURRENT_LIST_DIR}/op_table.c)
target_include_directories(op_table PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
# The emulator archive whole and first, as for tests/cuda: cuda_backend_open
# must be the emulator's, never the nvcc-built one ctrain_core links too.
target_link_libraries(op_table PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,ctrain_cuda_emu>" ctrain_core)
add_test(NAME grad/op_table COMMAND op_table ${ops_names})
add_test(NAME grad/op_coverage COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/op_coverage.sh
  ${PROJECT_SOURCE_DIR} ${ops_names})
set_tests_properties(grad/op_table grad/op_coverage PROPERTIES LABELS grad TIMEOUT 60
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=1")
