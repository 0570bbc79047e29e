# cmake -DSOURCE_DIR=<root> -DGRAPH="core:|audio:core|..." -P CheckModuleLayers.cmake
#
# Every `#include "asr/<module>/..."` in src/<m>/ and include/asr/<m>/ must
# name <m> itself or a module <m> uses, directly or through the modules it
# uses (GRAPH, from the DEPS of asr_add_module in CMakeLists.txt). Anything
# else is a layer violation: the modules would no longer depend in one
# direction. Prints every violation and fails.
cmake_minimum_required(VERSION 3.18)
if(NOT SOURCE_DIR OR NOT GRAPH)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=DIR -DGRAPH=name:dep,dep|... -P CheckModuleLayers.cmake")
endif()
string(REPLACE "|" ";" _entries "${GRAPH}")
set(_modules "")
foreach(_e ${_entries})
  string(REGEX MATCH "^([^:]+):(.*)$" _ "${_e}")
  set(_name "${CMAKE_MATCH_1}")
  string(REPLACE "," ";" _uses "${CMAKE_MATCH_2}")
  list(APPEND _modules ${_name})
  set(_uses_${_name} ${_uses})
endforeach()

# The modules reachable from `name` (itself included).
function(_reachable name out)
  set(_seen ${name})
  set(_todo ${name})
  while(_todo)
    list(POP_FRONT _todo _m)
    foreach(_d ${_uses_${_m}})
      if(NOT _d IN_LIST _seen)
        list(APPEND _seen ${_d})
        list(APPEND _todo ${_d})
      endif()
    endforeach()
  endwhile()
  set(${out} ${_seen} PARENT_SCOPE)
endfunction()

set(_violations "")
set(_checked 0)
foreach(_m ${_modules})
  _reachable(${_m} _allowed)
  file(GLOB_RECURSE _files "${SOURCE_DIR}/src/${_m}/*.cpp" "${SOURCE_DIR}/src/${_m}/*.h"
                           "${SOURCE_DIR}/include/asr/${_m}/*.h")
  foreach(_f ${_files})
    math(EXPR _checked "${_checked} + 1")
    file(STRINGS "${_f}" _lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"asr/[^/\"]+/")
    foreach(_l ${_lines})
      string(REGEX MATCH "\"asr/([^/\"]+)/" _ "${_l}")
      set(_target "${CMAKE_MATCH_1}")
      if(NOT _target IN_LIST _allowed)
        file(RELATIVE_PATH _rel "${SOURCE_DIR}" "${_f}")
        list(APPEND _violations "${_rel}: module '${_m}' includes a header of '${_target}', which it does not use")
      endif()
    endforeach()
  endforeach()
endforeach()

if(_violations)
  string(REPLACE ";" "\n  " _text "${_violations}")
  message(FATAL_ERROR "module layering violated (see docs/architecture.md; fix the include or the module's DEPS "
                      "in CMakeLists.txt):\n  ${_text}")
endif()
message(STATUS "module layers: ${_checked} files of ${_modules} checked, no include crosses a layer")
