#!/usr/bin/env python3
"""The HTTP server of test_curl (and of the curl benchmark): Python's http.server, plain or
TLS. Usage: curl_server.py PORT [CERT KEY]. Paths:
  /text            "hello curl" as text/plain; charset=utf-8
  /echo            GET or POST: the method, the X-Test header and the body, one per line
  /redirect/N      N hops of 302 down to /text
  /big/N           N bytes with a Content-Length; /chunked/N: N bytes without one
  /gate            waits until /open was asked (at most 30 s), then answers how many
                   requests were waiting at the gate at once, at most
  /open/N          opens the gate once N requests wait at it (or after 20 s)
"""
import http.server
import ssl
import sys
import threading

gate = threading.Event()
lock = threading.Lock()
waiting = 0
most = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        global waiting, most
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = self.path.split("/")
        if self.path == "/text":
            self.reply(200, b"hello curl")
        elif self.path == "/echo":
            text = "%s\n%s\n" % (self.command, self.headers.get("X-Test", "-"))
            self.reply(200, text.encode() + body)
        elif parts[1] == "redirect":
            hops = int(parts[2])
            where = "/text" if hops <= 1 else "/redirect/%d" % (hops - 1)
            self.reply(302, b"", headers=[("Location", where)])
        elif parts[1] == "big":
            self.reply(200, b"x" * int(parts[2]), "application/octet-stream")
        elif parts[1] == "chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = int(parts[2])
            while left > 0:
                k = min(left, 1000)
                self.wfile.write(b"%x\r\n%s\r\n" % (k, b"y" * k))
                left -= k
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/gate":
            with lock:
                waiting += 1
                most = max(most, waiting)
            opened = gate.wait(30)
            with lock:
                waiting -= 1
                seen = most
            self.reply(200 if opened else 504, b"%d" % seen)
        elif parts[1] == "open":
            want = int(parts[2])
            for _ in range(2000):  # 20 s at most
                with lock:
                    if waiting >= want:
                        break
                threading.Event().wait(0.01)
            gate.set()
            self.reply(200, b"open")
        else:
            self.reply(404, b"no such path")


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.daemon_threads = True
    if len(sys.argv) > 3:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
