# Learning curves and attention maps as files (seed 000 §5.1 and §6).
add_test(NAME integration/viz
  COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/viz.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration/viz PROPERTIES LABELS integration TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")
