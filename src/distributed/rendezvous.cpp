#include "rendezvous.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "asr/distributed/communicator.h"
#include "asr/distributed/world.h"

namespace asr::distributed {
namespace {

using std::chrono::milliseconds;
using Clock = RendezvousClock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// LibTorch 2.4 on turns TCPStoreOptions::useLibUV on by default, and a
// LibTorch built without libuv (Debian's 2.6) then refuses to open any store.
// The libuv server scales better, so it is kept where it exists; where the
// library says it lacks it, the classic server is used. Older LibTorch has
// no such option (detected from the type, not from a version number).
template <typename Options, typename = void>
struct HasUseLibUV : std::false_type {};
template <typename Options>
struct HasUseLibUV<Options, std::void_t<decltype(std::declval<Options&>().useLibUV)>> : std::true_type {};

// A template so that the branch naming useLibUV is only compiled where it exists.
template <typename Options>
c10::intrusive_ptr<c10d::TCPStore> make_store(const std::string& host, Options opts) {
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, opts);
  } catch (const std::exception& e) {
    if constexpr (HasUseLibUV<Options>::value) {
      if (opts.useLibUV && std::string_view(e.what()).find("libuv") != std::string_view::npos) {
        opts.useLibUV = false;
        return c10::make_intrusive<c10d::TCPStore>(host, opts);
      }
    }
    throw;
  }
}

c10d::TCPStoreOptions store_options(int port, bool server, int world_size, milliseconds timeout) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = server;
  opts.numWorkers = world_size;
  // Waiting for workers inside the constructor would deadlock the MPI path
  // (the others learn the port only afterwards) and would wait in silence;
  // wait_for_ranks does it with progress lines.
  opts.waitWorkers = false;
  opts.timeout = timeout;
  return opts;
}

// Another program holding the port would take every request and answer
// none: one request with a short deadline tells a store from it.
void check_answers_like_a_store(c10d::Store& store, const std::string& where, int rank, milliseconds limit) {
  try {
    store.set("asr/probe", std::vector<uint8_t>{1});
    store.wait({"asr/probe"}, limit);
  } catch (const std::exception& e) {
    throw CollectiveError(fmt::format(
        "rank {}: something listens at {} but does not answer as a rendezvous store within {:.0f} s ({}): another "
        "program holds that port. Choose another MASTER_PORT (or dist.master_port) for this job.",
        rank, where, limit.count() / 1000.0, first_line(e.what())));
  }
}

// Ranks not yet marked under `prefix` (one check per rank: rank 0 only, and
// only at a progress line or the deadline).
std::vector<int> unmarked_ranks(c10d::Store& store, const std::string& prefix, int world_size) {
  std::vector<int> missing;
  for (int r = 0; r < world_size; ++r)
    if (!store.check({prefix + std::to_string(r)})) missing.push_back(r);
  return missing;
}

// "rank(s) 2, 5" as rank 0 sees them; the others read rank 0's latest list,
// or count when rank 0 has published none yet.
std::string describe_missing(c10d::Store& store, const std::string& prefix, int rank, int world_size,
                             int64_t joined) {
  const std::string key = prefix + "missing";
  if (rank == 0) {
    const std::string text = "rank(s) " + describe_ranks(unmarked_ranks(store, prefix, world_size));
    store.set(key, std::vector<uint8_t>(text.begin(), text.end()));
    return text;
  }
  if (store.check({key})) {
    const auto bytes = store.get(key);
    return std::string(bytes.begin(), bytes.end());
  }
  return fmt::format("{} of {} ranks", world_size - joined, world_size);
}

// Rank 0 usually hosts the store: when it gives up, the ranks that came
// must hear why before it exits and takes the store with it (otherwise they
// see only a broken connection). They acknowledge; rank 0 waits a moment.
void abort_waiters(c10d::Store& store, const std::string& prefix, const std::string& missing, int64_t joined) {
  store.set(prefix + "abort", std::vector<uint8_t>(missing.begin(), missing.end()));
  const auto until = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < until && store.add(prefix + "abort-read", 0) < joined - 1)
    std::this_thread::sleep_for(milliseconds(20));
}

