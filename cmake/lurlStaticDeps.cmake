# The lurl executable linked with its dependencies' static archives (the
# same Debian -dev packages ship them): with 14 shared libraries the dynamic
# loader took most of a short run's start (LD_DEBUG=statistics: 1.7 million
# cycles, 21,000 relocations), and OpenSSL's alone 3 ms of 12 on a slow VM.
# libpsl and libidn2 stay shared: their libunistring has no archive in the
# packages lurl installs. liblurl.a and the embedding API keep the shared
# libraries (lurlrt's link line); only the CLI changes. The binary stays
# position-independent (ASLR over the parsers of untrusted input). The
# sanitizer and fuzzing builds keep the shared link: their runtime comes
# through lurlrt's link line (fuzz/CMakeLists.txt).
#
# Sets LURL_STATIC_DEPS_FOUND and LURL_STATIC_ARCHIVES (in link order).
set(LURL_STATIC_DEPS_FOUND OFF)
set(LURL_STATIC_ARCHIVES)
if(LURL_STATIC_DEPS AND NOT LURL_SANITIZE AND NOT LURL_FUZZ)
  set(missing)
  foreach(name luajit-5.1 uv_a nghttp2 cares brotlidec brotlienc brotlicommon zstd ssl crypto z)
    string(MAKE_C_IDENTIFIER ${name} id)
    find_library(LURL_ARCHIVE_${id} NAMES lib${name}.a)
    if(LURL_ARCHIVE_${id})
      list(APPEND LURL_STATIC_ARCHIVES ${LURL_ARCHIVE_${id}})
    else()
      list(APPEND missing lib${name}.a)
    endif()
  endforeach()
  if(missing)
    message(STATUS "lurl links its dependencies dynamically: no ${missing}")
  else()
    set(LURL_STATIC_DEPS_FOUND ON)
  endif()
endif()
