"""Holds every packet of one netfilter queue for a fixed time, then lets it go on: a link's propagation delay.

This machine's kernel has no netem (CONFIG_NET_SCH_NETEM is not set), but it has NFQUEUE. An iptables rule
in a test namespace queues the packets leaving its link; this process, run in that namespace, learns of
each one (its id only: the bytes stay in the kernel) and accepts it `delay` microseconds later. The delay is
the same for every packet, so they leave in order, and one batch verdict lets go of all that are due.
GSO packets are queued whole. Node has no netlink socket, and Python's standard library has one.

usage: delay-line.py QUEUE DELAY_US   (prints "ready" once bound; runs until killed)
"""

import os
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_GSO = 1, 4
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1
SOL_NETLINK, NETLINK_NO_ENOBUFS, SO_RCVBUFFORCE = 270, 5, 33


def attribute(kind: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attributes
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body


def configure(sock: socket.socket, queue: int, attributes: bytes) -> None:
    """Sends one config message and raises if the kernel refuses it."""
    sock.send(message(NFQNL_MSG_CONFIG, queue, attributes, NLM_F_REQUEST | NLM_F_ACK))
    reply = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", reply)
    if kind == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", reply, 16)
        if error != 0:
            raise OSError(-error, f"nfqueue config refused: {os.strerror(-error)}")


def packet_ids(data: bytes):
    """The packet id of every queued-packet notice in one read."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            return
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            at = offset + 20
            while at + 4 <= offset + length:
                size, attr = struct.unpack_from("=HH", data, at)
                if size < 4:
                    break
                if attr & 0x7FFF == NFQA_PACKET_HDR:
                    yield struct.unpack_from("!I", data, at + 4)[0]
                at += (size + 3) & ~3
        offset += (length + 3) & ~3


def main() -> None:
    queue, delay = int(sys.argv[1]), int(sys.argv[2]) / 1e6
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    # A notice lost to a full buffer is harmless: the next batch verdict lets its packet go too.
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    configure(sock, queue, attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
    configure(sock, queue, attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
    configure(sock, queue, attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 16384)))
    flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO
    configure(sock, queue, attribute(NFQA_CFG_MASK, struct.pack("!I", flags)) + attribute(NFQA_CFG_FLAGS, struct.pack("!I", flags)))
    sock.setblocking(False)
    print("ready", flush=True)

    due: list[tuple[float, int]] = []  # (time to let go, packet id), in arrival order
    first = 0
    buffer = bytearray(1 << 20)
    while True:
        wait = None if first == len(due) else max(0.0, due[first][0] - time.monotonic())
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            for _ in range(256):  # then let go of what is due, even under a flood
                try:
                    size = sock.recv_into(buffer)
                except BlockingIOError:
                    break
                arrived = time.monotonic() + delay
                due.extend((arrived, packet) for packet in packet_ids(bytes(buffer[:size])))
        now = time.monotonic()
        last = None
        while first < len(due) and due[first][0] <= now:
            last = due[first][1]
            first += 1
        if last is not None:
            sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, last))))
        if first > 4096 and first * 2 > len(due):
            del due[:first]
            first = 0


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
