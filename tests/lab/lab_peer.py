"""The lab's peer (Lab 4, chat.proto), made scriptable for tests.

Serves ChattingService under NAME on 127.0.0.1:PORT as the lab's Chatter did,
printing each received message as one JSON line; reads commands on stdin:
  info HOST:PORT        GetInformation, prints {"info": sender}
  send HOST:PORT TEXT   SendMessage(time, sender, msg), prints {"sent": TEXT}
                        or {"error": ...}
Stubs come from the lab's own chat.proto (tests/lab/proto/chat.proto): no
field beyond time, sender and msg exists for this peer.
"""

import json
import sys
from concurrent import futures
from datetime import datetime

import grpc

import chat_pb2
import chat_pb2_grpc

TIME_FORMAT = "%H:%M"


class ChattingServiceServicer(chat_pb2_grpc.ChattingServiceServicer):
    def __init__(self, name):
        self.name = name

    def SendMessage(self, request, context):
        print(json.dumps({"received": request.msg, "sender": request.sender,
                          "time": request.time}), flush=True)
        return chat_pb2.NullMsg()

    def GetInformation(self, request, context):
        return chat_pb2.Message(time=datetime.now().strftime(TIME_FORMAT),
                                sender=self.name, msg="OK")


def main():
    name, port = sys.argv[1], int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=5))
    chat_pb2_grpc.add_ChattingServiceServicer_to_server(
        ChattingServiceServicer(name), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(json.dumps({"listening": port}), flush=True)
    for line in sys.stdin:
        words = line.rstrip("\n").split(" ", 2)
        try:
            with grpc.insecure_channel(words[1]) as channel:
                stub = chat_pb2_grpc.ChattingServiceStub(channel)
                if words[0] == "info":
                    reply = stub.GetInformation(chat_pb2.NullMsg(), timeout=10)
                    print(json.dumps({"info": reply.sender}), flush=True)
                elif words[0] == "send":
                    stub.SendMessage(chat_pb2.Message(
                        time=datetime.now().strftime(TIME_FORMAT),
                        sender=name, msg=words[2]), timeout=10)
                    print(json.dumps({"sent": words[2]}), flush=True)
        except grpc.RpcError as error:
            print(json.dumps({"error": str(error.code())}), flush=True)
    server.stop(1)


if __name__ == "__main__":
    main()
