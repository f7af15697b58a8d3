# Helpers that give every idprune target the same flags and layering.

add_library(idprune_warnings INTERFACE)
target_compile_options(idprune_warnings INTERFACE -Wall -Wextra -Wpedantic
                                                  $<$<BOOL:${IDPRUNE_WERROR}>:-Werror>)
if(IDPRUNE_SANITIZE)
  target_compile_options(idprune_warnings INTERFACE -fsanitize=address,undefined
                                                    -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(idprune_warnings INTERFACE -fsanitize=address,undefined)
endif()

# idprune_add_layer(NAME [DEPENDS lower layers...])
# Builds src/NAME/*.cpp into the static library idprune_NAME, public headers in include/idprune/NAME.
function(idprune_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  set(target idprune_${name})
  if(sources)
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC "${PROJECT_SOURCE_DIR}/include"
                                         PRIVATE "${PROJECT_SOURCE_DIR}/src")
    target_compile_features(${target} PUBLIC cxx_std_20)
    target_link_libraries(${target} PRIVATE idprune_warnings)
    set(scope PUBLIC)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE "${PROJECT_SOURCE_DIR}/include")
    set(scope INTERFACE)
  endif()
  foreach(dep IN LISTS ARG_DEPENDS)
    target_link_libraries(${target} ${scope} idprune_${dep})
  endforeach()
  # Every layer may use the numerical and parallel runtimes.
  target_link_libraries(${target} ${scope} PkgConfig::LAPACKE PkgConfig::OPENBLAS LAPACK::LAPACK
                        BLAS::BLAS MPI::MPI_CXX TBB::tbb Threads::Threads)
  if(name STREQUAL "dist")
    target_link_libraries(${target} ${scope} PkgConfig::SCALAPACK)
  endif()
  if(name STREQUAL "data" OR name STREQUAL "nn" OR name STREQUAL "report")
    target_link_libraries(${target} ${scope} ZLIB::ZLIB nlohmann_json::nlohmann_json)
  endif()
  add_library(idprune::${name} ALIAS ${target})
endfunction()
