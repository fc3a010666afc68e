# Builds llhttp as a static library from the C sources Debian's node-llhttp ships.
set(LLHTTP_SOURCE_DIR "/usr/share/llhttp" CACHE PATH "Directory with llhttp's api.c, http.c and llhttp.c")
set(LLHTTP_INCLUDE_DIR "/usr/share/include/llhttp" CACHE PATH "Directory with llhttp.h")

foreach(f api.c http.c llhttp.c)
  if(NOT EXISTS "${LLHTTP_SOURCE_DIR}/${f}")
    message(FATAL_ERROR "llhttp source ${LLHTTP_SOURCE_DIR}/${f} not found: run deps/install.sh (package node-llhttp)")
  endif()
endforeach()
if(NOT EXISTS "${LLHTTP_INCLUDE_DIR}/llhttp.h")
  message(FATAL_ERROR "llhttp.h not found in ${LLHTTP_INCLUDE_DIR}: run deps/install.sh (package node-llhttp)")
endif()

add_library(llhttp STATIC
  "${LLHTTP_SOURCE_DIR}/api.c" "${LLHTTP_SOURCE_DIR}/http.c" "${LLHTTP_SOURCE_DIR}/llhttp.c")
target_include_directories(llhttp SYSTEM PUBLIC "${LLHTTP_INCLUDE_DIR}")
# Third-party code: compiled without our warning flags.
set_target_properties(llhttp PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
target_compile_options(llhttp PRIVATE -w)
# Strict mode: a bare CR or LF never ends a line, chunk data must be followed by exactly CRLF, and the other
# lenient paths that let two parsers disagree about where a request ends are closed (we sit behind proxies).
target_compile_definitions(llhttp PUBLIC LLHTTP_STRICT_MODE=1)
