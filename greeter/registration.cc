#include "greeter/registration.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace chat::greeter {
absl::StatusOr<std::unique_ptr<Registration>> Registration::Start(
    std::unique_ptr<registry::RegistryClient> client,
    RegistrationOptions options, const Clock& clock) {
  std::unique_ptr<Registration> registration(
      new Registration(std::move(client), std::move(options), clock));
  absl::Status status = registration->TryRegister();
  if (registry::IsUnreachable(status)) {
    registration->Event(absl::StrCat(
        status.message(), "; serving directly, will register \"",
        registration->options_.keeper.name, "\" once the registry answers"));
    Registration* raw = registration.get();
    registration->retry_loop_.emplace(
        clock, registration->options_.keeper.retry_interval,
        [raw]() -> std::optional<Millis> { return raw->Retry(); });
    return registration;
  }
  if (!status.ok()) return status;
  return registration;
}

Registration::Registration(std::unique_ptr<registry::RegistryClient> client,
                           RegistrationOptions options, const Clock& clock)
    : client_(std::move(client)),
      options_(std::move(options)),
      clock_(clock),
      status_(absl::UnavailableError("not registered yet")) {}

Registration::~Registration() { Stop(); }

void Registration::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  // At most one attempt in flight, bounded by the client's timeout.
  if (retry_loop_) retry_loop_->Stop();
  std::unique_ptr<registry::LeaseKeeper> keeper;
  {
    absl::MutexLock lock(&mu_);
    keeper = std::move(keeper_);
    status_ = absl::CancelledError("registration stopped");
  }
  if (keeper != nullptr) {
    // Best effort: if the registry does not answer, the lease expires on its
    // own within its TTL.
    Event(absl::StrCat("unregistering \"", options_.keeper.name, "\""));
    keeper->Stop();
  }
}

absl::Status Registration::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

bool Registration::Settled() const {
  return status_.code() != absl::StatusCode::kUnavailable;
}

absl::Status Registration::AwaitSettled(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &Registration::Settled), timeout);
  return status_;
}

registry::Lease Registration::lease() const {
  absl::MutexLock lock(&mu_);
  return keeper_ == nullptr ? registry::Lease{} : keeper_->lease();
}

absl::Status Registration::TryRegister() {
  absl::StatusOr<std::unique_ptr<registry::LeaseKeeper>> keeper =
      registry::LeaseKeeper::Start(client_.get(), options_.keeper, clock_);
  if (!keeper.ok()) return keeper.status();
  Event(absl::StrCat("registered as ", options_.keeper.name, " -> ",
                     (*keeper)->address(), " in the registry at ",
                     client_->current_address(), " (lease ",
                     (*keeper)->lease().entry.ttl.count() / 1000.0, " s)"));
  absl::MutexLock lock(&mu_);
  keeper_ = *std::move(keeper);
  status_ = absl::OkStatus();
  return absl::OkStatus();
}

std::optional<Millis> Registration::Retry() {
  absl::Status status = TryRegister();
  if (status.ok()) return std::nullopt;
  // Reported once already.
  if (registry::IsUnreachable(status)) return options_.keeper.retry_interval;
  {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }
  Event(absl::StrCat("registry refused \"", options_.keeper.name,
                     "\": ", status.message()));
  if (options_.on_refused) options_.on_refused(status);
  return std::nullopt;
}

void Registration::Event(const std::string& message) const {
  if (options_.keeper.on_change) options_.keeper.on_change(message);
}

}  // namespace chat::greeter
