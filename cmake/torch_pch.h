// Precompiled for every target that uses LibTorch; see AsrModules.cmake.
#pragma once
#include <torch/torch.h>
