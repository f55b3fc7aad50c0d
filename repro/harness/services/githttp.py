#!/usr/bin/env python3
"""A smart-HTTP git server on python3-minimal: each request runs `git http-backend`.

Copied to the git server host and started there (the host image has no web
server and python3-minimal has no http.server). Model: HTTP/1.0, one thread
per connection, one request per connection (`Connection: close`), the request
body (Content-Length or chunked) read whole and handed to the CGI on stdin,
the CGI's answer streamed back as it comes: under packet loss the transfer
crawls exactly as it would from a real server. Smart HTTP lets git clients
apply `http.lowSpeedLimit`/`http.lowSpeedTime`, which git:// does not have.

Usage: githttp.py ROOT PORT   (serves every repository under ROOT)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from typing import BinaryIO

MAX_LINE = 65536


def _read_body(f: BinaryIO, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(f.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while f.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(f.read(size))
            f.readline(MAX_LINE)
    length = int(headers.get("content-length", "0") or 0)
    return f.read(length) if length else b""


def _feed(proc: subprocess.Popen[bytes], body: bytes) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(body)
        proc.stdin.close()
    except OSError:
        pass


def handle(conn: socket.socket, addr: tuple[str, int], root: str) -> None:
    with conn:
        f: BinaryIO = conn.makefile("rb")
        request = f.readline(MAX_LINE).decode("latin-1").split()
        if len(request) < 2:
            return
        method, target = request[0], request[1]
        headers = {}
        while True:
            line = f.readline(MAX_LINE).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        body = _read_body(f, headers)
        path, _, query = target.partition("?")
        env = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": method,
               "PATH_INFO": path, "QUERY_STRING": query, "REMOTE_ADDR": addr[0],
               "CONTENT_TYPE": headers.get("content-type", ""), "CONTENT_LENGTH": str(len(body)),
               "SERVER_PROTOCOL": "HTTP/1.0", "GATEWAY_INTERFACE": "CGI/1.1",
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for h in ("git-protocol", "content-encoding"):
            if h in headers:
                env["HTTP_" + h.upper().replace("-", "_")] = headers[h]
        # unbuffered: the header lines are read byte by byte, so no part of the body can
        # sit in a reader's buffer when the rest is copied with plain reads
        proc = subprocess.Popen(["git", "http-backend"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        threading.Thread(target=_feed, args=(proc, body), daemon=True).start()
        assert proc.stdout is not None
        status, cgi_headers = "200 OK", []
        while True:
            line = proc.stdout.readline(MAX_LINE).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == "status":
                status = value.strip()
            else:
                cgi_headers.append(line.rstrip("\r\n"))
        head = [f"HTTP/1.0 {status}", *cgi_headers, "Connection: close", "", ""]
        try:
            conn.sendall("\r\n".join(head).encode("latin-1"))
            while True:
                chunk = proc.stdout.read(65536)
                if not chunk:
                    break
                conn.sendall(chunk)
        except OSError:
            proc.kill()
        finally:
            proc.wait()


def serve(root: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(64)
    sys.stderr.write(f"repro githttp serving {root} on port {port}\n")
    sys.stderr.flush()
    while True:
        conn, addr = sock.accept()
        threading.Thread(target=handle, args=(conn, addr, root), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
