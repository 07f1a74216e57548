#include "tools/pipeline.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "tensor/error.h"
#include "tensor/sha256.h"
#include "tools/defend_common.h"

namespace dearest::cli {

namespace fs = std::filesystem;

std::string key_of(const std::vector<std::string>& parts) {
  Sha256 h;
  for (const auto& s : parts) {
    const uint64_t n = s.size();
    h.update(&n, sizeof n);
    h.update(s.data(), s.size());
  }
  return h.hex().substr(0, 16);
}

Json read_json(const std::string& path) {
  std::ifstream f(path);
  DEAREST_CHECK(f.good(), path, ": cannot open");
  return Json::parse(std::string(std::istreambuf_iterator<char>(f), {}), path);
}

std::string shell_line(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,:/@+%") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

namespace {

// The last non-empty line of a progress log, after its last carriage return.
std::string last_line(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  f.seekg(from);
  std::string tail(size_t(size - from), '\0');
  f.read(tail.data(), std::streamsize(tail.size()));
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' ')) tail.pop_back();
  const size_t cut = tail.find_last_of("\r\n");
  return cut == std::string::npos ? tail : tail.substr(cut + 1);
}

// An exclusive flock on PATH, released when the object goes. Each object opens the file anew, so
// two threads of one process exclude each other as two processes do. Without `wait`, a lock held
// elsewhere is not waited for: held() is then false.
class FolderLock {
 public:
  FolderLock(const std::string& path, const std::string& label, bool wait) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    DEAREST_CHECK(fd_ >= 0, path, ": cannot open the lock file");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      DEAREST_CHECK(errno == EWOULDBLOCK, path, ": cannot lock: ", std::strerror(errno));
      if (!wait) {
        ::close(fd_);
        fd_ = -1;
        return;
      }
      std::cerr << label << ": another process is making it; waiting for " << path << "\n";
      DEAREST_CHECK(::flock(fd_, LOCK_EX) == 0, path, ": cannot lock");
    }
  }
  ~FolderLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool held() const { return fd_ >= 0; }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

StepActivity step_activity(const Step& step) {
  StepActivity a;
  if (step.args.empty() || fs::exists(step.done) || !fs::exists(step.dir + "/.lock")) return a;
  FolderLock lock(step.dir + "/.lock", step.label, false);
  if (lock.held()) return a;  // nobody is making it: it was interrupted, or not started
  a.running = true;
  a.progress = last_line(step.dir + "/stderr.txt");
  return a;
}

StepOutcome run_step(const Step& step, const std::string& prefix, bool show_progress, bool wait) {
  StepOutcome out;
  if (fs::exists(step.done)) {
    out.cached = true;
    return out;
  }
  DEAREST_CHECK(!step.args.empty(), step.label, ": ", step.done, " not found");
  fs::create_directories(step.dir);
  FolderLock lock(step.dir + "/.lock", step.label, wait);
  if (!lock.held()) {
    out.busy = true;
    return out;
  }
  if (fs::exists(step.done)) {  // made by another process while this one waited
    out.cached = true;
    return out;
  }
  // The running program itself, through /proc/self/exe: that still works when the file was
  // rebuilt or removed while the pipeline runs (its path would then name another program or none).
  std::vector<std::string> argv = {"dearest"};
  argv.insert(argv.end(), step.args.begin(), step.args.end());
  write_text(step.dir + "/command.txt", "dearest " + shell_line(step.args) + "\n");
  const std::string out_log = step.dir + "/stdout.txt", err_log = step.dir + "/stderr.txt";
  std::cout.flush();
  std::cerr.flush();
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  DEAREST_CHECK(pid >= 0, step.label, ": cannot start a process");
  if (pid == 0) {
    // The child dies with the thread that started it: a killed study leaves no step running unlocked.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    const int o = ::open(out_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (o < 0 || e < 0) ::_exit(126);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv("/proc/self/exe", cargv.data());
    std::fprintf(stderr, "cannot run /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  const bool tty = show_progress && ::isatty(2);
  int status = 0;
  size_t shown = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    DEAREST_CHECK(r == 0, step.label, ": lost the child process");
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 500 : 200));
    if (tty) {
      std::string line = prefix + last_line(err_log);
      if (line.size() > 150) line = line.substr(0, 147) + "...";
      std::cerr << "\r" << line << std::string(shown > line.size() ? shown - line.size() : 0, ' ') << std::flush;
      shown = line.size();
    }
  }
  if (tty && shown) std::cerr << "\r" << std::string(shown, ' ') << "\r" << std::flush;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    const std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                              : "signal " + std::to_string(WTERMSIG(status));
    fail(step.label, " failed (", why, "): ", last_line(err_log), "\n  command: ", step.dir,
                 "/command.txt\n  log: ", err_log);
  }
  DEAREST_CHECK(fs::exists(step.done), step.label, ": finished but wrote no ", step.done, " (log: ", err_log, ")");
  return out;
}

}  // namespace dearest::cli
