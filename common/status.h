// Status plumbing shared by every component: absl::Status inside, grpc::Status
// only at the RPC edge, converted here and nowhere else.

#ifndef CHAT_COMMON_STATUS_H_
#define CHAT_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chat {

// Same code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace chat

// Returns from the current function when `expr` yields a non-OK absl::Status.
#define CHAT_RETURN_IF_ERROR(expr)               \
  do {                                           \
    const ::absl::Status chat_status_ = (expr);  \
    if (!chat_status_.ok()) return chat_status_; \
  } while (false)

#define CHAT_STATUS_CONCAT_INNER_(a, b) a##b
#define CHAT_STATUS_CONCAT_(a, b) CHAT_STATUS_CONCAT_INNER_(a, b)

// `CHAT_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an OK StatusOr or
// returns its status.
#define CHAT_ASSIGN_OR_RETURN(lhs, expr)                                    \
  CHAT_ASSIGN_OR_RETURN_IMPL_(CHAT_STATUS_CONCAT_(chat_or_, __LINE__), lhs, \
                              expr)
#define CHAT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // CHAT_COMMON_STATUS_H_
