# asr_add_module(NAME DEPS ...): a static library asr_NAME_lib from src/NAME/*.cpp
# with the public headers under include/asr/NAME. The token TORCH in DEPS
# links LibTorch and reuses one precompiled header for all torch modules.
# Other asr_<module>_lib entries in DEPS are the modules NAME may use: they
# are recorded for asr_check_module_layers() below.
function(asr_add_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  if(NOT _srcs)
    set(_srcs "${PROJECT_SOURCE_DIR}/cmake/empty.cpp")
  endif()
  add_library(asr_${name}_lib STATIC ${_srcs})
  target_include_directories(asr_${name}_lib PUBLIC "${PROJECT_SOURCE_DIR}/include")
  target_compile_options(asr_${name}_lib PRIVATE -Wall -Wextra -Wno-unused-parameter)
  set(_deps ${ARG_DEPS})
  list(FIND _deps TORCH _torch_idx)
  if(NOT _torch_idx EQUAL -1)
    list(REMOVE_ITEM _deps TORCH)
    target_link_libraries(asr_${name}_lib PUBLIC asr_torch)
    asr_use_torch_pch(asr_${name}_lib)
  endif()
  target_link_libraries(asr_${name}_lib PUBLIC ${_deps})
  set(_uses "")
  foreach(_d ${_deps})
    if(_d MATCHES "^asr_(.+)_lib$")
      list(APPEND _uses ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set_property(GLOBAL APPEND PROPERTY ASR_MODULES ${name})
  set_property(GLOBAL PROPERTY ASR_MODULE_USES_${name} "${_uses}")
endfunction()

# The module graph as "name:dep,dep;name:..." for cmake/CheckModuleLayers.cmake.
function(asr_module_graph out_var)
  get_property(_modules GLOBAL PROPERTY ASR_MODULES)
  set(_graph "")
  foreach(_m ${_modules})
    get_property(_uses GLOBAL PROPERTY ASR_MODULE_USES_${_m})
    string(REPLACE ";" "," _uses "${_uses}")
    list(APPEND _graph "${_m}:${_uses}")
  endforeach()
  set(${out_var} "${_graph}" PARENT_SCOPE)
endfunction()

# Fails the configure step when a module's sources or headers include a
# header of a module it does not link (directly or through its deps), and
# registers the same check as a test so an include added later is caught.
function(asr_check_module_layers)
  asr_module_graph(_graph)
  string(REPLACE ";" "|" _arg "${_graph}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} "-DGRAPH=${_arg}"
                          -P ${PROJECT_SOURCE_DIR}/cmake/CheckModuleLayers.cmake
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${_out}${_err}")
  endif()
  set(ASR_MODULE_GRAPH_ARG "${_arg}" PARENT_SCOPE)
endfunction()

# One PCH of the torch headers, built once and shared by every torch target.
function(asr_use_torch_pch target)
  if(NOT TARGET asr_torch_pch)
    add_library(asr_torch_pch STATIC "${PROJECT_SOURCE_DIR}/cmake/empty.cpp")
    target_link_libraries(asr_torch_pch PUBLIC asr_torch)
    target_compile_options(asr_torch_pch PRIVATE -Wall -Wextra -Wno-unused-parameter)
    target_precompile_headers(asr_torch_pch PRIVATE "${PROJECT_SOURCE_DIR}/cmake/torch_pch.h")
  endif()
  target_precompile_headers(${target} REUSE_FROM asr_torch_pch)
endfunction()

function(asr_add_program name main)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  add_executable(${name} ${main})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
