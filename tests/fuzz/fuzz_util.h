// Small helpers shared by the fuzz targets in this folder (header-only, no product code).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "support/temp_dir.h"

namespace knode::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits on `sep`, keeping empty pieces ("a\n\nb" -> {"a", "", "b"}).
inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, p - start));
    start = p + 1;
  }
}

// An argv from fuzz bytes: split on NUL when there is one, else on ASCII whitespace
// (empty words dropped in that case).
inline std::vector<std::string> split_args(std::string_view s) {
  if (s.find('\0') != std::string_view::npos) return split(s, '\0');
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Reads the input front to back; past the end it yields zeros and empty strings.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), left_(size) {}
  size_t left() const { return left_; }
  uint8_t u8() {
    if (left_ == 0) return 0;
    --left_;
    return *p_++;
  }
  uint32_t u32le() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  std::string_view bytes(size_t n) {
    if (n > left_) n = left_;
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return v;
  }
  std::string_view rest() { return bytes(left_); }

 private:
  const uint8_t* p_;
  size_t left_;
};

// A buffer whose end touches a PROT_NONE page: bytes copied in with place() end exactly at
// the guard, so a read past them faults even inside uninstrumented code (libnl, libmnl,
// libnftnl are not built with the sanitizers; ASan cannot see their over-reads otherwise).
// One fixed mapping for the whole process (no growth across runs).
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    cap_ = (capacity + page - 1) / page * page;
    void* p = ::mmap(nullptr, cap_ + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(p);
    if (::mprotect(base_ + cap_, page, PROT_NONE) != 0) std::abort();
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  size_t capacity() const { return cap_; }
  // Copies `n` bytes so that they end at the guard page, or up to 3 bytes before it: the
  // start is 4-byte aligned, as netlink messages are in a receive buffer. nullptr when
  // they do not fit.
  void* place(const void* data, size_t n) {
    if (n > cap_) return nullptr;
    char* dst = base_ + cap_ - ((n + 3) & ~size_t{3});
    if (n != 0) std::memcpy(dst, data, n);
    return dst;
  }

 private:
  char* base_ = nullptr;
  size_t cap_ = 0;
};

// A private directory per run (mkdtemp; removed with everything in it when the object
// goes): the tests' own (its mkdtemp failing throws, which ends the run).
using TempDir = knode::testing::TempDir;

// Writes `data` to `path` (a file inside a TempDir); aborts on failure: the harness's
// own I/O must not fail silently.
inline void write_file(const std::string& path, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::abort();
  }
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
  std::fclose(f);
}

// A property the product promises was broken: report it as a crash with a message.
[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "knode fuzz property violated: %s\n%.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace knode::fuzz
