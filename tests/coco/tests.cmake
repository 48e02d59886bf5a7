# The captioning layout as CS231n's load_coco_data reads it (h5py + json via
# Debian's /usr/bin/python3), driven by a small tool around the importers.
add_executable(coco_tool ${CMAKE_CURRENT_LIST_DIR}/coco_tool.c)
target_link_libraries(coco_tool PRIVATE ctrain_core)
add_test(NAME unit/test_coco_layout
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_coco_layout.py $<TARGET_FILE:coco_tool>)
set_tests_properties(unit/test_coco_layout PROPERTIES LABELS unit TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")
