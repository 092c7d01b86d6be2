"""Resolves a name in the registry, for greeter_e2e.sh (chatctl is not a
dependency of this test). Prints the address, or NOT_FOUND; exits 1 on any
other error. Needs the stubs of proto/registry.proto on PYTHONPATH.

Usage: registry_resolve.py REGISTRY_HOST:PORT NAME
"""

import sys

import grpc

from proto import registry_pb2
from proto import registry_pb2_grpc


def main():
    registry, name = sys.argv[1], sys.argv[2]
    with grpc.insecure_channel(registry) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        try:
            response = stub.Resolve(registry_pb2.ResolveRequest(name=name),
                                    timeout=5)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                print("NOT_FOUND")
                return 0
            print(f"{e.code()}: {e.details()}", file=sys.stderr)
            return 1
    print(response.entry.address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
