#!/usr/bin/env python3
"""Posts sequence-numbered inference-log events to an HTTP input at a steady rate.

Usage: http_load.py URL --rate R --connections C --seconds S [--acked FILE] [--start N]
                    [--retry] [--token T] [--report]

Each event carries log_id "seq-N" and a field `seq` = N (N counts from --start). Each
connection is a keep-alive HTTP/1.1 client on its own thread, paced so the connections together
send R requests per second. With --acked, the sequence number of every event answered 200 is
appended to FILE (flushed at once, so a killed server's acknowledgements are all there). With
--retry, a request that fails (connection refused or reset, 503) is sent again after 50 ms until
it is answered 200: the load survives the server being killed and restarted. --report prints
latency percentiles (of answered requests, from just before the request is written to the end
of the answer) and the achieved rate as JSON on stdout.
"""
import argparse, http.client, json, threading, time, urllib.parse

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--acked")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--retry", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port, path = u.hostname, u.port or 80, u.path or "/"
    lock = threading.Lock()
    acked = open(a.acked, "a") if a.acked else None
    latencies, counts = [], {"ok": 0, "failed": 0, "retried": 0, "status": {}}
    seq = [a.start]
    total = int(a.rate * a.seconds)
    interval = a.connections / a.rate
    began = time.monotonic()

    def take():
        with lock:
            if seq[0] >= a.start + total:
                return None
            seq[0] += 1
            return seq[0] - 1

    def worker(k):
        conn = None
        next_at = began + k * interval / a.connections
        while True:
            n = take()
            if n is None:
                return
            ts = time.time()
            body = json.dumps({"log_id": "seq-%d" % n, "seq": n, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % int(ts % 1 * 1000),
                               "user_id": "u-%d" % (n % 50), "session_id": "s-%d" % (n % 200), "input_tokens": 10 + n % 90,
                               "output_tokens": 100 + n % 400, "model_id": "m-1", "input_injection_score": 0.01})
            headers = {"Content-Type": "application/json"}
            if a.token:
                headers["Authorization"] = "Bearer " + a.token
            while True:
                now = time.monotonic()
                if now < next_at:
                    time.sleep(next_at - now)
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, port, timeout=10)
                    t0 = time.perf_counter()
                    conn.request("POST", path, body, headers)
                    r = conn.getresponse()
                    r.read()
                    dt = time.perf_counter() - t0
                    status = r.status
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                    status = None
                with lock:
                    counts["status"][str(status)] = counts["status"].get(str(status), 0) + 1
                    if status == 200:
                        counts["ok"] += 1
                        latencies.append(dt)
                        if acked:
                            acked.write("%d\n" % n)
                            acked.flush()
                    elif not a.retry:
                        counts["failed"] += 1
                if status == 200 or not a.retry:
                    break
                with lock:
                    counts["retried"] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    if a.report:
        latencies.sort()
        pct = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3) if latencies else None
        print(json.dumps({"requests": total, "ok": counts["ok"], "failed": counts["failed"], "retried": counts["retried"],
                          "status": counts["status"], "seconds": round(elapsed, 2), "rate": round(counts["ok"] / elapsed, 1),
                          "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1.0)}))

if __name__ == "__main__":
    main()
