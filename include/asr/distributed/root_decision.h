// Work that only rank 0 does (reading a checkpoint directory, locking the run
// directory) but whose failure must end every rank at once: without this, the
// other ranks would wait in their next collective until its timeout, and the
// real reason would only be on rank 0's stderr.
#pragma once
#include <functional>

#include "asr/distributed/communicator.h"

namespace asr::distributed {

// Runs `work` on rank 0 and shares its outcome: when it throws, every rank
// throws an error of the same kind (usage, data, or unexpected) with rank 0's
// message; otherwise every rank returns. One broadcast, on every rank.
void run_on_root_and_share_errors(Communicator& comm, const std::function<void()>& work);

}  // namespace asr::distributed
