# Helpers that give every idprune target the same flags and layering.

# Warnings only: sanitizers are a build-wide option (IDPRUNE_SANITIZE, top-level CMakeLists.txt).
add_library(idprune_warnings INTERFACE)
target_compile_options(idprune_warnings INTERFACE -Wall -Wextra -Wpedantic
                                                  $<$<BOOL:${IDPRUNE_WERROR}>:-Werror>)

# Layering is enforced by the include path, so an upward include fails to COMPILE, not only to
# link: each layer's public headers are staged (a symbolic link) in a folder of their own,
#   ${PROJECT_BINARY_DIR}/staged/NAME/include/idprune/NAME -> include/idprune/NAME
# and a target gets only its own staged folder and those of the layers it declares (CMake passes
# a PUBLIC dependency's folder on to the layer's users, a PRIVATE one only to the layer's own
# sources). The source tree's include/ is on no include path. Private headers of a layer
# (src/NAME/*.hpp) are staged the same way, for that layer only.
set(IDPRUNE_STAGED_DIR "${PROJECT_BINARY_DIR}/staged")
set_property(GLOBAL PROPERTY IDPRUNE_LAYERS "")

function(_idprune_stage_link target link)
  get_filename_component(parent "${link}" DIRECTORY)
  file(MAKE_DIRECTORY "${parent}")
  if(IS_SYMLINK "${link}")
    file(READ_SYMLINK "${link}" current)
    if(current STREQUAL target)
      return()
    endif()
    file(REMOVE "${link}")
  elseif(EXISTS "${link}")
    file(REMOVE_RECURSE "${link}")
  endif()
  file(CREATE_LINK "${target}" "${link}" RESULT result SYMBOLIC)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "idprune: cannot create the symbolic link ${link} -> ${target} (${result}); "
                        "the layered include folders need a file system with symbolic links")
  endif()
endfunction()

# idprune_add_layer(NAME
#                   [DEPENDS layers...]         lower layers that NAME's public headers include
#                   [PRIVATE_DEPENDS layers...] lower layers that only NAME's sources include
#                   [PUBLIC_LIBS targets...]    external targets NAME's public headers need
#                   [PRIVATE_LIBS targets...]   external targets only NAME's sources need
#                   [HEADERS files...])         public headers outside include/idprune/NAME/
#                                               (paths relative to include/), staged with NAME
# Builds src/NAME/*.cpp (globbed, so new files need no edit here) into the static library
# idprune_NAME (alias idprune::NAME); public headers in include/idprune/NAME/. A layer without
# sources is an INTERFACE library (it then takes neither PRIVATE_DEPENDS nor PRIVATE_LIBS).
# The layers a layer depends on must be declared before it, so the graph has no cycle.
function(idprune_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;PRIVATE_DEPENDS;PUBLIC_LIBS;PRIVATE_LIBS;HEADERS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "idprune_add_layer(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT IS_DIRECTORY "${PROJECT_SOURCE_DIR}/include/idprune/${name}")
    message(FATAL_ERROR "idprune_add_layer(${name}): include/idprune/${name}/ does not exist")
  endif()
  foreach(dep IN LISTS ARG_DEPENDS ARG_PRIVATE_DEPENDS)
    if(NOT TARGET idprune_${dep})
      message(FATAL_ERROR "idprune_add_layer(${name}): layer '${dep}' is not declared yet "
                          "(declare lower layers first)")
    endif()
  endforeach()

  set(target idprune_${name})
  set(public_dir "${IDPRUNE_STAGED_DIR}/${name}/include")
  _idprune_stage_link("${PROJECT_SOURCE_DIR}/include/idprune/${name}" "${public_dir}/idprune/${name}")
  foreach(header IN LISTS ARG_HEADERS)
    if(NOT EXISTS "${PROJECT_SOURCE_DIR}/include/${header}")
      message(FATAL_ERROR "idprune_add_layer(${name}): HEADERS: include/${header} does not exist")
    endif()
    _idprune_stage_link("${PROJECT_SOURCE_DIR}/include/${header}" "${public_dir}/${header}")
  endforeach()

  file(GLOB sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  if(sources)
    set(private_dir "${IDPRUNE_STAGED_DIR}/${name}/src")
    _idprune_stage_link("${PROJECT_SOURCE_DIR}/src/${name}" "${private_dir}/${name}")
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${public_dir}>" PRIVATE "${private_dir}")
    target_compile_features(${target} PUBLIC cxx_std_20)
    target_link_libraries(${target} PRIVATE idprune_warnings)
    set(scope PUBLIC)
  else()
    if(ARG_PRIVATE_DEPENDS OR ARG_PRIVATE_LIBS)
      message(FATAL_ERROR "idprune_add_layer(${name}): a layer without sources has no PRIVATE dependencies")
    endif()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE "$<BUILD_INTERFACE:${public_dir}>")
    target_compile_features(${target} INTERFACE cxx_std_20)
    set(scope INTERFACE)
  endif()
  foreach(dep IN LISTS ARG_DEPENDS)
    target_link_libraries(${target} ${scope} idprune_${dep})
  endforeach()
  foreach(dep IN LISTS ARG_PRIVATE_DEPENDS)
    target_link_libraries(${target} PRIVATE idprune_${dep})
  endforeach()
  if(ARG_PUBLIC_LIBS)
    target_link_libraries(${target} ${scope} ${ARG_PUBLIC_LIBS})
  endif()
  if(ARG_PRIVATE_LIBS)
    target_link_libraries(${target} PRIVATE ${ARG_PRIVATE_LIBS})
  endif()
  add_library(idprune::${name} ALIAS ${target})

  # For the layering tests (tests/CMakeLists.txt).
  set_property(GLOBAL APPEND PROPERTY IDPRUNE_LAYERS ${name})
  set_property(GLOBAL PROPERTY IDPRUNE_LAYER_${name}_DEPENDS ${ARG_DEPENDS})
  set_property(GLOBAL PROPERTY IDPRUNE_LAYER_${name}_PRIVATE_DEPENDS ${ARG_PRIVATE_DEPENDS})
endfunction()
