// Which of several registries a client asks next: one sticky "current"
// registry, and the order in which the others stand in for it when it
// cannot be reached.

#ifndef CHAT_REGISTRY_CLIENT_REGISTRY_PICKER_H_
#define CHAT_REGISTRY_CLIENT_REGISTRY_PICKER_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat::registry {

// The registries of a --registry value: one host:port, or several separated
// by commas (spaces around each are ignored). kInvalidArgument naming the
// bad piece for an empty list, an empty piece, a piece ValidateAddress
// refuses, or the same address twice.
absl::StatusOr<std::vector<std::string>> ParseRegistryAddresses(
    const std::string& flag);

// The registries of `flag` without checking them (empty pieces dropped), for
// a caller that validated the flag already; never empty (`flag` itself when
// it holds no address).
std::vector<std::string> SplitRegistryAddresses(const std::string& flag);

// "a:50050, b:50050": how messages list `addresses`.
std::string JoinRegistryAddresses(const std::vector<std::string>& addresses);

// Decides where a call goes among several registries that serve the same
// state (stateless registries over one etcd). Every call goes to the
// current registry, which stays current for as long as it answers (sticky:
// a client's streams and calls stay together, and a registry that came back
// does not pull everyone back). A registry that could not be reached is
// passed over for `cooldown` after that, and the current one moves to the
// next registry in the list that is not passed over. Time comes in as an
// argument, so tests move it by hand.
//
// Thread-safe.
class RegistryPicker {
 public:
  // `addresses` must not be empty.
  explicit RegistryPicker(std::vector<std::string> addresses,
                          Millis cooldown = Millis(5000));

  const std::vector<std::string>& addresses() const { return addresses_; }

  // Indexes into addresses(), in the order one call should try them: the
  // current registry, then the others in list order after it, those passed
  // over last (still tried: when every registry seemed down, one of them
  // may be back). `connection_failing(i)`, when set, says whether the
  // connection to registry i is known to be failing now (gRPC's
  // TRANSIENT_FAILURE): such a registry is passed over too, current or not.
  std::vector<size_t> Order(
      MonoTime now,
      const std::function<bool(size_t)>& connection_failing = nullptr) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Registry `index` answered (even with a refusal): it is current now, and
  // no longer passed over.
  void Answered(size_t index) ABSL_LOCKS_EXCLUDED(mu_);

  // Registry `index` could not be reached at `now`: passed over until
  // now + cooldown; when it was current, the next one in list order that is
  // not passed over becomes current (the one after it, when all are).
  // Returns whether the current registry moved to one not passed over: a
  // switch worth telling. Not when every registry is away, nor after that
  // until one answers again (so an outage is told once, not once per
  // cooldown).
  bool Failed(size_t index, MonoTime now) ABSL_LOCKS_EXCLUDED(mu_);

  size_t current() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool PassedOver(size_t index, MonoTime now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> addresses_;
  const Millis cooldown_;
  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  // Every registry failed, and none has answered since.
  bool all_failed_ ABSL_GUARDED_BY(mu_) = false;
  // Per registry: passed over until then; nullopt when not.
  std::vector<std::optional<MonoTime>> passed_over_until_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CLIENT_REGISTRY_PICKER_H_
