# Model-level checks beyond parity: the seeds' own sanity runs.
add_test(NAME models/vit_overfit
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/vit_overfit.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(models/vit_overfit PROPERTIES LABELS models TIMEOUT 600
  SKIP_RETURN_CODE 77
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")

# Seed 004's captioning overfit check: 200 Adam steps of the shipped
# caption_transformer recipe on 50 captions through the trainer
# (train_run_with), the last step's training loss below the seed's 0.05 and
# greedy decoding of the training images back to their captions (BLEU-4).
add_executable(test_caption_overfit ${CMAKE_CURRENT_LIST_DIR}/test_caption_overfit.c)
target_include_directories(test_caption_overfit PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(test_caption_overfit PRIVATE ctrain_core)
add_test(NAME models/caption_overfit
  COMMAND test_caption_overfit ${PROJECT_SOURCE_DIR}/configs/caption_transformer.ini)
set_tests_properties(models/caption_overfit PROPERTIES LABELS models TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")

# Causality of caption_transformer (issue 17): the logits at positions <= t
# do not move, bit for bit, when the tokens after t change; the same graph
# without its causal mask must move them.
add_executable(test_caption_causal ${CMAKE_CURRENT_LIST_DIR}/test_caption_causal.c)
target_include_directories(test_caption_causal PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(test_caption_causal PRIVATE ctrain_core)
add_test(NAME models/caption_causal COMMAND test_caption_causal)
set_tests_properties(models/caption_causal PROPERTIES LABELS "models;unit" TIMEOUT 60
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")
