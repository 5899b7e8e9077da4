# A tiny HTTP server for the netns tests: answers every request with STATUS and a body naming itself and the
# client's address, and appends "METHOD PATH CLIENT_IP" to LOG. Usage: server.py BIND PORT NAME STATUS LOG
import http.server, sys

bind, port, name, status, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        body = ("%s saw %s\n" % (name, self.client_address[0])).encode()
        with open(log, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.client_address[0]))
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = handle_one

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer((bind, port), Handler).serve_forever()
