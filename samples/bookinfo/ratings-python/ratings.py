#!/usr/bin/python3
"""Bookinfo's ratings service in Python (standard library only), with the Java Ratings' JSON API:

    GET /ratings/{productId}  -> {"id": productId, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    GET /health               -> {"status": "Ratings is healthy"}

It knows nothing of the mesh: in samples/bookinfo/intercept-demo it runs in a network namespace behind the
standalone proxy, whose iptables rules hand it every inbound connection through port 15006.

Usage: ratings.py [BIND] [PORT]   (default 0.0.0.0 9080). Logs one line per request to stdout:
"GET /ratings/0 from 127.0.0.6 -> 200" (127.0.0.6 is the proxy's inbound passthrough address).
"""
import http.server
import json
import sys

bind = sys.argv[1] if len(sys.argv) > 1 else "0.0.0.0"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 9080


class Ratings(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ratings-python"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.answer(200, {"status": "Ratings is healthy"})
        elif path.startswith("/ratings/"):
            product = path[len("/ratings/"):].split("/", 1)[0]
            if product.isdigit():
                self.answer(200, {"id": int(product), "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
            else:
                self.answer(400, {"error": "please provide numeric product ID"})
        else:
            self.answer(404, {"error": "not found: " + path})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        print("%s %s from %s -> %d" % (self.command, self.path, self.client_address[0], status), flush=True)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.daemon_threads = True
print("ratings-python: listening on %s:%d" % (bind, port), flush=True)
http.server.ThreadingHTTPServer((bind, port), Ratings).serve_forever()
