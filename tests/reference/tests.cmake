# PyTorch reference (Debian's /usr/bin/python3 has torch and h5py). The parity
# and schedule checks against ctrain need its dump tools and are wired where
# those are built; parity_selftest checks parity.py itself on PyTorch-made dumps.
add_test(NAME reference/models COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_models.py)
add_test(NAME reference/parity_selftest COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_parity_checker.py)
set_tests_properties(reference/models reference/parity_selftest PROPERTIES LABELS reference TIMEOUT 600)
