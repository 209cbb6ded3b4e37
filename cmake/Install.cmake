# `cmake --install build --prefix P` (#17): a relocatable tree. Every path below is relative to
# P, and every artifact finds its neighbours relative to itself (the server its plugins at
# ../lib/mlos/plugins, libmlos_core.so its plugin host at ../bin, each plugin its native
# libraries in its own folder), so P may be moved or unpacked anywhere.
#   bin/mlos_core, bin/mlos_plugin_host
#   lib/libmlos_core.so, lib/mlos/plugins/ (plugins, their native libraries, triton_python/)
#   lib/cmake/MlosNative/ (find_package), lib/pkgconfig/ (mlos-core.pc, mlos-smi.pc)
#   include/mlos/*.h, share/mlos/ (the demo model, README)
include(CMakePackageConfigHelpers)

set(MLOS_INSTALL_LIBDIR lib)
install(PROGRAMS "${CMAKE_BINARY_DIR}/mlos_core" "${CMAKE_BINARY_DIR}/mlos_plugin_host" DESTINATION bin)
install(FILES "${CMAKE_BINARY_DIR}/libmlos_core.so" DESTINATION ${MLOS_INSTALL_LIBDIR})
install(DIRECTORY "${MLOS_PLUGIN_DIR}/" DESTINATION ${MLOS_INSTALL_LIBDIR}/mlos/plugins USE_SOURCE_PERMISSIONS)
install(FILES "${PROJECT_SOURCE_DIR}/include/mlos/smi_spec.h" "${PROJECT_SOURCE_DIR}/include/mlos/mlos_core.h" DESTINATION include/mlos)
install(FILES "${PROJECT_SOURCE_DIR}/tests/models/onnx/mlp.onnx" DESTINATION share/mlos/models)
install(FILES "${PROJECT_SOURCE_DIR}/README.md" DESTINATION share/mlos)

# find_package(MlosNative CONFIG): MlosNative::core (libmlos_core.so and its headers) and
# MlosNative::smi (the SMI header alone, for plugin authors). 0.x: minor versions may differ.
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/MlosNativeConfig.cmake.in"
    "${CMAKE_BINARY_DIR}/package/MlosNativeConfig.cmake"
    INSTALL_DESTINATION ${MLOS_INSTALL_LIBDIR}/cmake/MlosNative)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/package/MlosNativeConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/package/MlosNativeConfig.cmake" "${CMAKE_BINARY_DIR}/package/MlosNativeConfigVersion.cmake"
    DESTINATION ${MLOS_INSTALL_LIBDIR}/cmake/MlosNative)

# pkg-config: the prefix is found from the .pc file's own folder, so the tree stays relocatable.
foreach(pc mlos-core mlos-smi)
    configure_file("${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in" "${CMAKE_BINARY_DIR}/package/${pc}.pc" @ONLY)
    install(FILES "${CMAKE_BINARY_DIR}/package/${pc}.pc" DESTINATION ${MLOS_INSTALL_LIBDIR}/pkgconfig)
endforeach()
