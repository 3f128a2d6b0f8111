#!/usr/bin/env python3
"""False alerts per day on 30 days of ordinary generated traffic.

Writes `iw-detect generate --profile realistic --no-attacks` (about 9.5 s between events, 300
users, tool calls, multi-paragraph outputs; no attack is planted) cut at exactly --days days of
event time, ingests it into a fresh database once with the binary's own rules (`@bundled`: the
shipped defaults) and once with each --enable rule enabled (default: behavioral_anomaly, which
ships disabled), and reports per rule alerts per day, detections folded by dedup per day, and
per metric that fired (from the alert's evidence: for z-score rules the metrics whose |z| passed,
else the metrics whose baseline the rule read; one alert can name several metrics). Every alert
is a false alert: the traffic is benign. Alerts of users named attacker-* (what the generator
plants when attacks are on) would be left out and counted; with --no-attacks there are none.

Usage: fp30.py [--bin PATH] [--days 30] [--profile realistic] [--seed 42] [--enable RULE]...
               [--rules-src DIR] [--config FILE] [--json OUT] [--keep DIR]
Exit status 0 when measured, 1 when generate, ingest or alerts list failed.
"""
import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iwd  # noqa: E402

MEAN_INTERVAL_S = {"realistic": 9.0, "storm": 9.0, "default": 2.0}  # the generator's defaults (it jitters around them)
TS = re.compile(rb'"timestamp":"([^"]+)"')


