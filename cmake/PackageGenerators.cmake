# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE): the .deb goes under /usr, the
# .tar.gz stays a relocatable tree in a folder of its own.
if(CPACK_GENERATOR STREQUAL "DEB")
    set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
endif()
