// host-local's on-disk store: <dataDir>/<network>/<ip> holds "<containerID>\r\n<ifname>",
// last_reserved_ip.<rangeset> remembers where round-robin continues, and every change
// happens under flock(<dataDir>/<network>/lock), so concurrent plugin processes see
// one consistent set. The layout is the reference plugin's, so a node can switch.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/net.h"

namespace knode::cni {

class IpamStore {
 public:
  // Creates the directory if missing and takes the lock; released on destruction.
  static Result<IpamStore> Open(const std::string& data_dir, const std::string& network);
  IpamStore(IpamStore&& other) noexcept;
  IpamStore& operator=(IpamStore&&) = delete;
  IpamStore(const IpamStore&) = delete;
  IpamStore& operator=(const IpamStore&) = delete;
  ~IpamStore();

  // False when the address is already taken.
  Result<bool> reserve(const net::IPAddress& ip, const Attachment& owner, size_t range_set);
  std::optional<net::IPAddress> last_reserved(size_t range_set) const;
  bool is_reserved(const net::IPAddress& ip) const;
  // Every reservation on disk.
  std::map<net::IPAddress, Attachment> allocations() const;
  std::vector<net::IPAddress> find(const Attachment& owner) const;
  Status release(const net::IPAddress& ip);
  // Releases every address of owner, and any reservation without an owner (left by a
  // plugin killed while reserving); returns what it released.
  Result<std::vector<net::IPAddress>> release_owner(const Attachment& owner);

  const std::string& dir() const { return dir_; }

 private:
  IpamStore(std::string dir, int lock_fd) : dir_(std::move(dir)), lock_fd_(lock_fd) {}
  std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace knode::cni
