// Fixture: model may include core (allowed), so this file is no violation.
#include "asr/core/error.h"
