#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "../../src/distributed/watchdog.h"
#include "asr/distributed/bootstrap.h"
#include "asr/distributed/communicator.h"
#include "asr/distributed/flight_recorder.h"
#include "asr/distributed/grad_sync.h"
#include "asr/distributed/signals.h"
#include "asr/distributed/world.h"

namespace {

using namespace asr::distributed;

EnvLookup env_of(const std::map<std::string, std::string>& m) {
  return [m](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Runs `body(comm)` on `world` threads, each a Gloo rank of one group.
template <class Body>
void run_ranks(int world, double timeout_s, Body body, double margin_s = 600) {
  const int port = free_port();
  std::vector<std::future<void>> ranks;
  for (int r = 0; r < world; ++r)
    ranks.push_back(std::async(std::launch::async, [=] {
      DistOptions o;
      o.backend = "gloo";
      o.timeout_seconds = timeout_s;
      o.watchdog_margin_seconds = margin_s;
      LaunchInfo info;
      info.launcher = Launcher::torchrun;
      info.rank = r;
      info.world_size = world;
      info.local_rank = r;
      info.local_world_size = world;
      info.master_addr = "127.0.0.1";
      info.master_port = port;
      auto comm = make_communicator(o, info);
      body(*comm);
    }));
  for (auto& f : ranks) f.get();
}

TEST(LocalCommunicator, CollectivesAreIdentities) {
  auto comm = make_local_communicator();
  EXPECT_EQ(comm->world_size(), 1);
  EXPECT_TRUE(comm->is_root());
  EXPECT_DOUBLE_EQ(comm->all_reduce_sum(2.5), 2.5);
  EXPECT_EQ(comm->all_reduce_sum(std::vector<double>{1, 2, 3}), (std::vector<double>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(comm->all_reduce_max(-4.0), -4.0);
  EXPECT_TRUE(comm->any_rank(true));
  EXPECT_FALSE(comm->any_rank(false));
  std::string bytes("a\0b", 3);
  comm->broadcast_bytes(bytes);
  EXPECT_EQ(bytes, std::string("a\0b", 3));
  auto g = comm->all_gather(at::arange(4));
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(g[0].equal(at::arange(4)));
}

TEST(Bootstrap, DetectsTorchrun) {
  auto info = detect_launch(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                    {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(info.launcher, Launcher::torchrun);
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 4);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.master_addr, "n1");
  EXPECT_EQ(info.master_port, 1234);
}

TEST(Bootstrap, DetectsTorchrunAgentStore) {
  // What torchrun's static rendezvous sets (local_elastic_agent.py).
  auto info = detect_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "1234"},
                                    {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(info.agent_store);
  EXPECT_EQ(info.store_prefix, "/worker/attempt_2");
  auto standalone = detect_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"},
                                          {"TORCHELASTIC_RESTART_COUNT", "0"}}));
  EXPECT_FALSE(standalone.agent_store);
  EXPECT_EQ(standalone.store_prefix, "");
}

TEST(Bootstrap, DetectsMpiAndSlurmAndSingle) {
  auto mpi = detect_launch(env_of({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "5"},
                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"SLURM_PROCID", "0"}}));
  EXPECT_EQ(mpi.launcher, Launcher::mpi);
  EXPECT_EQ(mpi.rank, 5);
  EXPECT_EQ(mpi.local_rank, 1);

  auto slurm = detect_launch(env_of({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "16"}, {"SLURM_STEP_NUM_TASKS", "8"},
                                     {"SLURM_LOCALID", "2"}, {"SLURM_STEP_NUM_NODES", "2"},
                                     {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"}, {"SLURM_JOB_ID", "777"},
                                     {"SLURM_STEP_NODELIST", "gpu[07-08]"}}));
  EXPECT_EQ(slurm.launcher, Launcher::slurm);
  EXPECT_EQ(slurm.rank, 6);
  EXPECT_EQ(slurm.world_size, 8);  // the step's tasks, not the allocation's
  EXPECT_EQ(slurm.local_rank, 2);
  EXPECT_EQ(slurm.local_world_size, 4);
  EXPECT_EQ(slurm.master_addr, "gpu07");
  EXPECT_GE(slurm.master_port, 20000);
  auto same_job = detect_launch(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_JOB_ID", "777"},
                                        {"SLURM_NODELIST", "a,b"}, {"SLURM_NNODES", "2"}}));
  EXPECT_EQ(same_job.master_port, slurm.master_port);  // every task derives the same port

  auto single = detect_launch(env_of({}));
  EXPECT_EQ(single.launcher, Launcher::single);
  EXPECT_EQ(single.world_size, 1);
}

