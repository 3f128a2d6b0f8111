#!/usr/bin/env python3
"""A loopback HTTP receiver for iw-detect's sink tests.

Usage: http_receiver.py PORT_FILE BODIES_FILE [STATUS ...]
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, appends each POST body as one line
to BODIES_FILE, and answers with the given statuses in turn (the last one repeats; default 200).
"""
import http.server
import sys

port_file, bodies_file = sys.argv[1], sys.argv[2]
statuses = [int(s) for s in sys.argv[3:]] or [200]
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        status = statuses[min(count, len(statuses) - 1)]
        count += 1
        with open(bodies_file, "ab") as f:
            f.write(("%d %s " % (status, self.path)).encode() + body.replace(b"\n", b" ") + b"\n")
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
