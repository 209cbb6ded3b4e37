# CPack (#17): `cmake --build build --target package` (or cpack --config build/CPackConfig.cmake)
# makes, from the install tree of cmake/Install.cmake,
#   mlos-native-<version>-Linux.tar.gz  the relocatable tree as it is (unpack anywhere);
#   mlos-native_<version>_amd64.deb     the same under /usr, with the systemd unit (installed,
#                                       not enabled) and /etc/mlos/config.json made on install.
# The version is the project's (CMakeLists.txt), the one place every artifact takes it from.
install(FILES "${PROJECT_SOURCE_DIR}/deploy/systemd/mlos_core.service" DESTINATION lib/systemd/system)
install(FILES "${PROJECT_SOURCE_DIR}/deploy/debian/config.json" DESTINATION share/mlos)

set(CPACK_PACKAGE_NAME mlos-native)
set(CPACK_PACKAGE_VENDOR "MLOS Native")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MLOS Native: SMI plugin model-serving core, server (MLOS API, KServe v2 REST and gRPC) and plugins")
set(CPACK_PACKAGE_DESCRIPTION "libmlos_core.so loads SMI plugins written in any language and runs models through them; mlos_core serves them over the MLOS HTTP API and the Open Inference Protocol (REST and gRPC). Ships the ONNX Runtime, TorchSharp, Python-bridge and echo plugins.")
set(CPACK_PACKAGE_CONTACT "MLOS Native team <mlos-native@localhost>")
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
set(CPACK_GENERATOR "TGZ;DEB")
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_THREADS 0)
set(CPACK_PROJECT_CONFIG_FILE "${PROJECT_SOURCE_DIR}/cmake/PackageGenerators.cmake")

# Debian: what the binaries need at run time (readelf -d of every file: glibc, and libstdc++ /
# libgcc for ONNX Runtime and libtorch; .NET runs with invariant globalization and no TLS, so no
# ICU or OpenSSL). CUDA libraries are loaded only when a GPU is asked for, so they are suggested.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34), libgcc-s1, libstdc++6 (>= 12)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpython3.11, python3-numpy")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "curl")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE zstd)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/deploy/debian/postinst;${PROJECT_SOURCE_DIR}/deploy/debian/prerm;${PROJECT_SOURCE_DIR}/deploy/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
