// Communicator over a concrete c10d backend class (ProcessGroupGloo or
// ProcessGroupNCCL). Both kept the same collective signatures from LibTorch
// 1.13 to 2.x, while ProcessGroup itself became a wrapper in 2.0; holding the
// backend class directly is what lets one source build against both.
//
// c10d's vector-of-tensors means "one tensor per local device", not a list of
// different tensors, so a list is packed into one flat buffer per dtype here.
#pragma once
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "asr/distributed/communicator.h"
#include "asr/distributed/flight_recorder.h"
#include "collective_check.h"
#include "watchdog.h"

namespace asr::distributed {

// What a process group leaves behind: the rendezvous store and, when MPI was
// initialised for the bootstrap, the obligation to finalise it. Both are
// skipped once a collective failed: finalising against a dead peer can block.
struct Session {
  c10::intrusive_ptr<c10d::Store> store;
  bool mpi_initialized = false;
  std::atomic<bool> broken{false};
  int rank = 0;
  std::chrono::milliseconds exit_limit{30000};
  ~Session();
};

struct GroupSpec {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  bool all_on_one_host = true;
  std::chrono::milliseconds timeout{300000};          // each collective
  std::chrono::milliseconds connect_timeout{300000};  // the rendezvous
  std::chrono::milliseconds watchdog_margin{30000};
  std::string where;  // the rendezvous, for messages: "at HOST:PORT"
  std::string peers;  // the other ranks' addresses, for messages: "rank 1 at 10.0.0.2" (small Gloo worlds)
  std::shared_ptr<Session> session;
};

// `name` prefixes the group's keys in the store, so several groups share one
// rendezvous (Communicator::new_group).
std::unique_ptr<Communicator> make_gloo_communicator(const GroupSpec& spec, const std::string& name = "main");
#ifdef ASR_WITH_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(const GroupSpec& spec, c10::Device device,
                                                     const std::string& name = "main");
#endif

template <class Backend>
class C10dCommunicator : public Communicator {
 public:
  using Clock = std::chrono::steady_clock;

  using Factory = std::function<std::unique_ptr<Communicator>(const std::string& name)>;

  C10dCommunicator(c10::intrusive_ptr<Backend> pg, GroupSpec spec, std::string name, c10::Device device,
                   Factory make_group)
      : pg_(std::move(pg)), spec_(std::move(spec)), name_(std::move(name)), device_(device),
        make_group_(std::move(make_group)) {}

  ~C10dCommunicator() override {
    // A backend whose peers are gone may block in its destructor (joining
    // worker threads stuck on a socket); leak it instead.
    if (broken())
      (void)pg_.release();
    else
      pg_.reset();  // before the session, which may finalise MPI
  }

