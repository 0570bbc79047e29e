// Fixture for the module_layers_detects_violation test: a core source that
// includes a model header, which the layer check must reject. Never compiled.
#include "asr/core/error.h"
#include "asr/model/asr_model.h"
