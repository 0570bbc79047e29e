#include "asr/train/checkpoint_manager.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/model/module_state.h"
#include "asr/train/optimizer_state.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using asr::test::TempDir;

asr::CheckpointData sample_data(int64_t step) {
  asr::CheckpointData d;
  d.sections["state"] = "{\"step\": " + std::to_string(step) + "}";
  d.sections["config"] = "[optim]\nlr = 0.001\n";
  std::string binary;
  for (int i = 0; i < 3000; ++i) binary.push_back(static_cast<char>((i * 7 + step) & 0xff));
  d.sections["model"] = binary;
  d.sections["empty"] = "";
  return d;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string load_error(const fs::path& path) {
  try {
    asr::load_checkpoint(path);
  } catch (const asr::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error loading " << path;
  return "";
}

TEST(Checkpoint, RoundTrip) {
  TempDir dir;
  auto data = sample_data(5);
  asr::save_checkpoint(dir / "a.ckpt", data);
  auto back = asr::load_checkpoint(dir / "a.ckpt");
  EXPECT_EQ(back.sections, data.sections);
  EXPECT_EQ(back.at("state"), data.sections["state"]);
  EXPECT_THROW(back.at("missing"), asr::Error);
  // No temporary file left behind by the atomic write.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) ++files, (void)e;
  EXPECT_EQ(files, 1);
}

TEST(Checkpoint, EveryFlippedByteIsDetected) {
  TempDir dir;
  std::string good = asr::encode_checkpoint(sample_data(1));
  // Every byte of the header, the section table and the footer, and a stride through the data.
  for (size_t pos = 0; pos < good.size(); pos += (pos < 64 || pos + 64 > good.size()) ? 1 : 97) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x10);
    fs::path path = dir / "flip.ckpt";
    write_bytes(path, bad);
    std::string msg = load_error(path);
    EXPECT_NE(msg.find(path.string()), std::string::npos) << "byte " << pos << ": " << msg;
  }
  write_bytes(dir / "flip.ckpt", good);
  EXPECT_NO_THROW(asr::load_checkpoint(dir / "flip.ckpt"));
}

TEST(Checkpoint, ErrorsSayWhatIsWrong) {
  TempDir dir;
  std::string good = asr::encode_checkpoint(sample_data(2));

  write_bytes(dir / "trunc.ckpt", good.substr(0, good.size() - 100));
  EXPECT_NE(load_error(dir / "trunc.ckpt").find("truncated"), std::string::npos);
  write_bytes(dir / "short.ckpt", good.substr(0, 12));
  EXPECT_NE(load_error(dir / "short.ckpt").find("truncated"), std::string::npos);

  std::string corrupt = good;
  corrupt[good.size() / 2] ^= 1;
  write_bytes(dir / "crc.ckpt", corrupt);
  EXPECT_NE(load_error(dir / "crc.ckpt").find("corrupt"), std::string::npos);

  write_bytes(dir / "text.ckpt", "this is a text file, not a checkpoint\n");
  EXPECT_NE(load_error(dir / "text.ckpt").find("not an asr_ddp checkpoint"), std::string::npos);
  write_bytes(dir / "empty.ckpt", "");
  EXPECT_NE(load_error(dir / "empty.ckpt").find("not an asr_ddp checkpoint"), std::string::npos);

  std::string future = good;
  future[8] = 9;  // format version field
  write_bytes(dir / "v9.ckpt", future);
  std::string msg = load_error(dir / "v9.ckpt");
  EXPECT_NE(msg.find("format version 9"), std::string::npos) << msg;

  EXPECT_NE(load_error(dir / "absent.ckpt").find("does not exist"), std::string::npos);
  fs::create_directory(dir / "adir.ckpt");
  EXPECT_NE(load_error(dir / "adir.ckpt").find("not a regular file"), std::string::npos);
}

