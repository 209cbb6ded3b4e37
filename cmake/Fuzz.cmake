# Coverage-guided fuzzing of the parsers that take untrusted bytes (tests/fuzz/README.md):
# afl-fuzz over the SharpFuzz-instrumented JIT harness, 60 s a target. .ci/run installs afl++.
# RUN_SERIAL: a fuzzer keeps both cores busy, and the two targets build the same harness.

if(BUILD_TESTING)
    foreach(target kserve convention core)
        add_test(NAME fuzz_${target}
            COMMAND bash "${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh" ${target} 60)
        set_tests_properties(fuzz_${target} PROPERTIES
            ENVIRONMENT "MLOS_BUILD_DIR=${CMAKE_BINARY_DIR}"
            RUN_SERIAL TRUE
            TIMEOUT 600)
    endforeach()
endif()
