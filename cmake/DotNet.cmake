# Publishing .NET projects from CMake.
#
# mlos_dotnet_publish_aot(<target> PROJECT <csproj> OUTPUT <file> [NATIVE_DEPS <file>...])
#   Publishes a NativeAOT project (dotnet publish -c Release) into a staging folder of the
#   build tree and copies its native artifact (.so or executable) to OUTPUT, and the native
#   libraries it loads at run time (NATIVE_DEPS, names in the publish folder) beside it. The custom
#   command depends on every source file under src/ and the shared MSBuild files, so an edit
#   anywhere a project could see republishes it. Publishes run one after another (each target
#   depends on the one before): concurrent publishes would race on the shared projects' obj/.
#
# mlos_dotnet_add_test(<name> PROJECT <csproj>)
#   Registers `dotnet test` of a test project with CTest.

find_program(DOTNET_EXECUTABLE dotnet REQUIRED)

file(GLOB_RECURSE MLOS_DOTNET_SOURCES CONFIGURE_DEPENDS
    "${PROJECT_SOURCE_DIR}/src/*.cs"
    "${PROJECT_SOURCE_DIR}/src/*.csproj"
    "${PROJECT_SOURCE_DIR}/src/*.targets"
    "${PROJECT_SOURCE_DIR}/src/*.py")
list(FILTER MLOS_DOTNET_SOURCES EXCLUDE REGEX "/(bin|obj)/")
list(APPEND MLOS_DOTNET_SOURCES
    "${PROJECT_SOURCE_DIR}/Directory.Build.props"
    "${PROJECT_SOURCE_DIR}/Directory.Build.targets"
    "${PROJECT_SOURCE_DIR}/global.json")

set(MLOS_DOTNET_LAST_PUBLISH "" CACHE INTERNAL "")

function(mlos_dotnet_publish_aot target)
    cmake_parse_arguments(ARG "" "PROJECT;OUTPUT" "NATIVE_DEPS" ${ARGN})
    get_filename_component(project_name "${ARG_PROJECT}" NAME_WLE)
    get_filename_component(artifact "${ARG_OUTPUT}" NAME)
    get_filename_component(output_dir "${ARG_OUTPUT}" DIRECTORY)
    set(staging "${CMAKE_BINARY_DIR}/dotnet/${project_name}")
    set(copy_deps "")
    foreach(dep IN LISTS ARG_NATIVE_DEPS)
        list(APPEND copy_deps COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${staging}/${dep}" "${output_dir}/${dep}")
    endforeach()
    add_custom_command(
        OUTPUT "${ARG_OUTPUT}"
        COMMAND "${DOTNET_EXECUTABLE}" publish "${ARG_PROJECT}" -c Release -o "${staging}" --nologo -v quiet
        COMMAND "${CMAKE_COMMAND}" -E copy "${staging}/${artifact}" "${ARG_OUTPUT}"
        ${copy_deps}
        DEPENDS ${MLOS_DOTNET_SOURCES}
        COMMENT "Publishing ${project_name} (NativeAOT) -> ${ARG_OUTPUT}"
        VERBATIM)
    add_custom_target(${target} ALL DEPENDS "${ARG_OUTPUT}")
    if(MLOS_DOTNET_LAST_PUBLISH)
        add_dependencies(${target} ${MLOS_DOTNET_LAST_PUBLISH})
    endif()
    set(MLOS_DOTNET_LAST_PUBLISH ${target} CACHE INTERNAL "")
endfunction()

function(mlos_dotnet_add_test name)
    cmake_parse_arguments(ARG "" "PROJECT" "" ${ARGN})
    add_test(NAME ${name}
        # Minimal console output (failures with their messages, then the totals), so that a
        # failure is near the top of what CI shows; every result is kept in a .trx file too.
        # Category=Container needs the image built with podman: tests/container/run.sh runs it.
        COMMAND "${DOTNET_EXECUTABLE}" test "${ARG_PROJECT}" -c Release --nologo
                --filter "Category!=Container"
                --logger "console;verbosity=minimal"
                --logger "trx;LogFilePrefix=${name}"
                --results-directory "${CMAKE_BINARY_DIR}/TestResults")
    set_tests_properties(${name} PROPERTIES
        ENVIRONMENT "MLOS_BUILD_DIR=${CMAKE_BINARY_DIR}"
        TIMEOUT 1200)
endfunction()
