#include "tests/bench/etcd_workloads.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace chat::bench {
namespace {

const std::string& Value() {
  static const auto* const kValue = new std::string(64, 'v');
  return *kValue;
}

// What each caller of an etcd workload holds; as UnaryCaller in
// workloads.cc, for etcd's stubs.
template <typename Request, typename Response>
struct EtcdCaller {
  etcdserverpb::KV::Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  Request request;
  Response response;
  std::mt19937_64 random;
};

template <typename Request, typename Response>
class EtcdWorkload : public Workload {
 protected:
  using Caller = EtcdCaller<Request, Response>;

  EtcdWorkload(const Channels& channels, int callers) : callers_(callers) {
    for (const auto& channel : channels) {
      stubs_.push_back(etcdserverpb::KV::NewStub(channel));
    }
    for (int i = 0; i < callers; ++i) {
      callers_[i].stub = stubs_[i % stubs_.size()].get();
      callers_[i].random.seed(static_cast<uint64_t>(i) * 7919 + 17);
    }
  }

  Caller& Prepare(int caller) {
    Caller& c = callers_[caller];
    c.context = std::make_unique<grpc::ClientContext>();
    c.context->set_deadline(std::chrono::system_clock::now() +
                            kDefaultCallDeadline);
    c.response.Clear();
    return c;
  }

  static std::function<void(grpc::Status)> Reply(DoneCallback done) {
    return [done = std::move(done)](const grpc::Status& status) {
      done(status.ok() ? std::string()
                       : absl::StrCat("grpc code ", status.error_code()));
    };
  }

  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs_;
  std::vector<Caller> callers_;
};

class EtcdPutWorkload final
    : public EtcdWorkload<etcdserverpb::PutRequest, etcdserverpb::PutResponse> {
 public:
  EtcdPutWorkload(const Channels& channels, int callers)
      : EtcdWorkload(channels, callers) {
    for (size_t i = 0; i < callers_.size(); ++i) {
      callers_[i].request.set_key(absl::StrCat("/bench/put/", i));
      callers_[i].request.set_value(Value());
    }
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    c.stub->async()->Put(c.context.get(), &c.request, &c.response,
                         Reply(std::move(done)));
  }
};

class EtcdRangeWorkload final
    : public EtcdWorkload<etcdserverpb::RangeRequest,
                          etcdserverpb::RangeResponse> {
 public:
  EtcdRangeWorkload(const Channels& channels, int callers, int count)
      : EtcdWorkload(channels, callers), count_(count) {
    for (Caller& c : callers_) c.request.set_serializable(true);
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    c.request.set_key(EtcdRangeKey(static_cast<int>(c.random() % count_)));
    c.stub->async()->Range(c.context.get(), &c.request, &c.response,
                           Reply(std::move(done)));
  }

 private:
  const int count_;
};

}  // namespace

std::string EtcdRangeKey(int i) {
  return absl::StrFormat("/bench/range/%08d", i);
}

absl::Status FillEtcd(const std::shared_ptr<grpc::Channel>& channel,
                      int count) {
  auto stub = etcdserverpb::KV::NewStub(channel);
  for (int i = 0; i < count; ++i) {
    etcdserverpb::PutRequest request;
    request.set_key(EtcdRangeKey(i));
    request.set_value(Value());
    etcdserverpb::PutResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    grpc::Status status = stub->Put(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("filling etcd: ", status.error_message()));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<Workload> NewEtcdPutWorkload(const Channels& channels,
                                             int callers) {
  return std::make_unique<EtcdPutWorkload>(channels, callers);
}

std::unique_ptr<Workload> NewEtcdRangeWorkload(const Channels& channels,
                                               int callers, int count) {
  return std::make_unique<EtcdRangeWorkload>(channels, callers, count);
}

}  // namespace chat::bench
