# Test tools that expose library internals to the PyTorch reference scripts.
foreach(tool parity_dump schedule_dump)
  add_executable(${tool} ${CMAKE_CURRENT_LIST_DIR}/${tool}.c)
  target_link_libraries(${tool} PRIVATE ctrain_core)
endforeach()

add_test(NAME reference/schedules
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../reference/schedules.py $<TARGET_FILE:schedule_dump>)
set_tests_properties(reference/schedules PROPERTIES LABELS reference TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")

# PyTorch parity, one test per model: "model batch steps". attn_cnn keeps the
# 5 steps its tolerances were calibrated on; the zoo runs the issue's 3 steps
# on batches small enough for a few seconds each (resnet10_attn: 4 images).
# resnet10 takes 8: with 4 it fits the batch so fast that its step-2 loss is
# ~0.1, and on an AMD EPYC (OpenBLAS's Zen kernels) the float32 rounding of
# the two implementations left 1.1e-5 relative there (tolerance 1e-5; on an
# AVX-512 Intel it passed); with 8 images it is 5.4e-7.
# conv_vit takes 16: with 8 its step-2 loss differed by 1.3e-5 relative
# (tolerance 1e-5) — AdamW at lr 2e-3 moves every weight by about lr whatever
# its gradient's size, so a near-zero gradient component rounded to the other
# sign moves the weight the other way; with 16 images it is 4.5e-7.
# (Those figures were against the fixed 1e-5 of the time; the tolerances now
# come from PyTorch float32's measured noise, see parity.py.)
foreach(entry "attn_cnn 32 5" "ultimus 32 3" "cnn_vanilla 8 3" "cnn_early 8 3" "cnn_late 8 3"
              "cnn_double 8 3" "resnet10 8 3" "resnet10_attn 4 3" "vit 8 3"
              "conv_vit 16 3")
  separate_arguments(args UNIX_COMMAND "${entry}")
  list(GET args 0 model)
  list(GET args 1 batch)
  list(GET args 2 steps)
  # Twice, under two OpenBLAS kernel sets, so the tolerances (derived from
  # PyTorch float32's own distance from float64, parity.py) are shown not to
  # depend on the BLAS; SkylakeX skips where the CPU lacks AVX-512.
  foreach(core Haswell SkylakeX)
    string(TOLOWER ${core} core_lc)
    add_test(NAME reference/parity_${model}_${core_lc}
      COMMAND ${CMAKE_CURRENT_LIST_DIR}/parity.sh $<TARGET_FILE:ctrain> $<TARGET_FILE:parity_dump>
              ${PROJECT_SOURCE_DIR}/configs/${model}.ini ${CMAKE_CURRENT_LIST_DIR}/../reference/parity.py
              ${batch} ${steps})
    set_tests_properties(reference/parity_${model}_${core_lc} PROPERTIES LABELS reference TIMEOUT 600
      SKIP_RETURN_CODE 77 ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1;OPENBLAS_CORETYPE=${core}")
  endforeach()
endforeach()

# caption_transformer on COCO-layout data, small enough for a few seconds:
# width 64, 2 layers, 2 heads, FFN 128, 16 captions, 3 Adam steps.
foreach(core Haswell SkylakeX)
  string(TOLOWER ${core} core_lc)
  add_test(NAME reference/parity_caption_transformer_${core_lc}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/parity_caption.sh $<TARGET_FILE:ctrain>
            $<TARGET_FILE:parity_dump> ${PROJECT_SOURCE_DIR}/configs/caption_transformer.ini
            ${CMAKE_CURRENT_LIST_DIR}/../reference/parity.py 16 3
            --set model.dim=64 --set model.depth=2 --set model.heads=2 --set model.ffn_dim=128)
  set_tests_properties(reference/parity_caption_transformer_${core_lc} PROPERTIES LABELS reference
    TIMEOUT 600 SKIP_RETURN_CODE 77
    ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1;OPENBLAS_CORETYPE=${core}")
endforeach()

# The alpha-beta scaling model (tests/bench/scaling_model.py): its formulas,
# calibration and tables, standard library only, under a second.
add_test(NAME tools/scaling_model COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/scaling_model_test.py)
set_tests_properties(tools/scaling_model PROPERTIES LABELS tools TIMEOUT 60)
