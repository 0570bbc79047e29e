#include "asr/core/thread_pool.h"

#include <atomic>
#include <exception>

namespace asr {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ThreadPool::worker_loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ThreadPool::parallel_for(size_t begin, size_t end, const std::function<void(size_t)>& fn) {
  if (begin >= end) return;
  std::atomic<size_t> next{begin};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto drain = [&] {
    for (size_t i; (i = next.fetch_add(1)) < end;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        next.store(end);
      }
    }
  };
  std::vector<std::future<void>> pending;
  size_t n = std::min(workers_.size(), end - begin);
  for (size_t w = 0; w < n; ++w) pending.push_back(submit(drain));
  for (auto& f : pending) f.get();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace asr