TEST(Bootstrap, RejectsInconsistentVariables) {
  EXPECT_THROW(detect_launch(env_of({{"RANK", "4"}, {"WORLD_SIZE", "4"}})), asr::Error);
  EXPECT_THROW(detect_launch(env_of({{"RANK", "x"}, {"WORLD_SIZE", "4"}})), asr::Error);
  DistOptions bad;
  bad.backend = "mpi";
  EXPECT_THROW(make_communicator(bad, LaunchInfo{}), asr::Error);
  DistOptions nccl;
  nccl.backend = "nccl";
#ifndef ASR_WITH_CUDA
  EXPECT_THROW(make_communicator(nccl, LaunchInfo{}), asr::Error);
#endif
}

TEST(Bootstrap, FirstHostOfNodelist) {
  EXPECT_EQ(first_host_of_nodelist("node1"), "node1");
  EXPECT_EQ(first_host_of_nodelist("a1,b2"), "a1");
  EXPECT_EQ(first_host_of_nodelist("gpu[003-005,9],cpu1"), "gpu003");
  EXPECT_EQ(first_host_of_nodelist("rack[2,4]-n[1-3]"), "rack2-n[1-3]");
}

TEST(Buckets, ReverseOrderSmallFirstBucketAndDtypeSplit) {
  // 1 MB = 262144 floats.
  std::vector<at::Tensor> p = {at::zeros({300000}), at::zeros({100000}), at::zeros({10}, at::kDouble),
                               at::zeros({200000}), at::zeros({200000})};
  auto b = assign_buckets(p, 1.0, 2.0);
  // first bucket (<= 1 MB): param 4 alone (4+3 would be 1.6 MB)
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], (std::vector<size_t>{4}));
  EXPECT_EQ(b[1], (std::vector<size_t>{3}));  // dtype changes at 2
  EXPECT_EQ(b[2], (std::vector<size_t>{2}));
  EXPECT_EQ(b[3], (std::vector<size_t>{1, 0}));  // 1.6 MB <= 2 MB
}

// Pretends to be one of two identical ranks: a sum doubles every value. It
// records what was reduced and whether backward was still running.
class MirrorCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 0; }
  std::string backend_name() const override { return "mirror"; }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors) {
      dtypes.push_back(t.scalar_type());
      sizes.push_back(t.numel());
      phases.push_back(phase);
      t.mul_(2);
    }
  }
  void broadcast(std::vector<at::Tensor>&, int) override {}
  std::vector<at::Tensor> all_gather(const at::Tensor& t) override { return {t.clone(), t.clone()}; }
  void barrier() override {}
  std::unique_ptr<Communicator> new_group(const std::string&) override { return make_local_communicator(); }
  std::vector<at::ScalarType> dtypes;
  std::vector<int64_t> sizes;
  std::vector<int> phases;
  int phase = 0;
};

struct Toy {
  std::vector<at::Tensor> params;
  Toy() {
    params = {at::randn({3}), at::randn({16, 4}), at::randn({16}), at::randn({2, 16})};
    for (auto& p : params) p.set_requires_grad(true);
  }
  // params[0] is used only when asked.
  at::Tensor loss(const at::Tensor& x, bool use_first) {
    auto h = at::tanh(at::matmul(x, params[1].t()) + params[2]);
    auto l = at::matmul(h, params[3].t()).pow(2).sum();
    if (use_first) l = l + params[0].sum();
    return l;
  }
  // Fresh tensors holding `other`'s values (a replica on another rank).
  static Toy copy_of(const Toy& other) {
    Toy t;
    for (size_t i = 0; i < t.params.size(); ++i) t.params[i].detach().copy_(other.params[i].detach());
    return t;
  }
};

// ~100-byte buckets: one parameter per bucket.
GradSyncOptions tiny_buckets() {
  GradSyncOptions o;
  o.first_bucket_mb = 1e-4;
  o.bucket_mb = 1e-4;
  return o;
}

