# Every third-party dependency is found here, once. All come from Debian
# packages (scripts/install-deps.sh) except LibTorch on GPU machines, where
# Torch_DIR points at the PyTorch wheel's cmake prefix.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
pkg_check_modules(SOXR REQUIRED IMPORTED_TARGET soxr)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
# ASR_HDF5_ROOT: a Debian libhdf5-dev unpacked somewhere else than / (the
# GPU machine's carried packages, bench/gpu/prepare.sh).
set(ASR_HDF5_ROOT "" CACHE PATH "prefix of an unpacked Debian libhdf5-dev (instead of FindHDF5)")
if(ASR_HDF5_ROOT)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE "${ASR_HDF5_ROOT}/include/hdf5/serial")
  target_link_libraries(hdf5::hdf5 INTERFACE "${ASR_HDF5_ROOT}/lib/x86_64-linux-gnu/hdf5/serial/libhdf5.so")
else()
  find_package(HDF5 REQUIRED COMPONENTS C)
endif()
if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_DEFINITIONS})
endif()
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
# MPI is only the mpirun launcher's rendezvous; a build without it (the GPU
# check's) launches ranks with torchrun-style variables or srun.
option(ASR_WITH_MPI "support launching under mpirun" ON)
if(ASR_WITH_MPI)
  find_package(MPI REQUIRED COMPONENTS CXX)
  add_library(asr_mpi INTERFACE)
  target_link_libraries(asr_mpi INTERFACE MPI::MPI_CXX)
  target_compile_definitions(asr_mpi INTERFACE ASR_WITH_MPI=1)
else()
  add_library(asr_mpi INTERFACE)
endif()

find_package(Torch REQUIRED)
# The C++ standard follows the LibTorch in use: its headers need C++17, and
# newer ones C++20 (they stop with an #error under C++17; public reports put
# that between 2.12 and 2.14). Rather than trust a version table, the headers
# are asked: one that tests __cplusplus against 202002L decides it.
# docs/building.md.
set(_asr_cxx_standard 17)
if(Torch_VERSION VERSION_GREATER_EQUAL 2.12)
  set(_asr_cxx_standard 20)
else()
  foreach(_dir IN LISTS TORCH_INCLUDE_DIRS)
    foreach(_sub c10/macros c10/util ATen torch)
      if(IS_DIRECTORY "${_dir}/${_sub}" AND _asr_cxx_standard EQUAL 17)
        execute_process(COMMAND grep -rlqE "__cplusplus *< *202002L" "${_dir}/${_sub}"
                        RESULT_VARIABLE _asr_grep OUTPUT_QUIET ERROR_QUIET)
        if(_asr_grep EQUAL 0)
          set(_asr_cxx_standard 20)
        endif()
      endif()
    endforeach()
  endforeach()
endif()
set(CMAKE_CXX_STANDARD ${_asr_cxx_standard})
set(CMAKE_CXX_STANDARD_REQUIRED ON)
message(STATUS "LibTorch ${Torch_VERSION}: C++${CMAKE_CXX_STANDARD}")

# Torch's exported flags are a plain variable, not a target: wrap them once.
add_library(asr_torch INTERFACE)
target_link_libraries(asr_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(asr_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_asr_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(asr_torch INTERFACE ${_asr_torch_flags})

# The PyTorch wheel ships its own fmt headers inside its include folder,
# which would shadow Debian's fmt (that spdlog is built against). A folder of
# our own that links to Debian's fmt comes first (-I before -isystem).
foreach(_dir ${TORCH_INCLUDE_DIRS})
  if(EXISTS "${_dir}/fmt/format.h" AND NOT _dir STREQUAL "/usr/include")
    get_target_property(_fmt_dirs fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
    foreach(_fmt ${_fmt_dirs})
      if(EXISTS "${_fmt}/fmt/format.h")
        file(MAKE_DIRECTORY "${PROJECT_BINARY_DIR}/fmt-first")
        file(CREATE_LINK "${_fmt}/fmt" "${PROJECT_BINARY_DIR}/fmt-first/fmt" SYMBOLIC)
        target_include_directories(asr_torch BEFORE INTERFACE "${PROJECT_BINARY_DIR}/fmt-first")
        message(STATUS "LibTorch bundles fmt headers (${_dir}/fmt): Debian's fmt (${_fmt}) goes first")
        break()
      endif()
    endforeach()
    break()
  endif()
endforeach()

# Gloo: its headers are in Debian's libgloo-dev; a LibTorch without them
# (some wheels) builds without the Gloo backend unless ASR_GLOO_INCLUDE_DIR
# points at headers of the same Gloo (bench/gpu/README.md).
find_path(ASR_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS} /usr/include)
if(ASR_GLOO_INCLUDE_DIR)
  target_include_directories(asr_torch SYSTEM INTERFACE "${ASR_GLOO_INCLUDE_DIR}")
  target_compile_definitions(asr_torch INTERFACE ASR_WITH_GLOO=1)
else()
  message(WARNING "no Gloo headers (gloo/algorithm.h) found: building without the Gloo backend; set "
                  "ASR_GLOO_INCLUDE_DIR to add it")
endif()

if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  target_compile_definitions(asr_torch INTERFACE ASR_WITH_CUDA=1)
  # nccl.h: the CUDA toolkit's, Debian's libnccl-dev, or the nvidia-nccl pip
  # package beside the PyTorch wheel (site-packages/nvidia/nccl/include).
  # The pip package's folder name has varied (nvidia/nccl, nvidia/cu13...).
  get_filename_component(_site "${Torch_DIR}/../../../.." ABSOLUTE)
  file(GLOB _asr_pip_nccl LIST_DIRECTORIES true "${_site}/nvidia/*/include")
  find_path(ASR_NCCL_INCLUDE_DIR nccl.h
            HINTS $ENV{NCCL_HOME}/include $ENV{CUDA_HOME}/include ${_asr_pip_nccl}
                  ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
  if(NOT ASR_NCCL_INCLUDE_DIR)
    message(FATAL_ERROR "CUDA LibTorch but no nccl.h: set NCCL_HOME or ASR_NCCL_INCLUDE_DIR (docs/building.md)")
  endif()
  target_include_directories(asr_torch SYSTEM INTERFACE "${ASR_NCCL_INCLUDE_DIR}")
  message(STATUS "CUDA LibTorch: NCCL headers from ${ASR_NCCL_INCLUDE_DIR}")
endif()
