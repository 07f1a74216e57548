# Every dependency comes from Debian; a missing one stops configuration with the package to install.
# scripts/install-deps.sh installs all of them.

macro(dearest_missing what package)
  message(FATAL_ERROR "dearest: ${what} not found. Install the Debian package '${package}' "
                      "(sudo apt-get install ${package}) or run scripts/install-deps.sh.")
endmacro()

# OpenMP: the one thread pool shared by our loops, oneDNN and OpenBLAS (all GNU libgomp).
find_package(OpenMP)
if(NOT OpenMP_CXX_FOUND)
  dearest_missing("OpenMP for C++" "g++")
endif()

# oneDNN's CMake package needs the OpenCL headers (its GPU runtime is OpenCL in Debian's build).
find_package(OpenCL QUIET)
if(NOT OpenCL_FOUND)
  dearest_missing("OpenCL headers (required by oneDNN's CMake package)" "ocl-icd-opencl-dev")
endif()
find_package(dnnl CONFIG QUIET)
if(NOT dnnl_FOUND)
  dearest_missing("oneDNN (dnnl)" "libdnnl-dev")
endif()
if(dnnl_VERSION VERSION_LESS 2.6 OR dnnl_VERSION VERSION_GREATER_EQUAL 3.0)
  message(FATAL_ERROR "dearest: oneDNN ${dnnl_VERSION} found; the kernels are written against the 2.x API (Debian 12's libdnnl-dev 2.6).")
endif()

# OpenBLAS, OpenMP variant: the pthread variant would start its own pool beside libgomp's and the
# two fight over the 2 cores. Debian ships both side by side; we link the OpenMP one by path.
set(DEAREST_OPENBLAS_DIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp")
find_library(OPENBLAS_OPENMP_LIB NAMES openblas PATHS ${DEAREST_OPENBLAS_DIR} NO_DEFAULT_PATH)
find_path(OPENBLAS_OPENMP_INCLUDE cblas.h PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
if(NOT OPENBLAS_OPENMP_LIB OR NOT OPENBLAS_OPENMP_INCLUDE)
  dearest_missing("OpenBLAS (OpenMP variant)" "libopenblas-openmp-dev")
endif()
add_library(dearest_openblas INTERFACE)
target_link_libraries(dearest_openblas INTERFACE ${OPENBLAS_OPENMP_LIB})
target_include_directories(dearest_openblas SYSTEM INTERFACE ${OPENBLAS_OPENMP_INCLUDE})
# The loader would otherwise pick whichever libopenblas.so.0 the alternatives system points at.
set(CMAKE_BUILD_RPATH ${DEAREST_OPENBLAS_DIR})
set(CMAKE_INSTALL_RPATH ${DEAREST_OPENBLAS_DIR})

find_path(STB_INCLUDE stb/stb_image.h PATHS /usr/include)
if(NOT STB_INCLUDE)
  dearest_missing("stb_image" "libstb-dev")
endif()

find_package(Boost 1.74 QUIET COMPONENTS program_options)
if(NOT Boost_FOUND)
  dearest_missing("Boost.Program_options" "libboost-program-options-dev")
endif()

if(DEAREST_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    dearest_missing("GoogleTest" "libgtest-dev")
  endif()
endif()
