"""The lab's greeter client (Lab 4, Distributed Software Systems, UNIBO
2024/25), as the lab wrote it: stubs generated from the lab's greet.proto,
stub.Greet(GreetRequest(name=x)), print the reply.

The one change: the target may be given as the first argument (the lab
hard-coded localhost:50051, which stays the default), so tests can point it at
a greeter on a free port. Everything on the wire is the lab's.
"""

import sys

import grpc

import greet_pb2
import greet_pb2_grpc


def run(x, target="localhost:50051"):
    channel = grpc.insecure_channel(target)
    stub = greet_pb2_grpc.GreetServiceStub(channel)
    response = stub.Greet(greet_pb2.GreetRequest(name=x))
    print("Server response:", response.message)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
    x = input("What's your name? ")
    run(x, target)
