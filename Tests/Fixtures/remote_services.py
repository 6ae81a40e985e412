"""Services on the test's "remote" host (a network namespace beyond the node's uplink).

An HTTP responder that tells each client the address it came from, and a DNS responder that
answers A queries from a fixed table. Prints "ready" once both listen. Test use only.
"""
import socket
import struct
import sys
import threading

HTTP_PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
NAMES = {b"svc.test": "192.0.2.1"}


def serve_http(s):
    while True:
        c, addr = s.accept()
        try:
            c.settimeout(5)
            c.recv(4096)
            body = ("from " + addr[0] + "\n").encode()
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        finally:
            c.close()


def answer(query):
    ident, _flags, qd = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while query[pos]:
        n = query[pos]
        labels.append(query[pos + 1 : pos + 1 + n])
        pos += 1 + n
    question = query[12 : pos + 5]
    qtype = struct.unpack("!H", query[pos + 1 : pos + 3])[0]
    name = b".".join(labels).lower()
    address = NAMES.get(name)
    if address is None or qtype != 1:
        rcode = 3 if address is None else 0
        return struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, 0, 0, 0) + question
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + record


def serve_dns(sock):
    while True:
        data, peer = sock.recvfrom(512)
        try:
            sock.sendto(answer(data), peer)
        except (IndexError, struct.error):
            pass


dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("0.0.0.0", 53))
threading.Thread(target=serve_dns, args=(dns,), daemon=True).start()
# Both listen before "ready" is printed: the tests connect as soon as they read it.
web = socket.socket()
web.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
web.bind(("0.0.0.0", HTTP_PORT))
web.listen(256)
threading.Thread(target=serve_http, args=(web,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