TEST(GradientSynchronizer, OverlapsBucketsWithBackwardInOrderAndScales) {
  at::manual_seed(0);
  Toy toy;
  auto x = at::randn({5, 4});
  // Reference gradients without synchronisation.
  toy.loss(x, true).backward();
  std::vector<at::Tensor> expected;
  for (auto& p : toy.params) {
    expected.push_back(p.grad().clone());
    p.mutable_grad() = at::Tensor();
  }
  MirrorCommunicator comm;
  GradSyncOptions o;
  o.first_bucket_mb = 1e-4;  // ~100 bytes: one parameter per bucket
  o.bucket_mb = 1e-4;
  GradientSynchronizer sync(comm, toy.params, o);
  ASSERT_EQ(sync.buckets().size(), 4u);
  sync.set_scale(0.5);
  sync.begin_step(true);
  comm.phase = 1;  // backward
  toy.loss(x, true).backward();
  comm.phase = 2;  // finish_step
  sync.finish_step();
  // Every bucket was launched during backward, largest index last.
  ASSERT_EQ(comm.phases.size(), 4u);
  for (int ph : comm.phases) EXPECT_EQ(ph, 1);
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{32, 16, 64, 3}));  // reverse parameter order
  EXPECT_EQ(sync.last_timings().buckets_in_backward, 4);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(toy.params[i].grad().allclose(expected[i])) << i;
}

TEST(GradientSynchronizer, AccumulatesWithoutTrafficAndZeroFillsUnused) {
  at::manual_seed(1);
  Toy toy;
  auto x1 = at::randn({3, 4}), x2 = at::randn({3, 4});
  toy.loss(x1, false).backward();
  toy.loss(x2, false).backward();
  std::vector<at::Tensor> expected;
  for (auto& p : toy.params) {
    expected.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    p.mutable_grad() = at::Tensor();
  }
  MirrorCommunicator comm;
  GradientSynchronizer sync(comm, toy.params);
  sync.begin_step(false);
  toy.loss(x1, false).backward();
  sync.finish_step();  // a micro-batch: no-op
  EXPECT_TRUE(comm.sizes.empty());
  sync.begin_step(true);
  toy.loss(x2, false).backward();
  EXPECT_TRUE(comm.sizes.empty()) << "params[0] has no gradient, so the only bucket cannot launch in backward";
  sync.finish_step();
  ASSERT_EQ(comm.sizes.size(), 1u);
  ASSERT_TRUE(toy.params[0].grad().defined());
  EXPECT_EQ(toy.params[0].grad().abs().sum().item<double>(), 0.0);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_TRUE(toy.params[i].grad().allclose(expected[i] * 2)) << i;  // mirror sum, scale 1
}

TEST(GradientSynchronizer, Bf16CompressionSendsHalfTheBytes) {
  at::manual_seed(2);
  Toy toy;
  MirrorCommunicator comm;
  GradSyncOptions o;
  o.bf16_compress = true;
  GradientSynchronizer sync(comm, toy.params, o);
  sync.begin_step(true);
  toy.loss(at::randn({4, 4}), true).backward();
  std::vector<at::Tensor> local;
  for (auto& p : toy.params) local.push_back(p.grad().clone());
  sync.finish_step();
  ASSERT_FALSE(comm.dtypes.empty());
  for (auto d : comm.dtypes) EXPECT_EQ(d, at::kBFloat16);
  for (size_t i = 0; i < local.size(); ++i)
    EXPECT_TRUE(toy.params[i].grad().allclose(local[i] * 2, 1e-2, 1e-2)) << i;
}

TEST(GradientSynchronizer, RejectsMisuse) {
  Toy toy;
  MirrorCommunicator comm;
  GradientSynchronizer sync(comm, toy.params);
  sync.begin_step(true);
  EXPECT_THROW(sync.begin_step(true), asr::Error);
  EXPECT_THROW(GradientSynchronizer(comm, {at::zeros({2})}), asr::Error);
}