TEST(Checkpoint, LatestValidSkipsCorruptNewest) {
  TempDir dir;
  asr::CheckpointManager manager(dir.path(), 0, false);
  manager.save(100, sample_data(100));
  manager.save(200, sample_data(200));
  fs::path newest = manager.save(300, sample_data(300));
  EXPECT_EQ(asr::find_latest_valid(dir.path()), newest);

  std::string bytes = asr::read_file(newest);
  write_bytes(newest, bytes.substr(0, bytes.size() / 2));  // a crash mid-copy
  auto latest = asr::find_latest_valid(dir.path());
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, asr::CheckpointManager::path_for(dir.path(), 200));
  EXPECT_EQ(asr::load_checkpoint(*latest).at("state"), "{\"step\": 200}");

  TempDir empty;
  EXPECT_FALSE(asr::find_latest_valid(empty.path()));
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Checkpoint, RetentionKeepsLastNPlusBest) {
  TempDir dir;
  {
    asr::CheckpointManager manager(dir.path(), 2, true);
    // metric (lower is better): best at step 2000, then worse ones.
    const double metrics[] = {0.5, 0.2, 0.4, 0.3, 0.6};
    for (int i = 0; i < 5; ++i) manager.save((i + 1) * 1000, sample_data((i + 1) * 1000), metrics[i]);
    EXPECT_EQ(manager.best_step(), 2000);
  }
  auto ckpt_dir = dir / "checkpoints";
  EXPECT_EQ(names_in(ckpt_dir), (std::vector<std::string>{"best.ckpt", "best.json", "step-000004000.ckpt",
                                                           "step-000005000.ckpt"}));
  EXPECT_EQ(asr::load_checkpoint(ckpt_dir / "best.ckpt").at("state"), "{\"step\": 2000}");

  // The best survives a restart: a worse metric does not replace it, a better one does.
  asr::CheckpointManager again(dir.path(), 2, true);
  EXPECT_EQ(again.best_step(), 2000);
  EXPECT_DOUBLE_EQ(*again.best_metric(), 0.2);
  again.save(6000, sample_data(6000), 0.25);
  EXPECT_EQ(asr::load_checkpoint(ckpt_dir / "best.ckpt").at("state"), "{\"step\": 2000}");
  again.save(7000, sample_data(7000), 0.1);
  EXPECT_EQ(asr::load_checkpoint(ckpt_dir / "best.ckpt").at("state"), "{\"step\": 7000}");
  EXPECT_EQ(names_in(ckpt_dir), (std::vector<std::string>{"best.ckpt", "best.json", "step-000006000.ckpt",
                                                           "step-000007000.ckpt"}));
}

TEST(Checkpoint, StaleTempFilesAreRemoved) {
  TempDir dir;
  fs::create_directories(dir / "checkpoints");
  write_bytes(dir / "checkpoints" / ".step-000000100.ckpt.tmp.12345", "partial");
  asr::CheckpointManager manager(dir.path(), 3, true);
  EXPECT_TRUE(names_in(dir / "checkpoints").empty());
}

