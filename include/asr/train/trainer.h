// asr_ddp's engine: one Trainer per rank. It owns the data, the model, the
// optimizer and the run directory, and talks to the other ranks only through
// the Communicator it is given.
#pragma once
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "asr/train/config.h"
#include "asr/train/evaluator.h"

namespace asr {

namespace distributed {
class Communicator;
}

class Trainer {
 public:
  // Opens the datasets, builds the model on `device` (the rank's, from
  // distributed::join_world) and the optimizer, and makes every rank start
  // from rank 0's parameters.
  Trainer(TrainConfig config, distributed::Communicator& comm, c10::Device device = c10::Device(c10::kCPU));
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Continues from a checkpoint: "auto" = the newest valid one in the run
  // directory (a fresh start if there is none; choose_resume_checkpoint()
  // says what happens when all are unreadable), or a path. Rank 0 reads it
  // and broadcasts the bytes. Returns whether a checkpoint was restored.
  bool resume(const std::string& what, bool allow_fresh_start = false);

  // Trains to train.max_steps (or max_epochs). Returns kExitOk when done, or
  // kExitPreempted after a signal made every rank checkpoint and stop.
  int train();

  // Evaluates the current parameters on the validation split and logs it.
  EvalResult evaluate();

  int64_t step() const;

 private:
  struct Impl;  // everything else lives in trainer.cpp
  std::unique_ptr<Impl> s_;
};

}  // namespace asr
