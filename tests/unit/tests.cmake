# The real-data import reads ../shared/data and skips (77) when it is absent.
set_property(TEST unit/test_prepare_real PROPERTY SKIP_RETURN_CODE 77)
set_property(TEST unit/test_prepare_real APPEND PROPERTY ENVIRONMENT
  "CTRAIN_DATA_DIR=${PROJECT_SOURCE_DIR}/../shared/data")
