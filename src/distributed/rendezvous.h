// The rendezvous store, with every wait bounded and reported. Ranks of a
// cluster job start minutes apart, so waiting is normal; waiting in silence
// is not: whoever waits logs every kProgressEvery which ranks are still
// missing, and gives up at a deadline (dist.connect_timeout_seconds) with an
// error naming them. A store that cannot be hosted or reached names the
// host, the port and the likely fix.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <string>

namespace asr::distributed {

using RendezvousClock = std::chrono::steady_clock;
constexpr std::chrono::seconds kProgressEvery{10};

// The first line of a c10d message (the rest is a C++ backtrace).
std::string first_line(std::string text);

// Rank 0 hosting the store on host:port (port 0: any free port). A port in
// use throws CollectiveError saying so and to choose another MASTER_PORT.
c10::intrusive_ptr<c10d::TCPStore> host_store(const std::string& host, int port, int world_size,
                                              std::chrono::milliseconds timeout);

// A client of the store at host:port, retried until `deadline` and logged
// while it is not there yet; `host_role` names who should be serving it (for
// messages: "rank 0", "torchrun's agent"). Then one request with a short
// deadline checks that what listens there answers like a store (another
// program holding the port would leave every later call waiting).
c10::intrusive_ptr<c10d::TCPStore> reach_store(const std::string& host, int port, int rank, int world_size,
                                               RendezvousClock::time_point deadline,
                                               std::chrono::milliseconds timeout, const std::string& host_role);

// Marks `rank` present under `prefix` (a key per rank and a counter).
void mark_rank(c10d::Store& store, const std::string& prefix, int rank);

// Waits until every rank of `world_size` is marked under `prefix`, polling
// the counter. Every kProgressEvery rank 0 lists the ranks still missing
// (and publishes the list for the others, whose lines repeat it); at the
// deadline every rank throws CollectiveError naming them. `what`: "join the
// rendezvous", "report their device", ... `where`: "at HOST:PORT".
void wait_for_ranks(c10d::Store& store, const std::string& prefix, int rank, int world_size,
                    RendezvousClock::time_point start, RendezvousClock::time_point deadline, const std::string& what,
                    const std::string& where);

}  // namespace asr::distributed