def epoch(ts):
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def generate(bin_, path, a):
    """Writes generated traffic to `path`, cut at a.days days after its first event. Returns
    (lines, first event time, last event time)."""
    interval = (a.interval_ms / 1000) if a.interval_ms else MEAN_INTERVAL_S[a.profile]
    lines = math.ceil(a.days * 86400 / interval * 1.05) + 100  # the jitter averages out; cut below
    cmd = [bin_, "generate", "--profile", a.profile, "--no-attacks", "--lines", str(lines), "--seed", str(a.seed)]
    if a.interval_ms:
        cmd += ["--interval-ms", str(a.interval_ms)]
    if a.users:
        cmd += ["--users", str(a.users)]
    p = subprocess.Popen(cmd, env=iwd.clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = last = None
    n = 0
    cut = False
    with open(path, "wb") as out:
        for line in p.stdout:
            m = TS.search(line)
            if not m:
                p.kill()
                raise iwd.Failure(f"generate wrote a line without a timestamp: {line[:200]!r}")
            t = epoch(m.group(1).decode())
            if first is None:
                first = t
            if t >= first + a.days * 86400:
                cut = True
                break
            out.write(line)
            last = t
            n += 1
    if cut:
        p.kill()
        p.wait()
    else:
        err = p.stderr.read().decode(errors="replace")
        if p.wait() != 0:
            raise iwd.Failure(f"generate failed with exit status {p.returncode}: {' '.join(cmd)}\n{err[-2000:]}")
        raise iwd.Failure(f"generate's {n} lines span {(last - first) / 86400:.2f} days, fewer than {a.days}")
    p.stdout.close()
    p.stderr.close()
    return n, first, last


def measure(bin_, data, events, days, rules, config, workdir, name, shown_rules, also=()):
    db = os.path.join(workdir, name + ".db")
    t0 = time.perf_counter()
    summary = iwd.ingest(bin_, data, db, rules, config)
    if summary["accepted"] != events:
        raise iwd.Failure(f"ingest accepted {summary['accepted']} of {events} lines")
    seconds = time.perf_counter() - t0
    alerts = iwd.alerts(bin_, db, config)
    if len(alerts) != sum(summary["alerts"].values()):
        raise iwd.Failure(f"alerts list gave {len(alerts)} alerts, the ingest raised {sum(summary['alerts'].values())}")
    loaded = iwd.rules_list(bin_, rules, config)
    baseline_rules = iwd.baseline_rules(loaded)
    attackers = sum(1 for x in alerts if (x.get("user_id") or "").startswith("attacker"))
    alerts = [x for x in alerts if not (x.get("user_id") or "").startswith("attacker")]
    per_rule = {}
    loaded_names = {x["name"] for x in loaded}
    for r in dict.fromkeys(baseline_rules + [x for x in also if x not in loaded_names] + sorted({x["rule"] for x in alerts})):
        mine = [x for x in alerts if x["rule"] == r]
        metrics = iwd.count_metrics(mine)
        per_rule[r] = {
            "reads_baseline": r in baseline_rules, "loaded": r in loaded_names, "alerts": len(mine), "alerts_per_day": len(mine) / days,
            "suppressed": summary.get("suppressed", {}).get(r, 0),
            "suppressed_per_day": summary.get("suppressed", {}).get(r, 0) / days,
            "by_metric_per_day": {m: n / days for m, n in metrics.most_common()},
            "by_metric": dict(metrics.most_common()),
        }
    return {"name": name, "rules": shown_rules, "ingest_seconds": round(seconds, 2), "alerts": len(alerts),
            "alerts_per_day": len(alerts) / days, "baseline_excluded": summary.get("baseline_excluded", 0),
            "attacker_alerts_left_out": attackers, "per_rule": per_rule}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--bin")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--profile", default="realistic", choices=sorted(MEAN_INTERVAL_S))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--interval-ms", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--enable", action="append", default=None, metavar="RULE",
                    help="a second run with these rules enabled (default: behavioral_anomaly; 'none' for no second run)")
    ap.add_argument("--rules-src", default=os.path.join(iwd.REPO, "rules"))
    ap.add_argument("--config")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--keep", help="keep the generated traffic in this directory")
    a = ap.parse_args(argv)
    enable = [r for r in (a.enable if a.enable is not None else ["behavioral_anomaly"]) if r != "none"]
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix="iwd-fp30-")
    cleanup = [work]
    try:
        bin_ = iwd.binary(a.bin)
        data = os.path.join(a.keep or work, f"{a.profile}-{a.days:g}d.jsonl")
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
        events, first, last = generate(bin_, data, a)
        days = a.days
        runs = [measure(bin_, data, events, days, ["@bundled"], a.config, work, "shipped defaults", ["@bundled"], enable)]
        notes = []
        if enable:
            d, notes = iwd.rules_dir(a.rules_src, enable)
            cleanup.append(d)
            differ = iwd.compare_with_bundled(bin_, [d], a.config)
            if differ:
                notes.append(f"warning: {a.rules_src} differs from the binary's own rules in: {', '.join(differ)}")
            runs.append(measure(bin_, data, events, days, [d], a.config, work, "enabled: " + ", ".join(enable),
                                [f"a copy of {a.rules_src}"]))
    except iwd.Failure as e:
        print(f"fp30.py: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
    report = {"binary": bin_, "version": iwd.version(bin_), "profile": a.profile, "seed": a.seed, "days": days,
              "events": events, "events_per_day": events / days, "first_event": dt.datetime.fromtimestamp(first, dt.timezone.utc).isoformat(),
              "last_event": dt.datetime.fromtimestamp(last, dt.timezone.utc).isoformat(), "config": a.config,
              "notes": notes, "runs": runs, "seconds": round(time.perf_counter() - started, 1)}
    print_report(report)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def print_report(rep):
    out = [f"False alerts on {rep['days']:g} days of ordinary traffic: generate --profile {rep['profile']} --no-attacks "
           f"--seed {rep['seed']}, {rep['events']:,} events ({rep['events_per_day']:,.0f} a day); {rep['binary']} ({rep['version']})"]
    out += [f"  {n}" for n in rep["notes"]]
    for run in rep["runs"]:
        out += ["", f"{run['name']} ({' '.join(run['rules'])}): {run['alerts']:,} alerts, {run['alerts_per_day']:,.1f} a day; "
                    f"{run['baseline_excluded']:,} events kept out of the baseline"]
        rows = []
        for r, v in run["per_rule"].items():
            metrics = ", ".join(f"{m} {n:,.1f}" for m, n in v["by_metric_per_day"].items()) or "-"
            label = r if v["loaded"] else r + " (not loaded: disabled)"
            rows.append([label + ("" if v["reads_baseline"] or not v["loaded"] else " (no baseline)"), f"{v['alerts']:,}", f"{v['alerts_per_day']:,.1f}",
                         f"{v['suppressed_per_day']:,.1f}", metrics])
        w = [max(len(h), *(len(x[i]) for x in rows)) if rows else len(h)
             for i, h in enumerate(["rule", "alerts", "per day", "folded/day", "per day by metric that fired"])]
        line = lambda c: "  ".join(s.ljust(w[i]) if i in (0, 4) else s.rjust(w[i]) for i, s in enumerate(c))
        out += [line(["rule", "alerts", "per day", "folded/day", "per day by metric that fired"]), line(["-" * x for x in w])]
        out += [line(x) for x in rows]
    out += ["", "(an alert can name several metrics: total_latency_ms follows inference_latency_ms, risk_score follows "
            "input_injection_score in the generator)", f"time: {rep['seconds']}s"]
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
