#include "registry/client/lease_keeper.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/net.h"

namespace chat::registry {
namespace {

Millis RenewInterval(Millis ttl) { return std::max(Millis(100), ttl / 3); }

}  // namespace

absl::StatusOr<std::string> AdvertisedAddress(
    const std::string& advertise, const std::string& listen, int port,
    const std::string& registry_target) {
  if (!advertise.empty()) return advertise;
  std::string address = DefaultAdvertisedAddress(listen, port);
  if (!address.empty()) return address;
  absl::StatusOr<std::string> local = LocalAddressToward(registry_target);
  if (!local.ok()) {
    return absl::UnavailableError(
        absl::StrCat("registry at ", registry_target,
                     " is unreachable: ", local.status().message()));
  }
  return absl::StrCat(*local, ":", port);
}

absl::StatusOr<std::unique_ptr<LeaseKeeper>> LeaseKeeper::Start(
    RegistryClient* client, Options options, const Clock& clock) {
  if (options.address.empty()) {
    absl::StatusOr<std::string> address = AdvertisedAddress(
        "", options.listen, options.port, client->current_address());
    if (!address.ok()) return address.status();
    options.address = *std::move(address);
  }
  RegisterRequest request;
  request.name = options.name;
  request.address = options.address;
  request.ttl = options.ttl;
  request.lease_id = options.reclaim_lease_id;
  request.services = options.services;
  absl::StatusOr<Lease> lease = client->Register(request, options.identity);
  if (!lease.ok()) return lease.status();
  if (options.on_lease) options.on_lease(lease->lease_id);
  std::unique_ptr<LeaseKeeper> keeper(
      new LeaseKeeper(client, std::move(options), *std::move(lease)));
  LeaseKeeper* raw = keeper.get();
  keeper->loop_.emplace(
      clock, RenewInterval(keeper->lease().entry.ttl),
      [raw]() -> std::optional<Millis> { return raw->Step(); });
  return keeper;
}

LeaseKeeper::LeaseKeeper(RegistryClient* client, Options options, Lease lease)
    : client_(client), options_(std::move(options)), lease_(std::move(lease)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (loop_) loop_->Stop();
  Lease lease;  // The last one the thread held.
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
    lease_.lease_id.clear();
  }
  if (!lease.lease_id.empty()) {
    // Best effort: if it fails, the lease simply expires within its TTL.
    client_->Unregister(options_.name, lease.lease_id).IgnoreError();
  }
}

Lease LeaseKeeper::lease() const {
  absl::MutexLock lock(&mu_);
  return lease_;
}

Millis LeaseKeeper::Step() {
  Lease current = lease();
  if (!current.lease_id.empty()) {
    absl::StatusOr<Millis> ttl =
        client_->KeepAlive(options_.name, current.lease_id);
    if (ttl.ok()) {
      SetReachable(true, absl::OkStatus());
      Report("registered",
             absl::StrCat("registry reachable again; \"", options_.name,
                          "\" is still ours"),
             /*reachability=*/true);
      return RenewInterval(*ttl);
    }
    if (IsUnreachable(ttl.status())) {
      SetReachable(false, ttl.status());
      Report("unreachable",
             absl::StrCat(ttl.status().message(), "; will keep trying"),
             /*reachability=*/true);
      return std::min(options_.retry_interval,
                      RenewInterval(current.entry.ttl));
    }
    // NOT_FOUND / PERMISSION_DENIED: the lease is gone; register afresh.
    Report("lost",
           absl::StrCat("lease on \"", options_.name, "\" lost (",
                        ttl.status().message(), "); registering again"));
    absl::MutexLock lock(&mu_);
    lease_.lease_id.clear();
  }
  RegisterRequest request;
  request.name = options_.name;
  request.address = options_.address;
  request.ttl = options_.ttl;
  request.services = options_.services;
  absl::StatusOr<Lease> lease = client_->Register(request, options_.identity);
  if (lease.ok()) {
    SetReachable(true, absl::OkStatus());
    Report("registered", absl::StrCat("registered \"", options_.name,
                                      "\" again at ", options_.address));
    Millis interval = RenewInterval(lease->entry.ttl);
    if (options_.on_lease) options_.on_lease(lease->lease_id);
    absl::MutexLock lock(&mu_);
    lease_ = *std::move(lease);
    return interval;
  }
  if (IsUnreachable(lease.status())) {
    SetReachable(false, lease.status());
    Report("unreachable",
           absl::StrCat(lease.status().message(), "; will keep trying"),
           /*reachability=*/true);
  } else {
    SetReachable(true, absl::OkStatus());  // It answered, with a refusal.
    Report("refused", absl::StrCat("cannot register \"", options_.name,
                                   "\" again: ", lease.status().message()));
  }
  return options_.retry_interval;
}

void LeaseKeeper::Report(const std::string& state_key,
                         const std::string& message, bool reachability) {
  bool first_state = last_state_.empty();
  if (state_key == last_state_) return;
  last_state_ = state_key;
  // The first "registered" is the normal start, not news.
  if (first_state && state_key == "registered") return;
  if (reachability && options_.on_reachable) return;  // Told there.
  if (options_.on_change) options_.on_change(message);
}

void LeaseKeeper::SetReachable(bool reachable, const absl::Status& status) {
  if (reachable == reachable_) return;
  reachable_ = reachable;
  if (options_.on_reachable) options_.on_reachable(reachable, status);
}

}  // namespace chat::registry
