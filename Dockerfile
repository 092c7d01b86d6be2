# One image with all four binaries (chat-registry, chat-peer, chat-greeter,
# chatctl); docker-compose.yml runs each service from it. docs/docker.md
# explains the choices.
#
# Both stages start from debian:bookworm-slim, pulled as usual. A machine that
# cannot pull images makes that tag locally first: scripts/make-base-image.

# ---- build: the -dev packages and a Release build of the four binaries ----
FROM debian:bookworm-slim AS build

# Only what compiling needs. scripts/install-deps also installs the test and
# CI tools (clang-format, python3-grpcio, debootstrap, ...), which would make
# this layer much bigger and slower for nothing; GoogleTest stays because
# CMakeLists.txt requires it at configure time. golang-etcd-server-dev is only
# there for etcd's .proto files (proto/etcd generates the C++ client stubs
# from them, so chat-registry gets --store etcd); it drags in Go sources that
# never leave this stage.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libsqlitecpp-dev libsqlite3-dev libboost-program-options-dev libedit-dev \
      libsodium-dev libicu-dev \
      libgtest-dev libgmock-dev \
      golang-etcd-server-dev golang-github-gogo-protobuf-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# CHAT_WERROR=OFF: a new compiler warning must not break a user's image
# build; the native CI builds are the ones that enforce -Werror.
# CHAT_ETCD=ON: fail here, loudly, if etcd's protos were not found, rather
# than ship a registry without --store etcd.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHAT_WERROR=OFF -DCHAT_ETCD=ON >/dev/null \
 && cmake --build /build --target chat-registry chat-peer chat-greeter chatctl \
 && mkdir /out \
 && cp /build/bin/chat-registry /build/bin/chat-peer /build/bin/chat-greeter /build/bin/chatctl /out/ \
 && strip /out/*

# ---- runtime: the shared libraries the binaries link, nothing else ----
FROM debian:bookworm-slim

# The runtime packages of the -dev packages above (SQLiteCpp is linked
# statically in bookworm; Abseil, c-ares, RE2, ... come in as dependencies of
# libgrpc++1.51; libicu72: what chat-peer's screen may show, and which names
# look alike). tzdata: the zones TZ can name (docker-compose passes the
# host's TZ), so chat-peer shows the user's local time. bookworm's base image
# has it already (priority required); named here so it stays when that changes.
# etcd-server and etcd-client: the etcd members of docker-compose.cluster.yml
# run from this same image, and etcdctl does their health checks and backups
# (docs/cluster.md); both are static Go binaries, about 40 MB together.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libsqlite3-0 libboost-program-options1.74.0 libedit2 \
      libsodium23 libicu72 \
      openssl tzdata \
      etcd-server etcd-client \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid, so a volume's files keep one owner across image rebuilds.
# /data holds the registry's database and the peers' outboxes and inboxes
# (/data/peers, one file per name); a named volume mounted there starts with
# this directory's owner. /certs and /ca: the certificates and the CA key that
# docker-compose's one-shot certs service makes (openssl, scripts/make-certs).
RUN groupadd --gid 10001 chat \
 && useradd --uid 10001 --gid chat --create-home --home-dir /home/chat \
      --shell /usr/sbin/nologin chat \
 && mkdir -p /data/peers /certs /ca && chown -R chat:chat /data /certs /ca \
 && chmod 0700 /ca

COPY --from=build /out/ /usr/local/bin/
COPY scripts/make-certs /usr/local/bin/make-certs
# Fails the build if a library is missing from the list above.
RUN ! ldd /usr/local/bin/chat-registry /usr/local/bin/chat-peer \
        /usr/local/bin/chat-greeter /usr/local/bin/chatctl | grep 'not found'

USER chat
WORKDIR /home/chat
ENV CHAT_REGISTRY_DB=/data/registry.db CHAT_PEER_DATA_DIR=/data/peers
EXPOSE 50050 50051
CMD ["chat-registry"]