TEST(Gloo, CollectivesAcrossThreeRanks) {
  run_ranks(3, 20, [](Communicator& comm) {
    const int r = comm.rank();
    EXPECT_EQ(comm.backend_name(), "gloo");
    std::vector<at::Tensor> t{at::full({2, 3}, double(r + 1), at::kDouble), at::full({5}, r, at::kLong),
                              at::full({4}, float(r), at::kFloat).t()};
    comm.all_reduce_sum(t);
    EXPECT_TRUE(t[0].equal(at::full({2, 3}, 6.0, at::kDouble)));
    EXPECT_TRUE(t[1].equal(at::full({5}, 3, at::kLong)));
    EXPECT_TRUE(t[2].equal(at::full({4}, 3.f)));
    EXPECT_DOUBLE_EQ(comm.all_reduce_max(double(r) * 10), 20.0);
    EXPECT_TRUE(comm.any_rank(r == 2));
    EXPECT_FALSE(comm.any_rank(false));
    std::string bytes = r == 1 ? std::string("from one") : std::string("x");
    comm.broadcast_bytes(bytes, 1);
    EXPECT_EQ(bytes, "from one");
    auto g = comm.all_gather(at::full({2}, r, at::kInt));
    ASSERT_EQ(g.size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_TRUE(g[size_t(k)].equal(at::full({2}, k, at::kInt)));
    comm.barrier();
  });
}

TEST(Gloo, BroadcastParametersChecksShapesAndCopiesValues) {
  run_ranks(2, 20, [](Communicator& comm) {
    std::vector<at::Tensor> p{at::full({3, 2}, float(comm.rank())), at::full({4}, double(comm.rank() + 7))};
    broadcast_parameters_and_buffers(comm, p);
    EXPECT_TRUE(p[0].equal(at::zeros({3, 2})));
    EXPECT_TRUE(p[1].equal(at::full({4}, 7.0, at::kDouble)));
    check_parameters_agree(comm, p);

    std::vector<at::Tensor> q{at::zeros({3, 2}), at::zeros({comm.rank() == 1 ? 5 : 4})};
    try {
      broadcast_parameters_and_buffers(comm, q);
      ADD_FAILURE() << "mismatched shapes accepted";
    } catch (const asr::Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank 1: tensor 1 is [5]"), std::string::npos) << e.what();
    }
    if (comm.rank() == 1) p[0].view(-1)[3].add_(1e-3);
    try {
      check_parameters_agree(comm, p);
      ADD_FAILURE() << "diverged parameters accepted";
    } catch (const asr::Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank 1 ("), std::string::npos) << e.what();
    }
  });
}

TEST(Gloo, TimeoutThrowsCollectiveErrorNamingRankOpAndTimeout) {
  run_ranks(2, 1.0, [](Communicator& comm) {
    if (comm.rank() == 1) {
      std::this_thread::sleep_for(std::chrono::seconds(3));  // alive, but never joins
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<at::Tensor> t{at::ones({8})};
    try {
      comm.all_reduce_sum(t);
      ADD_FAILURE() << "no timeout";
    } catch (const CollectiveError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("rank 0"), std::string::npos) << what;
      EXPECT_NE(what.find("all_reduce"), std::string::npos) << what;
      EXPECT_NE(what.find("timeout 1.0 s"), std::string::npos) << what;
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(took, 2.5);
    EXPECT_THROW(comm.barrier(), CollectiveError);  // a broken group refuses further work
  });
}

TEST(Gloo, GradientSynchronizerMatchesSingleProcess) {
  at::manual_seed(3);
  auto x = at::randn({6, 4});
  Toy reference;
  reference.loss(x, true).backward();
  std::vector<at::Tensor> init, expected;
  for (auto& p : reference.params) {
    init.push_back(p.detach().clone());
    expected.push_back(p.grad().clone() / 6);
  }
  run_ranks(2, 20, [&](Communicator& comm) {
    Toy toy;
    for (size_t i = 0; i < init.size(); ++i) toy.params[i].detach().copy_(init[i]);
    GradSyncOptions o;
    o.first_bucket_mb = 1e-4;
    o.bucket_mb = 1e-4;
    GradientSynchronizer sync(comm, toy.params, o);
    sync.set_scale(1.0 / 6);
    sync.begin_step(true);
    // Rank 0 takes rows 0..2 with the extra parameter, rank 1 rows 3..5 without it.
    toy.loss(x.narrow(0, 3 * comm.rank(), 3), comm.rank() == 0).backward();
    sync.finish_step();
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_TRUE(toy.params[i].grad().allclose(expected[i], 1e-5, 1e-7)) << "rank " << comm.rank() << " param " << i;
  });
}

TEST(Gloo, OneRankGroupOverlapsBackwardIntoBucketViews) {
  // A one-rank group of a real backend still runs the asynchronous bucket
  // path (on one GPU that is NCCL), and the gradients live in the buckets.
  at::manual_seed(4);
  auto x = at::randn({6, 4});
  Toy reference;
  reference.loss(x, true).backward();
  run_ranks(1, 20, [&](Communicator& comm) {
    Toy toy = Toy::copy_of(reference);
    GradientSynchronizer sync(comm, toy.params, tiny_buckets());
    ASSERT_TRUE(sync.gradients_are_bucket_views());
    std::vector<const void*> storage;
    for (auto& p : toy.params) storage.push_back(p.grad().data_ptr());
    for (int step = 0; step < 2; ++step) {
      sync.begin_step(true);
      toy.loss(x, true).backward();
      sync.finish_step();
      EXPECT_GT(sync.last_timings().buckets_in_backward, 0) << "no bucket launched during backward";
      for (size_t i = 0; i < toy.params.size(); ++i) {
        EXPECT_TRUE(toy.params[i].grad().allclose(reference.params[i].grad(), 1e-6, 1e-7)) << i;
        // Backward accumulated into the bucket itself: no copy in or out.
        EXPECT_EQ(toy.params[i].grad().data_ptr(), storage[i]) << i;
      }
      sync.zero_grad();
      for (auto& p : toy.params) EXPECT_EQ(p.grad().abs().sum().item<double>(), 0.0);
    }
  });
}

TEST(Gloo, DroppedStepJoinsTheBucketsWithZeros) {
  // Rank 1 "runs out of memory" before its backward: it still takes part in
  // every bucket, with zeros, and the sum is rank 0's gradient alone.
  at::manual_seed(5);
  auto x = at::randn({3, 4});
  Toy reference;
  reference.loss(x, true).backward();
  run_ranks(2, 20, [&](Communicator& comm) {
    Toy toy = Toy::copy_of(reference);
    GradientSynchronizer sync(comm, toy.params, tiny_buckets());
    sync.begin_step(true);
    if (comm.rank() == 0) {
      toy.loss(x, true).backward();
      sync.finish_step();
    } else {
      sync.finish_step_with_zeros();
    }
    for (size_t i = 0; i < toy.params.size(); ++i)
      EXPECT_TRUE(toy.params[i].grad().allclose(reference.params[i].grad(), 1e-6, 1e-7))
          << "rank " << comm.rank() << " param " << i;
  });
}

TEST(World, AgreesOnOneBackendOrNamesTheRanks) {
  auto report = [](int rank, const std::string& kind, const std::string& gpu, const std::string& backend = "auto") {
    DeviceReport r;
    r.rank = rank;
    r.kind = kind;
    r.identity = gpu;
    r.backend = backend;
    return r;
  };
  auto with = [](std::vector<DeviceReport> reports, const std::string& backend) {
    for (auto& r : reports) r.backend = backend;
    return reports;
  };
  auto decide = [&](const std::vector<DeviceReport>& reports, const std::string& backend) {
    return decide_world(with(reports, backend));
  };
  auto error_of = [&](const std::vector<DeviceReport>& reports, const std::string& backend) -> std::string {
    try {
      decide_world(backend.empty() ? reports : with(reports, backend));
    } catch (const asr::Error& e) {
      return e.what();
    }
    return "";
  };
  // Every rank on its own GPU: NCCL; all on CPUs: Gloo.
  EXPECT_EQ(decide({report(0, "cuda", "h/GPU-a"), report(1, "cuda", "h/GPU-b")}, "auto").backend, "nccl");
  EXPECT_EQ(decide({report(0, "cpu", "h/cpu"), report(1, "cpu", "h/cpu")}, "auto").backend, "gloo");
  EXPECT_EQ(decide({report(0, "cuda", "h/GPU-a"), report(1, "cuda", "h/GPU-b")}, "gloo").backend, "gloo");
  // Two ranks on one GPU: NCCL refuses that, so auto falls back to Gloo with a warning.
  auto shared = decide({report(0, "cuda", "h/GPU-a"), report(1, "cuda", "h/GPU-a")}, "auto");
  EXPECT_EQ(shared.backend, "gloo");
  EXPECT_NE(shared.warning.find("rank(s) 0-1 share a GPU"), std::string::npos) << shared.warning;
  auto msg = error_of({report(0, "cuda", "h/GPU-a"), report(1, "cuda", "h/GPU-a")}, "nccl");
  EXPECT_NE(msg.find("rank(s) 0-1 share a GPU"), std::string::npos) << msg;
  // A mixed world names both sides.
  msg = error_of({report(0, "cuda", "a/GPU-a"), report(1, "cpu", "b/cpu"), report(2, "cpu", "b/cpu"),
                  report(3, "cuda", "c/GPU-c")},
                 "auto");
  EXPECT_NE(msg.find("mixed world: rank(s) 0, 3 compute on CUDA, rank(s) 1-2 on the CPU"), std::string::npos) << msg;
  msg = error_of({report(0, "cpu", "a/cpu"), report(1, "cpu", "a/cpu")}, "nccl");
  EXPECT_NE(msg.find("dist.backend = \"nccl\""), std::string::npos) << msg;
  // Ranks configured differently.
  msg = error_of({report(0, "cpu", "a/cpu", "gloo"), report(1, "cpu", "a/cpu", "nccl")}, "");
  EXPECT_NE(msg.find("different dist.backend settings: rank(s) 0 \"gloo\", rank(s) 1 \"nccl\""), std::string::npos)
      << msg;
  // A rank that cannot take part says why, and every rank repeats it.
  auto bad = decode_report(1, encode_report(DeviceReport{1, "", "auto", "", "train.device = \"cuda\" but no GPU"}));
  msg = error_of({report(0, "cpu", "a/cpu"), bad}, "");
  EXPECT_NE(msg.find("rank(s) 1 cannot take part as configured; rank 1: train.device = \"cuda\" but no GPU"),
            std::string::npos)
      << msg;
  auto round_trip = decode_report(3, encode_report(report(3, "cuda", "host/GPU-x")));
  EXPECT_EQ(round_trip.kind, "cuda");
  EXPECT_EQ(round_trip.identity, "host/GPU-x");
  EXPECT_EQ(describe_ranks({5, 0, 1, 2, 7, 8}), "0-2, 5, 7-8");
}

TEST(Signals, FlagIsAgreedAndDescribed) {
  install_stop_signal_handlers();
  clear_stop_signal();
  auto comm = make_local_communicator();
  EXPECT_FALSE(stop_requested_anywhere(*comm));
  std::raise(SIGUSR1);
  EXPECT_EQ(local_stop_signal(), SIGUSR1);
  std::raise(SIGTERM);  // the first signal is the one reported
  auto stop = stop_requested_anywhere(*comm);
  EXPECT_TRUE(stop);
  EXPECT_EQ(stop.signal, SIGUSR1);
  EXPECT_EQ(stop.describe(), "SIGUSR1 on rank 0");
  clear_stop_signal();
  EXPECT_FALSE(stop_requested_anywhere(*comm));
}

TEST(Signals, AgreedAcrossGlooRanks) {
  install_stop_signal_handlers();
  clear_stop_signal();
  // Threads share the process flag, so the signal is seen by "rank 1" only
  // through the flag it raised before the agreement.
  run_ranks(2, 20, [](Communicator& comm) {
    comm.barrier();
    if (comm.rank() == 1) std::raise(SIGTERM);
    comm.barrier();
    auto stop = stop_requested_anywhere(comm);
    EXPECT_TRUE(stop);
    EXPECT_EQ(stop.signal, SIGTERM);
  });
  clear_stop_signal();
}

// Ranks [0, started) of a world of `world` join with a connect timeout of
// `connect_s`; returns each one's error message ("" when it joined).
std::vector<std::string> join_partial_world(int world, int started, double connect_s, const LaunchInfo& base) {
  std::vector<std::future<std::string>> ranks;
  for (int r = 0; r < started; ++r)
    ranks.push_back(std::async(std::launch::async, [=] {
      DistOptions o;
      o.backend = "gloo";
      o.timeout_seconds = 60;
      o.connect_timeout_seconds = connect_s;
      LaunchInfo info = base;
      info.rank = r;
      info.world_size = world;
      info.local_world_size = world;
      try {
        auto comm = make_communicator(o, info);
        comm->barrier();
        return std::string();
      } catch (const CollectiveError& e) {
        return std::string(e.what());
      }
    }));
  std::vector<std::string> out;
  for (auto& f : ranks) out.push_back(f.get());
  return out;
}

LaunchInfo loopback_launch(int port) {
  LaunchInfo info;
  info.launcher = Launcher::torchrun;
  info.master_addr = "127.0.0.1";
  info.master_port = port;
  return info;
}

TEST(Rendezvous, MissingRankIsNamedOnEveryRankWithinTheConnectTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto errors = join_partial_world(3, 2, 2.0, loopback_launch(free_port()));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int r = 0; r < 2; ++r)
    EXPECT_NE(errors[size_t(r)].find("rank " + std::to_string(r) + ": rank(s) 2 did not join the rendezvous at 127.0.0.1:"),
              std::string::npos)
        << errors[size_t(r)];
  EXPECT_LT(took, 8.0);  // 2 s, plus rank 0 waiting for the others to hear why
}

TEST(Rendezvous, PortInUseIsNamedWithTheFix) {
  const int port = free_port();
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(uint16_t(port));
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder, 4), 0);
  const auto errors = join_partial_world(2, 1, 5.0, loopback_launch(port));
  close(holder);
  EXPECT_NE(errors[0].find(fmt::format("cannot host the rendezvous store on 127.0.0.1:{}: port {} is in use by another "
                                       "process. Choose another MASTER_PORT",
                                       port, port)),
            std::string::npos)
      << errors[0];
}

