#!/usr/bin/env python3
"""A small registry that misbehaves on purpose, serving one OCI layout (Python stdlib only).

- /v2/ and everything under it want an anonymous bearer token: 401 with
  `WWW-Authenticate: Bearer realm=".../token",service="flaky",scope=...`; /token hands one out.
- Blob GETs answer 307 to http://localhost:PORT/storage/<digest> (another host name, as S3-backed
  registries do); a request there that carries Authorization is refused (credentials must not
  follow a redirect to another host).
- The first /storage GET of every blob is cut off halfway (the connection closes early);
  later GETs honour `Range: bytes=N-` with 206, so a client must resume.
- GET /stats returns how many storage requests and ranged requests were served.

Usage: flaky_registry.py LAYOUT_DIR PORT_FILE  (writes the chosen port to PORT_FILE)"""
import http.server, json, os, socketserver, sys, threading

layout, port_file = sys.argv[1], sys.argv[2]
TOKEN = "flaky-token-123"
stats = {"storage": 0, "ranged": 0, "cut": 0}
seen = set()
lock = threading.Lock()

with open(os.path.join(layout, "index.json")) as f:
    index = json.load(f)
tags = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m for m in index["manifests"]}


def blob_path(digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        host = self.headers.get("Host")
        if self.path.startswith("/token"):
            return self.send(200, json.dumps({"token": TOKEN}).encode(), {"Content-Type": "application/json"})
        if self.path == "/stats":
            return self.send(200, json.dumps(stats).encode())
        if self.path.startswith("/storage/"):
            return self.storage(self.path[len("/storage/"):])
        if not self.path.startswith("/v2/"):
            return self.send(404)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            challenge = f'Bearer realm="http://{host}/token",service="flaky",scope="repository:flaky/image:pull"'
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}',
                             {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
        if self.path == "/v2/":
            return self.send(200, b"{}")
        parts = self.path[len("/v2/"):].split("/")
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            desc = tags.get(ref) or next((m for m in index["manifests"] if m["digest"] == ref), None)
            if desc is None:
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            with open(blob_path(desc["digest"]), "rb") as f:
                body = f.read()
            return self.send(200, body, {"Content-Type": desc["mediaType"], "Docker-Content-Digest": desc["digest"]})
        if kind == "blobs":
            if ref.startswith("sha256:") and len(ref) == 71 and os.path.exists(blob_path(ref)):
                # Manifests' referenced blobs that are themselves manifests are fetched as manifests.
                # Another host name for the same server: curl must drop the Authorization header.
                port = host.rsplit(":", 1)[1]
                return self.send(307, b"", {"Location": f"http://localhost:{port}/storage/{ref}"})
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
        self.send(404)

    def storage(self, digest):
        if self.headers.get("Authorization"):
            return self.send(400, b"credentials were forwarded to the storage host")
        with open(blob_path(digest), "rb") as f:
            data = f.read()
        with lock:
            stats["storage"] += 1
            first = digest not in seen
            seen.add(digest)
        rng = self.headers.get("Range")
        if first and len(data) > 2048:
            # Promise everything, deliver half, hang up.
            with lock:
                stats["cut"] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if rng and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0])
            with lock:
                stats["ranged"] += 1
            return self.send(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
        self.send(200, data, {"Accept-Ranges": "bytes"})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