struct Net : torch::nn::Module {
  Net() {
    fc = register_module("fc", torch::nn::Linear(4, 3));
    norm = register_module("norm", torch::nn::BatchNorm1d(3));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};

// The optimizer state of `net` after one AdamW step, as checkpoint bytes.
std::string optimizer_bytes_after_one_step(Net& net) {
  torch::optim::AdamW optimizer(net.parameters(), torch::optim::AdamWOptions(1e-2));
  optimizer.zero_grad();
  net.norm(net.fc(torch::randn({8, 4}))).pow(2).sum().backward();
  optimizer.step();
  return asr::optimizer_to_bytes(optimizer);
}

TEST(CheckpointTorch, ModuleOptimizerAndRngRoundTrip) {
  torch::manual_seed(1);
  Net a;
  torch::optim::AdamW opt_a(a.parameters(), torch::optim::AdamWOptions(1e-2));
  for (int i = 0; i < 3; ++i) {  // populate Adam moments and BatchNorm running stats
    opt_a.zero_grad();
    a.norm(a.fc(torch::randn({8, 4}))).pow(2).sum().backward();
    opt_a.step();
  }
  asr::CheckpointData data;
  data.sections["model"] = asr::module_to_bytes(a);
  data.sections["optimizer"] = asr::optimizer_to_bytes(opt_a);
  auto gen = at::detail::getDefaultCPUGenerator();
  data.sections["rng.cpu"] = asr::generator_state_to_bytes(gen);
  TempDir dir;
  asr::save_checkpoint(dir / "t.ckpt", data);
  torch::Tensor expected_draw = torch::rand({5});

  torch::manual_seed(99);
  Net b;
  torch::optim::AdamW opt_b(b.parameters(), torch::optim::AdamWOptions(1e-2));
  auto loaded = asr::load_checkpoint(dir / "t.ckpt");
  asr::module_from_bytes(b, loaded.at("model"), "t.ckpt");
  asr::optimizer_from_bytes(opt_b, loaded.at("optimizer"), "t.ckpt");
  asr::generator_state_from_bytes(gen, loaded.at("rng.cpu"), "t.ckpt");
  EXPECT_TRUE(torch::equal(torch::rand({5}), expected_draw));
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
  EXPECT_TRUE(torch::equal(a.norm->running_mean, b.norm->running_mean));
  EXPECT_TRUE(torch::equal(a.norm->running_var, b.norm->running_var));

  // Same step from both: identical parameters afterwards (the moments came along).
  torch::Tensor x = torch::randn({8, 4});
  opt_a.zero_grad();
  a.norm(a.fc(x)).pow(2).sum().backward();
  opt_a.step();
  opt_b.zero_grad();
  b.norm(b.fc(x)).pow(2).sum().backward();
  opt_b.step();
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
}

// Checkpoints load through the CPU and state follows each parameter to its
// device: a GPU checkpoint resumes on a CPU and the other way round. Here the
// "other device" is LibTorch's meta device (shapes without data), the only
// second device a CPU-only machine has.
TEST(CheckpointTorch, OptimizerStateMovesToTheParametersDevice) {
  torch::manual_seed(1);
  Net a;
  const std::string bytes = optimizer_bytes_after_one_step(a);

  std::vector<torch::Tensor> meta;
  for (const auto& p : a.parameters())
    meta.push_back(torch::empty(p.sizes(), torch::TensorOptions().device(torch::kMeta)).requires_grad_());
  torch::optim::AdamW opt_b(meta, torch::optim::AdamWOptions(1e-2));
  asr::optimizer_from_bytes(opt_b, bytes, "cpu.ckpt");
  int moved = 0;
  for (auto& group : opt_b.param_groups())
    for (auto& p : group.params()) {
      ASSERT_TRUE(p.device().is_meta());
      for (auto& [key, state] : opt_b.state()) {
        auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state.get());
        ASSERT_NE(adamw, nullptr);
        EXPECT_TRUE(adamw->exp_avg().device().is_meta()) << "the moments stayed on the CPU";
        EXPECT_TRUE(adamw->exp_avg_sq().device().is_meta());
        ++moved;
      }
    }
  EXPECT_GT(moved, 0);
}

struct Wider : torch::nn::Module {
  Wider() { fc = register_module("fc", torch::nn::Linear(4, 5)); }
  torch::nn::Linear fc{nullptr};
};

TEST(CheckpointTorch, MismatchedModelIsAnError) {
  Net a;
  std::string bytes = asr::module_to_bytes(a);
  Wider w;
  try {
    asr::module_from_bytes(w, bytes, "x.ckpt");
    FAIL() << "expected a shape error";
  } catch (const asr::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("x.ckpt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fc.weight"), std::string::npos) << msg;
  }
  EXPECT_THROW(asr::module_from_bytes(w, "garbage", "x.ckpt"), asr::Error);
  auto gen = at::detail::getDefaultCPUGenerator();
  EXPECT_THROW(asr::generator_state_from_bytes(gen, "short", "x.ckpt"), asr::Error);
}

}  // namespace

