# Captioning in the trainer and `ctrain sample` (docs/coco.md): corpus BLEU
# against an independent Python implementation, greedy decoding against
# PyTorch, a short training run, world-size invariance, exact resume after
# SIGKILL, bad input. Small models on synthetic COCO: about a minute in all.
add_executable(bleu_tool ${CMAKE_CURRENT_LIST_DIR}/bleu_tool.c)
target_link_libraries(bleu_tool PRIVATE ctrain_core)
add_test(NAME caption/bleu
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_bleu.py $<TARGET_FILE:bleu_tool>)
set_tests_properties(caption/bleu PROPERTIES LABELS "caption;unit" TIMEOUT 120)
foreach(t train_sample greedy_torch bad_input)
  add_test(NAME caption/${t}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/${t}.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(caption/${t} PROPERTIES LABELS "caption;integration" TIMEOUT 300
    ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")
endforeach()
# Multi-rank (mpirun --oversubscribe, 1 thread a rank).
foreach(t world_size resume_kill)
  add_test(NAME caption/${t}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/${t}.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(caption/${t} PROPERTIES LABELS "caption;integration;mpi" TIMEOUT 300
    ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endforeach()
# The captioning benchmark's ctrain side (tests/bench/run_caption.sh runs it, never ctest).
add_executable(bench_caption_step ${PROJECT_SOURCE_DIR}/tests/bench/bench_caption_step.c)
target_link_libraries(bench_caption_step PRIVATE ctrain_core)