TEST(Rendezvous, TorchrunAgentStoreServesEveryRank) {
  // torchrun's static rendezvous: its agent hosts the store on MASTER_PORT,
  // so rank 0 must not try to listen there; keys go under the attempt's prefix.
  c10d::TCPStoreOptions opts;
  opts.port = 0;
  opts.isServer = true;
  opts.waitWorkers = false;
  auto agent = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
  LaunchInfo base = loopback_launch(agent->getPort());
  base.agent_store = true;
  base.store_prefix = "/worker/attempt_0";
  const auto errors = join_partial_world(2, 2, 20.0, base);
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_TRUE(agent->check({"/worker/attempt_0/asr/joined/1"}));
}

TEST(Gloo, CheckCollectivesNamesBothRanksAndFingerprints) {
  run_ranks(2, 20, [](Communicator& comm) {
    comm.check_collectives(true);
    std::vector<at::Tensor> agreed{at::ones({3})};
    {
      FlightNote note("agreed sum");
      comm.all_reduce_sum(agreed);  // the same on both ranks: the check lets it through
    }
    EXPECT_EQ(agreed[0][0].item<float>(), 2.0f);
    const std::string ring = flight_dump_json("test");
    EXPECT_NE(ring.find(R"("op":"all_reduce","note":"agreed sum","dtype":"float32","numel":3)"), std::string::npos);
    try {
      if (comm.rank() == 0) {
        std::vector<at::Tensor> t{at::ones({6}, at::kDouble)};
        comm.all_reduce_sum(t);
      } else {
        comm.all_gather(at::ones({7}, at::kDouble));
      }
      ADD_FAILURE() << "rank " << comm.rank() << ": no mismatch reported";
    } catch (const CollectiveError& e) {
      const std::string what = e.what();
      const int other = 1 - comm.rank();
      const char* mine = comm.rank() == 0 ? "all_reduce #" : "all_gather #";
      const char* theirs = comm.rank() == 0 ? "all_gather #" : "all_reduce #";
      EXPECT_NE(what.find(fmt::format("rank {} is about to run {}", comm.rank(), mine)), std::string::npos) << what;
      EXPECT_NE(what.find(fmt::format("but rank {} runs {}", other, theirs)), std::string::npos) << what;
      EXPECT_NE(what.find("float64[6]"), std::string::npos) << what;
      EXPECT_NE(what.find("float64[7]"), std::string::npos) << what;
    }
  });
}

TEST(WatchdogDeathTest, StuckOperationEndsTheProcess) {
  EXPECT_EXIT(
      {
        WatchdogGuard guard("all_reduce (test)", 5, std::chrono::milliseconds(300));
        std::this_thread::sleep_for(std::chrono::seconds(10));
      },
      testing::ExitedWithCode(asr::kExitDistributed), "rank 5: 'all_reduce \\(test\\)' still not finished");
}

}  // namespace
