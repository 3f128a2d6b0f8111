#!/usr/bin/env python3
"""A loopback HTTP recorder for iw-detect's sink tests: stands in for PagerDuty, Slack, Splunk HEC,
Elastic, Logstash, Sentinel and webhook receivers.

Usage: http_recorder.py PORT_FILE REQUESTS_FILE [--port N] [ANSWER ...]

Binds 127.0.0.1 (on port N, or a free one), writes the port to PORT_FILE, and appends every request
to REQUESTS_FILE as one JSON object per line: {"method", "path", "headers", "body", "status", "at"}
("body" is the text; "at" the time it arrived, Unix seconds). Answers in turn (the last repeats):
    200 (or any status)   that status, empty body
    429:SECONDS           429 with Retry-After: SECONDS
    hang                  never answers (the connection stays open)
    body:STATUS:TEXT      that status with TEXT as a JSON body
Default: 200.
"""
import http.server
import json
import os
import sys
import threading
import time

args = sys.argv[1:]
port_file, requests_file = args[0], args[1]
rest = args[2:]
port = 0
if rest[:1] == ["--port"]:
    port = int(rest[1])
    rest = rest[2:]
answers = rest or ["200"]
count = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out at once: without it the answer waits for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def handle_any(self):
        global count
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            answer = answers[min(count, len(answers) - 1)]
            count += 1
        status = 200
        extra = {}
        text = b""
        if answer == "hang":
            status = 0
        elif answer.startswith("429:"):
            status = 429
            extra["Retry-After"] = answer.split(":", 1)[1]
        elif answer.startswith("body:"):
            _, s, t = answer.split(":", 2)
            status, text = int(s), t.encode()
        else:
            status = int(answer)
        record = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": body.decode("utf-8", "replace"), "status": status, "at": time.time()}
        with lock:
            with open(requests_file, "a") as f:
                f.write(json.dumps(record) + "\n")
        if status == 0:
            time.sleep(3600)
            return
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        if text:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_POST = do_PUT = do_GET = handle_any

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", port), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