// LibTorch's optimizer archive names each parameter by its TensorImpl
// address: LibTorch 1.13 writes it in hexadecimal ("0x55d0..."), 2.x in
// decimal, and 2.x's own loader reads the hexadecimal keys as one key for
// every parameter. A checkpoint written by either must restore each
// parameter's moments to that parameter under either LibTorch.
class OptimizerArchiveKeys : public ::testing::TestWithParam<bool> {};

TEST_P(OptimizerArchiveKeys, RestoreEachParameterInEitherLibTorchLayout) {
  const bool hexadecimal = GetParam();
  torch::manual_seed(3);
  Net net;
  const auto params = net.parameters();
  torch::serialize::OutputArchive archive, states, groups, group, options;
  for (size_t j = 0; j < params.size(); ++j) {
    // Keys in reverse order of the parameters, so that a loader going by
    // key order instead of the group's list gets it wrong.
    const uint64_t address = 0x7f0000001000ULL - 0x100 * j;
    std::ostringstream key;
    if (hexadecimal) key << "0x" << std::hex << address; else key << address;
    torch::optim::AdamWParamState state;
    state.step(static_cast<int64_t>(j + 1));
    state.exp_avg(torch::full(params[j].sizes(), double(j + 1)));
    state.exp_avg_sq(torch::full(params[j].sizes(), double(10 * (j + 1))));
    torch::serialize::OutputArchive one;
    state.serialize(one);
    states.write(key.str(), one);
    group.write("params/" + std::to_string(j), c10::IValue(key.str()));
  }
  group.write("params/size", torch::tensor(static_cast<int64_t>(params.size())));
  torch::optim::AdamWOptions(3e-3).weight_decay(0.25).serialize(options);
  group.write("options", options);
  groups.write("param_groups/size", torch::tensor(int64_t{1}));
  groups.write("param_groups/0", group);
  archive.write("pytorch_version", c10::IValue("1.5.0"));
  archive.write("state", states);
  archive.write("param_groups", groups);

  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(1.0));
  asr::optimizer_from_bytes(optimizer, asr::archive_to_bytes(archive), "layout.ckpt");
  ASSERT_EQ(optimizer.state().size(), params.size());
  const auto& restored = static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[0].options());
  EXPECT_DOUBLE_EQ(restored.lr(), 3e-3);
  EXPECT_DOUBLE_EQ(restored.weight_decay(), 0.25);
  for (size_t j = 0; j < params.size(); ++j) {
    bool found = false;
    for (auto& [key, state] : optimizer.state()) {
      auto& adamw = static_cast<torch::optim::AdamWParamState&>(*state);
      if (adamw.step() != static_cast<int64_t>(j + 1)) continue;
      found = true;
      EXPECT_TRUE(torch::equal(adamw.exp_avg(), torch::full(params[j].sizes(), double(j + 1)))) << j;
      EXPECT_TRUE(torch::equal(adamw.exp_avg_sq(), torch::full(params[j].sizes(), double(10 * (j + 1))))) << j;
    }
    EXPECT_TRUE(found) << "parameter " << j << " lost its state";
  }
}

INSTANTIATE_TEST_SUITE_P(LibTorch113AndLibTorch2, OptimizerArchiveKeys, ::testing::Values(true, false));

TEST(CheckpointTorch, OptimizerStateOfAnotherModelIsADataError) {
  Net a;
  const std::string bytes = optimizer_bytes_after_one_step(a);
  auto fewer = a.parameters();
  fewer.pop_back();
  torch::optim::AdamW opt_b(fewer, torch::optim::AdamWOptions(1e-2));
  try {
    asr::optimizer_from_bytes(opt_b, bytes, "other.ckpt");
    FAIL() << "no error";
  } catch (const asr::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("other.ckpt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("parameters in the checkpoint"), std::string::npos) << e.what();
  }
}