  int rank() const override { return spec_.rank; }
  int world_size() const override { return spec_.world_size; }
  int local_rank() const override { return spec_.local_rank; }
  std::string backend_name() const override { return name_; }
  c10::Device device() const override { return device_; }
  std::chrono::milliseconds timeout() const override { return spec_.timeout; }
  bool supports_bfloat16() const override { return bfloat16_; }
  void set_supports_bfloat16(bool value) { bfloat16_ = value; }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    for_each_dtype_group(tensors, "all_reduce", [&](std::vector<at::Tensor>& flat) {
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      opts.timeout = spec_.timeout;
      return pg_->allreduce(flat, opts);
    });
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    if (root < 0 || root >= world_size())
      throw CollectiveError(fmt::format("rank {}: broadcast from root {} but the world has {} ranks", rank(),
                                        root, world_size()));
    for_each_dtype_group(tensors, "broadcast", [&](std::vector<at::Tensor>& flat) {
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      opts.rootTensor = 0;
      opts.timeout = spec_.timeout;
      return pg_->broadcast(flat, opts);
    });
  }

  std::vector<at::Tensor> all_gather(const at::Tensor& tensor) override {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> input{tensor.detach().to(device_).contiguous()};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < world_size(); ++r) output[0].push_back(at::empty_like(input[0]));
    run("all_gather", input[0], [&] {
      c10d::AllgatherOptions opts;
      opts.timeout = spec_.timeout;
      return pg_->allgather(output, input, opts);
    });
    std::vector<at::Tensor> result;
    for (auto& t : output[0]) result.push_back(t.to(tensor.device()));
    return result;
  }

  void barrier() override {
    if (device_.is_cuda()) {
      // c10d's NCCL barrier guesses a device from the rank (and can pick
      // another rank's GPU); a one-element sum on our own device, waited for
      // on the host, is a barrier without guessing.
      std::vector<at::Tensor> one{at::zeros({1}, at::TensorOptions().device(device_))};
      all_reduce_sum(one);
      read_to_host(one[0], "barrier");
      return;
    }
    run("barrier", at::Tensor(), [&] {
      c10d::BarrierOptions opts;
      opts.timeout = spec_.timeout;
      return pg_->barrier(opts);
    });
  }

  std::unique_ptr<Communicator> new_group(const std::string& name) override {
    auto group = make_group_(name);
    if (auto* same = dynamic_cast<C10dCommunicator*>(group.get())) {
      same->group_ = name;  // its own sequence numbers in the flight recorder
      same->check_ = check_;
    }
    return group;
  }

  void check_collectives(bool on) override { check_ = on; }

  at::Tensor read_to_host(const at::Tensor& tensor, const std::string& what) override {
    check_usable(what);
    ++host_reads_;
    WatchdogGuard guard("read of " + what, rank(), spec_.timeout + spec_.watchdog_margin);
    return tensor.to(at::kCPU);
  }

  std::unique_ptr<PendingReduce> all_reduce_sum_async(std::vector<at::Tensor>& tensors) override {
    // Only a single dense tensor on our device can be reduced in place
    // asynchronously; anything else takes the blocking path.
    if (tensors.size() != 1 || !tensors[0].is_contiguous() || tensors[0].device() != device_)
      return Communicator::all_reduce_sum_async(tensors);
    check_usable("all_reduce (async)");
    const uint32_t slot = issue("all_reduce (async)", tensors[0]);
    auto pending = std::make_unique<Pending>(this, Clock::now(), slot);
    try {
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      opts.timeout = spec_.timeout;
      pending->work = pg_->allreduce(tensors, opts);
    } catch (const std::exception& e) {
      fail("all_reduce (async launch)", e.what(), slot);
    }
    return pending;
  }

 private:
  class Pending : public PendingReduce {
   public:
    Pending(C10dCommunicator* comm, Clock::time_point start, uint32_t slot)
        : comm(comm), start(start), slot(slot), guard("all_reduce (bucket)", comm->rank(), comm->spec_.timeout + comm->spec_.watchdog_margin) {}
    void wait() override {
      if (done) return;
      comm->wait_work(work, "all_reduce (bucket)", start, slot);
      flight_complete(slot, FlightState::done);
      done = true;
    }
    C10dCommunicator* comm;
    Clock::time_point start;
    uint32_t slot;
    WatchdogGuard guard;
    c10::intrusive_ptr<c10d::Work> work;
    bool done = false;
  };

  bool broken() const { return spec_.session && spec_.session->broken.load(); }

  void check_usable(const std::string& op) {
    if (broken())
      throw CollectiveError(fmt::format("rank {}: {} refused: an earlier collective on this process group failed",
                                        rank(), op));
  }

  static constexpr uint32_t kNoSlot = ~0u;

  [[noreturn]] void fail(const std::string& op, const std::string& why, uint32_t slot = kNoSlot) {
    if (slot != kNoSlot) flight_complete(slot, FlightState::timed_out);
    const std::string message = fmt::format(
        "rank {}: collective '{}' ({}, {} ranks, timeout {:.1f} s) failed: {} -- a peer rank has probably died "
        "or hung{}; see the other ranks' logs",
        rank(), op, name_, world_size(), spec_.timeout.count() / 1000.0, why,
        spec_.peers.empty() ? "" : ", or the network to it is down (" + spec_.peers + ")");
    give_up(op, message);
  }

  // The group is unusable from here on: later collectives are refused, the
  // process must exit soon, and the flight recorder says what each rank did.
  [[noreturn]] void give_up(const std::string& op, const std::string& message) {
    if (spec_.session) spec_.session->broken = true;
    watchdog_arm_exit_deadline("failed " + op, rank(), spec_.watchdog_margin);
    const bool dumped = flight_dump(message);
    throw CollectiveError(dumped ? message + " (flight recorder: " + flight_dump_path() + ")" : message);
  }

  // Records the next collective of this group in the flight recorder; with
  // dist.check_collectives the ranks first agree on what it is.
  uint32_t issue(const char* op, const at::Tensor& payload) {
    const FlightCollective c{group_.c_str(), ++seq_, op, flight_dtype_name(payload),
                             payload.defined() ? payload.numel() : 0};
    const uint32_t slot = flight_issue(c);  // first, so a mismatch is in the dump
    if (check_) check_agreement(c, payload, slot);
    return slot;
  }

  void check_agreement(const FlightCollective& c, const at::Tensor& payload, uint32_t slot) {
    const std::string what = std::string("fingerprint check before ") + c.op;
    std::vector<at::Tensor> mine{collective_fingerprint(c, payload).to(device_)};
    std::vector<std::vector<at::Tensor>> all(1);
    for (int r = 0; r < world_size(); ++r) all[0].push_back(at::empty_like(mine[0]));
    const auto start = Clock::now();
    c10::intrusive_ptr<c10d::Work> work;
    try {
      c10d::AllgatherOptions opts;
      opts.timeout = spec_.timeout;
      work = pg_->allgather(all, mine, opts);
    } catch (const std::exception& e) {
      fail(what, e.what(), slot);
    }
    wait_work(work, what, start, slot);
    const std::string mismatch = fingerprint_mismatch(rank(), all[0]);
    if (mismatch.empty()) return;
    flight_complete(slot, FlightState::timed_out);
    give_up(what, fmt::format("rank {}: dist.check_collectives: the ranks are out of step ({} group): {} -- they took "
                          "different code paths (a rank skipped or added a collective); without the check this "
                          "would hang or sum unrelated buffers",
                          rank(), group_, mismatch));
  }

  void wait_work(const c10::intrusive_ptr<c10d::Work>& work, const std::string& op, Clock::time_point start,
                 uint32_t slot = kNoSlot) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(spec_.timeout - (Clock::now() - start));
    if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
    bool ok = false;
    try {
      ok = work->wait(left);
    } catch (const std::exception& e) {
      std::string what = e.what();
      // c10 messages carry a long backtrace after the first line.
      if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
      fail(op, what, slot);
    }
    if (!ok) fail(op, "the operation was aborted", slot);
  }

  template <class Launch>
  void run(const std::string& op, const at::Tensor& payload, Launch&& launch) {
    check_usable(op);
    const uint32_t slot = issue(op.c_str(), payload);
    const auto start = Clock::now();
    WatchdogGuard guard(op, rank(), spec_.timeout + spec_.watchdog_margin);
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = launch();
    } catch (const std::exception& e) {
      fail(op, e.what(), slot);
    }
    wait_work(work, op, start, slot);
    flight_complete(slot, FlightState::done);
  }

  template <class Launch>
  void for_each_dtype_group(std::vector<at::Tensor>& tensors, const std::string& op, Launch&& launch) {
    at::NoGradGuard no_grad;
    std::vector<bool> done(tensors.size(), false);
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (done[i]) continue;
      std::vector<size_t> group;
      for (size_t j = i; j < tensors.size(); ++j)
        if (!done[j] && tensors[j].scalar_type() == tensors[i].scalar_type()) {
          group.push_back(j);
          done[j] = true;
        }
      const auto& first = tensors[group[0]];
      if (group.size() == 1 && first.is_contiguous() && first.device() == device_) {
        std::vector<at::Tensor> one{first};
        run(op, one[0], [&] { return launch(one); });
        continue;
      }
      std::vector<at::Tensor> pieces;
      for (size_t j : group) pieces.push_back(tensors[j].detach().reshape({-1}).to(device_));
      std::vector<at::Tensor> flat{at::cat(pieces)};
      run(op, flat[0], [&] { return launch(flat); });
      int64_t offset = 0;
      for (size_t j : group) {
        auto& t = tensors[j];
        t.detach().copy_(flat[0].narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  }

  c10::intrusive_ptr<Backend> pg_;
  GroupSpec spec_;
  std::string name_;
  c10::Device device_;
  Factory make_group_;
  bool bfloat16_ = true;
  std::string group_ = "main";
  std::atomic<uint64_t> seq_{0};
  bool check_ = false;  // dist.check_collectives
};

}  // namespace asr::distributed
