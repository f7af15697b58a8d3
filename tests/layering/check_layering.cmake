# Layering check of one layer, run by ctest (tests layering_<layer>, tests/CMakeLists.txt):
#   cmake -DSETTINGS=<generated settings file> -P check_layering.cmake
# The settings file (written at generate time) gives LAYER, the compiler, the levels of all layers,
# each layer's declared DEPENDS / PRIVATE_DEPENDS, and LAYER's two include paths: OWN (what its
# sources are compiled with) and INTERFACE (what its users get).
# Checks, each of which fails the test:
#   1. every layer LAYER declares (public or private) has a lower level;
#   2. LAYER's public headers compile together with the INTERFACE include path alone (a public
#      header needing a layer or library declared only privately fails here); this is also the
#      control that the probes below fail for the right reason (the MPI interop header compiles
#      with idprune::mpi_interop's include path instead);
#   3. with the OWN include path, no header of a layer LAYER may not see (a layer of its level or
#      above, or one it does not reach through its declarations) can be included: the compiler
#      must stop with "file not found" on that very include;
#   4. <mpi.h> cannot be included from any layer's INTERFACE path, nor from the OWN path of a
#      layer other than dist (MPI stays behind dist::Comm).
cmake_minimum_required(VERSION 3.25)
include("${SETTINGS}")

set(failures "")
macro(fail)
  string(JOIN "" text ${ARGN})
  list(APPEND failures "${text}")
endmacro()

function(level_of layer out)
  list(FIND LEVELS ${layer} i)
  if(i EQUAL -1)
    message(FATAL_ERROR "layer '${layer}' has no level in layer_levels (tests/CMakeLists.txt)")
  endif()
  math(EXPR i "${i} + 1")
  list(GET LEVELS ${i} level)
  set(${out} ${level} PARENT_SCOPE)
endfunction()

function(flags_of includes out)
  set(flags "")
  foreach(dir IN LISTS includes)
    if(dir)
      list(APPEND flags "-I${dir}")
    endif()
  endforeach()
  foreach(def IN LISTS DEFINITIONS)
    if(def)
      list(APPEND flags "-D${def}")
    endif()
  endforeach()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# Compiles `code` (syntax only); sets rc and output in the caller.
function(probe name code includes)
  set(file "${WORK_DIR}/${name}.cpp")
  file(WRITE "${file}" "${code}")
  flags_of("${includes}" flags)
  execute_process(COMMAND "${CXX_COMPILER}" -std=c++20 -fsyntax-only ${flags} "${file}"
                  RESULT_VARIABLE result OUTPUT_VARIABLE text ERROR_VARIABLE text)
  set(rc "${result}" PARENT_SCOPE)
  set(output "${text}" PARENT_SCOPE)
endfunction()

# The include must fail, and fail because that header is not found.
function(expect_not_found name header includes why)
  probe("${name}" "#include <${header}>\n" "${includes}")
  if(rc EQUAL 0)
    set(failures ${failures} "${LAYER}: <${header}> is visible (${why})" PARENT_SCOPE)
  elseif(NOT output MATCHES "${header}" OR NOT output MATCHES "(No such file or directory|file not found)")
    set(failures ${failures} "${LAYER}: probe for <${header}> failed for another reason:\n${output}" PARENT_SCOPE)
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
level_of(${LAYER} own_level)

# 1. Declared dependencies point downward.
foreach(dep IN LISTS DEPENDS_${LAYER} PRIVATE_DEPENDS_${LAYER})
  level_of(${dep} dep_level)
  if(NOT dep_level LESS own_level)
    fail("${LAYER} (level ${own_level}) declares a dependency on ${dep} (level ${dep_level}): not a lower layer")
  endif()
endforeach()

# The layers LAYER's sources may see: itself, its declared layers, and what they pass on publicly.
set(visible ${LAYER})
set(queue ${DEPENDS_${LAYER}} ${PRIVATE_DEPENDS_${LAYER}})
while(queue)
  list(POP_FRONT queue dep)
  if(NOT dep IN_LIST visible)
    list(APPEND visible ${dep})
    list(APPEND queue ${DEPENDS_${dep}})
  endif()
endwhile()

# 2. Own public headers, with the users' include path.
file(GLOB own_headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/idprune/${LAYER}/*.hpp")
list(SORT own_headers)
# The header that hands out the raw MPI handle needs MPI's include path: its users link
# idprune::mpi_interop, so it compiles with that target's include path instead.
set(interop_headers "")
foreach(header IN LISTS own_headers)
  if(header IN_LIST INTEROP_HEADERS)
    list(APPEND interop_headers ${header})
  endif()
endforeach()
if(interop_headers)
  list(REMOVE_ITEM own_headers ${interop_headers})
  foreach(header IN LISTS interop_headers)
    string(MAKE_C_IDENTIFIER "${header}" id)
    probe("interop_${id}" "#include <${header}>\n" "${INTEROP_INCLUDES}")
    if(NOT rc EQUAL 0)
      fail("${LAYER}: <${header}> does not compile with idprune::mpi_interop's include path:\n${output}")
    endif()
  endforeach()
endif()
if(NOT own_headers)
  fail("${LAYER}: no public headers in include/idprune/${LAYER}/")
endif()
set(code "")
foreach(header IN LISTS own_headers)
  string(APPEND code "#include <${header}>\n")
endforeach()
probe(own_headers "${code}" "${INTERFACE_INCLUDES}")
if(NOT rc EQUAL 0)
  fail("${LAYER}: its public headers do not compile with the include path its users get "
       "(a public header needs a layer or library declared only as PRIVATE?):\n${output}")
endif()

# 3. Headers of layers LAYER may not see.
set(checked 0)
foreach(other IN LISTS LAYERS)
  if(other STREQUAL LAYER)
    continue()
  endif()
  level_of(${other} other_level)
  if(other IN_LIST visible AND other_level LESS own_level)
    continue()
  endif()
  if(other_level LESS own_level)
    set(why "${other} is lower but not declared")
  else()
    set(why "${other} is level ${other_level}, ${LAYER} level ${own_level}")
  endif()
  file(GLOB headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/idprune/${other}/*.hpp")
  foreach(header IN LISTS headers)
    string(MAKE_C_IDENTIFIER "${header}" id)
    expect_not_found("up_${id}" "${header}" "${OWN_INCLUDES}" "${why}")
    math(EXPR checked "${checked} + 1")
  endforeach()
endforeach()

# 4. MPI only inside dist.
expect_not_found(mpi_interface "mpi.h" "${INTERFACE_INCLUDES}" "MPI must not reach the users of ${LAYER}")
if(NOT LAYER STREQUAL "dist")
  expect_not_found(mpi_own "mpi.h" "${OWN_INCLUDES}" "only dist's sources use MPI")
endif()

if(failures)
  list(LENGTH failures n)
  string(JOIN "\n  " text ${failures})
  message(FATAL_ERROR "layering of '${LAYER}': ${n} violation(s):\n  ${text}")
endif()
message(STATUS "layering of '${LAYER}': ok (sees ${visible}; ${checked} headers of other layers are "
               "out of reach; its public headers compile for its users)")
