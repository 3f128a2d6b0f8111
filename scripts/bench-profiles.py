"""`scripts/bench profiles`: ingest of the quiet (realistic) and storm profiles against simdjson's
parse-only floors on the same files, runs interleaved, one warm-up. Whole-process figures: wall
time from the ingest's start to its exit (startup and the final commit included), peak RSS from
the kernel's accounting of the finished process (wait4). Quiet and storm run on one thread
(--threads 1); the quiet file also runs with --threads 2 (reading and decoding on a thread of their
own), and with `rollups: false` (one thread), for the dashboard rollups' cost."""
import json, os, re, statistics, subprocess, sys, time

binary, parse, quiet, storm, out, runs = sys.argv[1:7]
runs = int(runs)
ONE_FIELD = "timestamp"  # the one field every event has


def count_lines(path):
    with open(path, "rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


NO_ROLLUPS = os.path.join(out, "no-rollups.yaml")
with open(NO_ROLLUPS, "w") as f:
    f.write("rollups: false\n")


def ingest(data, name, *extra):
    db = os.path.join(out, name + ".db")
    for suffix in ("", "-wal", "-shm", "-lock"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    log = os.path.join(out, name + ".summary")
    with open(log, "w") as err:
        start = time.perf_counter()
        p = subprocess.Popen([binary, "ingest", data, "--db", db, "--json-summary", *extra], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
    text = open(log).read()
    if status != 0:
        sys.exit(f"ingest {data} failed ({status}):\n{text[-2000:]}")
    summary = json.loads(text.strip().splitlines()[-1])
    return {"rate": summary["lines_read"] / elapsed, "rss": usage.ru_maxrss / 1024, "alerts": sum(summary["alerts"].values())}


def floor(data, *mode):
    r = subprocess.run([parse, *mode, data], check=True, capture_output=True, text=True).stdout
    return float(re.search(r": (\d+) lines/s", r).group(1))


files = {"quiet": quiet, "storm": storm}
lines = {k: count_lines(p) for k, p in files.items()}
results = []
for run in range(runs + 1):  # run 0 is the warm-up
    r = {}
    for k, path in files.items():
        r[k] = ingest(path, k, "--threads", "1")
    r["quiet_two"] = ingest(quiet, "quiet-two", "--threads", "2")
    r["quiet_norollups"] = ingest(quiet, "quiet-norollups", "--config", NO_ROLLUPS, "--threads", "1")
    for k, path in files.items():
        r[k + "_one"] = floor(path, "--one-field", ONE_FIELD)
        r[k + "_dom"] = floor(path)
    if run > 0:
        results.append(r)
    print(f"  run {run}{' (warm-up)' if run == 0 else ''}: quiet {r['quiet']['rate']:,.0f}, two-core {r['quiet_two']['rate']:,.0f}, storm {r['storm']['rate']:,.0f} lines/s",
          file=sys.stderr)


def spread(values, fmt, unit):
    return f"{fmt(statistics.median(values))} {unit} [{fmt(min(values))} - {fmt(max(values))}]"


rate = lambda values: spread(values, lambda x: f"{x:,.0f}", "lines/s")
pct = lambda values: spread(values, lambda x: f"{100 * x:.1f}", "%")
print(f"runs: {runs}, interleaved, after a warm-up; medians [min - max]; release build, whole process, one thread unless said")
for k, path in files.items():
    size = os.path.getsize(path)
    alerts = {r[k]["alerts"] for r in results} | ({r["quiet_two"]["alerts"] for r in results} if k == "quiet" else set())
    a = results[0][k]["alerts"]
    print(f"input {k:5}: {path}: {lines[k]} lines, {size / 1e6:.0f} MB ({size / lines[k]:.0f} bytes/line), "
          f"{a} alerts ({100 * a / lines[k]:.2f} % of events){'' if len(alerts) == 1 else ' ALERT COUNTS DIFFER: ' + str(sorted(alerts))}")
for k in files:
    print(f"ingest {k:5}: {rate([r[k]['rate'] for r in results])}, peak RSS {spread([r[k]['rss'] for r in results], lambda x: f'{x:.0f}', 'MiB')}")
print(f"ingest quiet without the dashboard's rollups (rollups: false): {rate([r['quiet_norollups']['rate'] for r in results])}")
print(f"ingest quiet two-core (--threads 2): {rate([r['quiet_two']['rate'] for r in results])}, peak RSS {spread([r['quiet_two']['rss'] for r in results], lambda x: f'{x:.0f}', 'MiB')}")
for k in files:
    print(f"simdjson one-field ({ONE_FIELD}), {k} file: {rate([r[k + '_one'] for r in results])}")
    print(f"simdjson DOM, {k} file: {rate([r[k + '_dom'] for r in results])}")
print("ratios, per run:")
print(f"  quiet / one-field parse: {pct([r['quiet']['rate'] / r['quiet_one'] for r in results])}  (goal: at least 50 %)")
print(f"  quiet / DOM parse:       {pct([r['quiet']['rate'] / r['quiet_dom'] for r in results])}")
print(f"  storm / one-field parse: {pct([r['storm']['rate'] / r['storm_one'] for r in results])}")
print(f"  two-core / one-field parse: {pct([r['quiet_two']['rate'] / r['quiet_one'] for r in results])}  (goal: at least 100 %)")
print(f"  two-core / quiet:        {pct([r['quiet_two']['rate'] / r['quiet']['rate'] for r in results])}")
print(f"  quiet / quiet without rollups: {pct([r['quiet']['rate'] / r['quiet_norollups']['rate'] for r in results])}  (the rollups' cost; goal: at least 95 %)")
print(f"  storm / quiet:           {pct([r['storm']['rate'] / r['quiet']['rate'] for r in results])}  (goal: at least 50 %)")
