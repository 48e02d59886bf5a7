# The house rules (docs/architecture.md): which room may include or call what.
add_test(NAME house/rooms COMMAND ${CMAKE_CURRENT_LIST_DIR}/rooms.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(house/rooms PROPERTIES LABELS house TIMEOUT 60)
