// See compute_thread.h.
#include "addon/compute_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace rrec::addon {

namespace {

struct Job {
  const std::function<void()>* fn;
  std::exception_ptr error;
  bool done = false;
};

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { loop(); }) { thread_.detach(); }  // lives until the process exits

  void run(const std::function<void()>& fn) {
    Job job{&fn, nullptr, false};
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&job);
    wake_.notify_one();
    done_.wait(lock, [&] { return job.done; });
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void loop() {
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      try {
        (*job->fn)();
      } catch (...) {
        job->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        job->done = true;
      }
      done_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::deque<Job*> queue_;
  std::thread thread_;
};

ComputeThread& computeThread() {
  static ComputeThread* t = new ComputeThread();  // never destroyed: its thread may still be waiting at exit
  return *t;
}

}  // namespace

void runOnComputeThread(const std::function<void()>& fn) { computeThread().run(fn); }

}  // namespace rrec::addon