std::string read_abort(c10d::Store& store, const std::string& prefix) {
  const auto bytes = store.get(prefix + "abort");
  store.add(prefix + "abort-read", 1);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

std::string first_line(std::string text) {
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  return text;
}

c10::intrusive_ptr<c10d::TCPStore> host_store(const std::string& host, int port, int world_size,
                                              milliseconds timeout) {
  try {
    return make_store(host, store_options(port, true, world_size, timeout));
  } catch (const std::exception& e) {
    const std::string why = first_line(e.what());
    if (why.find("Address already in use") != std::string::npos || why.find("errno: 98") != std::string::npos)
      throw CollectiveError(fmt::format(
          "rank 0: cannot host the rendezvous store on {}:{}: port {} is in use by another process. Choose another "
          "MASTER_PORT (or dist.master_port) for this job; `ss -ltnp` shows who holds it",
          host, port, port));
    throw CollectiveError(fmt::format("rank 0: cannot host the rendezvous store on {}:{}: {}. Check MASTER_ADDR and "
                                      "MASTER_PORT (or dist.master_addr and dist.master_port)",
                                      host, port, why));
  }
}

c10::intrusive_ptr<c10d::TCPStore> reach_store(const std::string& host, int port, int rank, int world_size,
                                               Clock::time_point deadline, milliseconds timeout,
                                               const std::string& host_role) {
  const std::string where = fmt::format("{}:{}", host, port);
  const auto start = Clock::now();
  auto next_report = start + kProgressEvery;
  std::string last_error = "not tried";
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline)
      throw CollectiveError(fmt::format(
          "rank {}: could not reach the rendezvous store at {} within {:.0f} s (dist.connect_timeout_seconds): {}. "
          "{} hosts it: check that it is running (its log says why not), that every rank has the same MASTER_ADDR "
          "and MASTER_PORT (or dist.master_addr, dist.master_port), that this host can reach {}, and that no other "
          "program holds that port",
          rank, where, seconds_between(start, deadline), last_error, host_role, where));
    const auto attempt = std::clamp(std::chrono::duration_cast<milliseconds>(deadline - now), milliseconds(1000),
                                    milliseconds(kProgressEvery));
    try {
      auto store = make_store(host, store_options(port, false, world_size, attempt));
      store->setTimeout(timeout);
      check_answers_like_a_store(*store, where, rank, std::min(timeout, milliseconds(kProgressEvery)));
      return store;
    } catch (const CollectiveError&) {
      throw;
    } catch (const std::exception& e) {
      last_error = first_line(e.what());
    }
    if (Clock::now() >= next_report) {
      spdlog::warn("rank {}: the rendezvous store at {} ({}) is not reachable yet after {:.0f} s; waiting up to "
                   "{:.0f} s (dist.connect_timeout_seconds): {}",
                   rank, where, host_role, seconds_between(start, Clock::now()), seconds_between(start, deadline),
                   last_error);
      next_report += kProgressEvery;
    }
    // A refused connection can fail at once: retry once a second, not in a spin.
    std::this_thread::sleep_until(std::min(now + std::chrono::seconds(1), deadline));
  }
}

void mark_rank(c10d::Store& store, const std::string& prefix, int rank) {
  store.set(prefix + std::to_string(rank), std::vector<uint8_t>{1});
  store.add(prefix + "count", 1);
}

void wait_for_ranks(c10d::Store& store, const std::string& prefix, int rank, int world_size,
                    Clock::time_point start, Clock::time_point deadline, const std::string& what,
                    const std::string& where) {
  // Rank 0 publishes the missing ranks at least once before the deadline,
  // so that every rank's error can name them.
  const auto every = std::min<Clock::duration>(kProgressEvery, (deadline - start) / 2);
  auto next_report = Clock::now() + every;
  auto pause = milliseconds(5);
  auto give_up = [&](const std::string& missing) {
    return CollectiveError(fmt::format(
        "rank {}: {} did not {} {} within {:.0f} s (dist.connect_timeout_seconds); are they running? Their own "
        "output, or the launcher's, says why not",
        rank, missing, what, where, seconds_between(start, deadline)));
  };
  for (;;) {
    const int64_t joined = store.add(prefix + "count", 0);
    if (joined == world_size) return;
    if (joined > world_size)
      throw CollectiveError(fmt::format(
          "rank {}: {} ranks came to {} {} but the world has {}: another job uses the same store. Choose another "
          "MASTER_PORT (or dist.master_port) for this job",
          rank, joined, what, where, world_size));
    if (rank != 0 && store.check({prefix + "abort"})) throw give_up(read_abort(store, prefix));
    const auto now = Clock::now();
    if (now >= deadline) {
      const std::string missing = describe_missing(store, prefix, rank, world_size, joined);
      if (rank == 0) abort_waiters(store, prefix, missing, joined);
      throw give_up(missing);
    }
    if (now >= next_report) {
      spdlog::warn("rank {}: waiting for {} to {} {} ({:.0f} s so far; giving up after {:.0f} s, "
                   "dist.connect_timeout_seconds)",
                   rank, describe_missing(store, prefix, rank, world_size, joined), what, where,
                   seconds_between(start, now), seconds_between(start, deadline));
      next_report += every;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(200));
  }
}

}  // namespace asr::distributed
