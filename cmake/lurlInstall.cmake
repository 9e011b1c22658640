# lurl installed as a tool (bin/lurl) and as a C library: lurl.h with the
# generated lurl_version.h, the static liblurl.a (the Lua library's bytecode
# and llhttp's objects are inside it), lurl.pc for pkg-config, and a CMake
# package whose find_package(lurl) gives the target lurl::lurl.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(lurlrt PROPERTIES OUTPUT_NAME lurl EXPORT_NAME lurl)
# A parent project that uses add_subdirectory links the same name as one that
# uses find_package.
add_library(lurl::lurl ALIAS lurlrt)
target_include_directories(lurlrt INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

set(LURL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/lurl)
install(TARGETS lurl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS lurlrt EXPORT lurlTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES runtime/include/lurl.h ${CMAKE_CURRENT_BINARY_DIR}/include/lurl_version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT lurlTargets NAMESPACE lurl:: DESTINATION ${LURL_CMAKE_DIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The dependencies are read off lurlrt's link line, so a library added there
# reaches lurl.pc and lurlConfig.cmake, or stops the configure here.
set(LURL_PC_REQUIRES "")
set(LURL_PKG_DEPS "")
get_target_property(lurl_deps lurlrt INTERFACE_LINK_LIBRARIES)
foreach(dep IN LISTS lurl_deps)
  if(dep MATCHES "^PkgConfig::(.+)$")
    list(APPEND LURL_PC_REQUIRES ${${CMAKE_MATCH_1}_MODULE_NAME})
    list(APPEND LURL_PKG_DEPS "${CMAKE_MATCH_1}=${${CMAKE_MATCH_1}_MODULE_NAME}")
  elseif(dep STREQUAL "OpenSSL::SSL")
    list(APPEND LURL_PC_REQUIRES libssl)
  elseif(dep STREQUAL "OpenSSL::Crypto")
    list(APPEND LURL_PC_REQUIRES libcrypto)
  elseif(dep STREQUAL "ZLIB::ZLIB")
    list(APPEND LURL_PC_REQUIRES zlib)
  elseif(NOT dep STREQUAL "m")
    message(FATAL_ERROR "cmake/lurlInstall.cmake does not know how a host finds ${dep}: "
      "add it to lurl.pc and lurlConfig.cmake")
  endif()
endforeach()
list(JOIN LURL_PC_REQUIRES " " LURL_PC_REQUIRES)
list(JOIN LURL_PKG_DEPS " " LURL_PKG_DEPS)

file(RELATIVE_PATH LURL_PC_INCLUDEDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_FULL_INCLUDEDIR})
configure_file(cmake/lurl.pc.in lurl.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/lurl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

configure_package_config_file(cmake/lurlConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/lurlConfig.cmake
  INSTALL_DESTINATION ${LURL_CMAKE_DIR})
# Before 1.0 a new minor version may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/lurlConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/lurlConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/lurlConfigVersion.cmake
  DESTINATION ${LURL_CMAKE_DIR})
