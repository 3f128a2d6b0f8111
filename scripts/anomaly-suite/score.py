#!/usr/bin/env python3
"""Windowed scoring of iw-detect's baseline rules on the labeled series of series.py.

Each series is ingested into a fresh database (`iw-detect ingest FILE --db TMP [--rules ...]
[--config FILE]`), its alerts are read back (`iw-detect alerts list --json`), and the alerts of
the rules under test are scored against the series' labeled windows:

  * A window [start, end) is extended by a tolerance after its end: max(--tolerance-frac of its
    length, --tolerance-samples sampling intervals); by default 10 % or 2 samples. A detector
    that needs a sample or two to react (a rolling mean) is not penalised for it.
  * An alert whose event_time falls in an extended window is a true positive for that window.
    Several alerts in one window detect it once (recall) and none of them is a false positive.
  * An alert outside every extended window is a false positive, also when it comes long after an
    anomaly (a level shift's new level is the new normal: alerting on it days later is noise).
    An alert before a window starts is a false positive too: there is no early credit.
  * recall = detected windows / windows.
  * alert precision = true-positive alerts / alerts.
  * window precision = detected windows / (detected windows + false positives): each detected
    window counts once, each false alert once (the count an operator triages). F1 is computed
    from recall and window precision.
  * detection delay = event time of the first alert in the window - window start (also in
    sampling intervals); reported as median and maximum over detected windows.
  * false alerts per day = false positives / length of the series in days (the whole series,
    its first hours without a ready baseline included).

Series without windows (pure_noise, pure_noise_skewed) contribute false alerts only. Every
figure is computed per rule under test and for all of them together ("all": a window is
detected when any of them alerts in it), per series, and summed per kind, sampling interval,
metric and overall. Alerts are also attributed to the metric that fired (from the evidence's
z-scores); an alert where neither the series' metric nor a field written from it
(total_latency_ms follows inference_latency_ms) fired is counted as off-metric: the suite's other
fields are bounded noise, so there should be none.

The rules under test default to every loaded rule whose condition reads a baseline
(`baseline.`, `baseline(m).`, `z(m)`); --score-rules names them instead. --enable RULE flips
a disabled rule's `enabled: false` in a copy of the repository's rules/ (or --rules-src) and
runs with that copy; without --enable or --rules the binary's own rules (`@bundled`) run: the
shipped defaults.

Usage: score.py [--data DIR] [--bin PATH] [--enable RULE]... [--rules DIR]... [--config FILE]
                [--json OUT] [--per-series] [--jobs N] [--intervals ..] [--kinds ..] [--metrics ..]
Exit status: 0 when scored; 1 when an ingest or alerts list failed or the data is inconsistent.
"""
import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iwd  # noqa: E402
import series as gen  # noqa: E402

ALL = "all"


def epoch(ts):
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def fmt_dur(s):
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def score_alerts(times, s, tol_frac, tol_samples):
    """Scores sorted alert times (epoch s) against series `s`'s windows."""
    iv = s["interval_s"]
    wins = []
    for w in s["windows"]:
        length = w["end_s"] - w["start_s"]
        wins.append((w["start_s"], w["end_s"] + max(tol_frac * length, tol_samples * iv)))
    first = [None] * len(wins)
    tp = fp = fp_before = 0
    first_start = min((a for a, _ in wins), default=None)
    for t in times:
        hit = False
        for i, (a, b) in enumerate(wins):
            if a <= t < b:
                hit = True
                if first[i] is None:
                    first[i] = t
        if hit:
            tp += 1
        else:
            fp += 1
            if first_start is None or t < first_start:
                fp_before += 1
    delays = [None if f is None else f - a for f, (a, _) in zip(first, wins)]
    return {
        "windows": len(wins), "detected": sum(d is not None for d in delays), "alerts": len(times),
        "tp_alerts": tp, "fp": fp, "fp_before_first_window": fp_before, "delays_s": delays,
        "days": (s["end_s"] - s["start_s"]) / 86400, "interval_s": iv,
    }


def figures(r):
    """Ratios of a (summed) score."""
    rec = r["detected"] / r["windows"] if r["windows"] else None
    pa = r["tp_alerts"] / r["alerts"] if r["alerts"] else None
    pw = r["detected"] / (r["detected"] + r["fp"]) if (r["detected"] + r["fp"]) else None
    f1 = 2 * pw * rec / (pw + rec) if rec is not None and pw is not None and (pw + rec) > 0 else (0.0 if rec == 0 else None)
    d = [x for x in r["delays_s"] if x is not None]
    ds = [x / iv for x, iv in zip(r["delays_s"], r["delay_intervals"]) if x is not None] if "delay_intervals" in r else []
    return {
        "recall": rec, "precision_alerts": pa, "precision_windows": pw, "f1": f1,
        "fp_per_day": r["fp"] / r["days"] if r["days"] else None,
        "delay_median_s": statistics.median(d) if d else None, "delay_max_s": max(d) if d else None,
        "delay_median_samples": statistics.median(ds) if ds else None,
    }


def total(rows):
    keys = ("windows", "detected", "alerts", "tp_alerts", "fp", "fp_before_first_window", "days")
    t = {k: sum(r[k] for r in rows) for k in keys}
    t["series"] = len(rows)
    t["delays_s"] = [d for r in rows for d in r["delays_s"]]
    t["delay_intervals"] = [r["interval_s"] for r in rows for _ in r["delays_s"]]
    t.update(figures(t))
    del t["delay_intervals"]
    return t


def run_series(bin_, data, s, rules, config, scored, workdir):
    db = os.path.join(workdir, s["name"] + ".db")
    t0 = time.perf_counter()
    summary = iwd.ingest(bin_, os.path.join(data, s["file"]), db, rules, config)
    if summary["accepted"] != s["events"]:
        raise iwd.Failure(f"{s['name']}: ingest accepted {summary['accepted']} lines, the series has {s['events']}")
    t1 = time.perf_counter()
    alerts = iwd.alerts(bin_, db, config)
    raised = sum(summary["alerts"].values())
    if len(alerts) != raised:
        raise iwd.Failure(f"{s['name']}: alerts list gave {len(alerts)} alerts, the ingest raised {raised}")
    for f in os.listdir(workdir):
        if f.startswith(s["name"] + ".db"):
            os.unlink(os.path.join(workdir, f))
    by_rule = {r: [] for r in scored}
    other_rules = {}
    metrics = {r: {} for r in scored}
    off_metric = 0
    for a in alerts:
        r = a["rule"]
        if r not in by_rule:
            other_rules[r] = other_rules.get(r, 0) + 1
            continue
        by_rule[r].append(epoch(a["event_time"]))
        fired = iwd.fired_metrics(a)
        for m in fired:
            metrics[r][m] = metrics[r].get(m, 0) + 1
        if not set(fired) & set(s.get("metric_fields", [s["metric"]])):
            off_metric += 1
    result = {"name": s["name"], "kind": s["kind"], "interval": s["interval"], "metric": s["metric"], "events": s["events"],
              "ingest_seconds": round(t1 - t0, 3), "suppressed": summary.get("suppressed", {}),
              "alerts_of_other_rules": other_rules, "fired_metrics": metrics, "off_metric": off_metric, "rules": {}}
    for r, times in by_rule.items():
        result["rules"][r] = times
    result["rules"][ALL] = sorted(t for times in by_rule.values() for t in times)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--data", help="series directory (series.py); generated into a temporary one when missing or empty")
    ap.add_argument("--bin", help="iw-detect binary (default: $IW_DETECT_BIN, else .build/release/iw-detect)")
    ap.add_argument("--rules", action="append", default=[], help="rule paths passed to ingest (default: @bundled)")
    ap.add_argument("--rules-src", default=os.path.join(iwd.REPO, "rules"), help="rules copied for --enable (default: the repo's rules/)")
    ap.add_argument("--enable", action="append", default=[], metavar="RULE", help="run with RULE enabled (a copy of --rules-src)")
    ap.add_argument("--config", help="config file passed to ingest")
    ap.add_argument("--score-rules", help="comma-separated rules to score (default: the rules that read a baseline)")
    ap.add_argument("--tolerance-frac", type=float, default=0.1)
    ap.add_argument("--tolerance-samples", type=float, default=2)
    ap.add_argument("--intervals", default=",".join(gen.INTERVALS))
    ap.add_argument("--kinds", default=",".join(gen.KINDS))
    ap.add_argument("--metrics", default=",".join(gen.METRICS))
    ap.add_argument("--seed", type=int, default=11, help="series seed when generating")
    ap.add_argument("--jobs", type=int, default=1, help="series ingested at once")
    ap.add_argument("--json", dest="json_out", help="write every figure as JSON here")
    ap.add_argument("--per-series", action="store_true", help="print the per-series table too")
    ap.add_argument("--label", default="", help="a name for this run in the output")
    a = ap.parse_args(argv)
    try:
        return run(a)
    except iwd.Failure as e:
        print(f"score.py: FAILED: {e}", file=sys.stderr)
        return 1


def run(a):
    started = time.perf_counter()
    bin_ = iwd.binary(a.bin)
    cleanup = []
    try:
        notes = []
        rules = list(a.rules)
        if a.enable:
            if rules:
                raise iwd.Failure("--enable copies --rules-src; pass the directory to copy as --rules-src, not --rules")
            d, notes = iwd.rules_dir(a.rules_src, a.enable)
            cleanup.append(d)
            rules = [d]
            differ = iwd.compare_with_bundled(bin_, rules, a.config)
            if differ:
                notes.append(f"warning: {a.rules_src} differs from the binary's own rules in: {', '.join(differ)}")
        if not rules:
            rules = ["@bundled"]
        loaded = iwd.rules_list(bin_, rules, a.config)
        scored = a.score_rules.split(",") if a.score_rules else iwd.baseline_rules(loaded)
        unknown = set(scored) - {r["name"] for r in loaded}
        if unknown:
            notes.append(f"note: not loaded (disabled or absent), scored as silent: {', '.join(sorted(unknown))}")

        data, generated = a.data, False
        if not data or not os.path.exists(os.path.join(data, "manifest.json")):
            generated = True
            if not data:
                data = tempfile.mkdtemp(prefix="iwd-suite-data-")
                cleanup.append(data)
            gen.main([data, "--seed", str(a.seed), "--intervals", a.intervals, "--kinds", a.kinds, "--metrics", a.metrics,
                      "--jobs", str(a.jobs)])
        manifest = json.load(open(os.path.join(data, "manifest.json")))
        want = lambda s: (s["interval"] in a.intervals.split(",") and s["kind"] in a.kinds.split(",")
                          and s["metric"] in a.metrics.split(","))
        series = [s for s in manifest["series"] if want(s)]
        if not series:
            raise iwd.Failure(f"no series in {data} match --intervals/--kinds/--metrics")
        gen_done = time.perf_counter()

        work = tempfile.mkdtemp(prefix="iwd-suite-db-")
        cleanup.append(work)
        with ThreadPoolExecutor(max(1, a.jobs)) as pool:
            raw = list(pool.map(lambda s: run_series(bin_, data, s, rules, a.config, scored, work), series))
        ingest_done = time.perf_counter()
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)

    by_name = {s["name"]: s for s in series}
    keys = scored + [ALL]
    per_series = []
    for r in raw:
        s = by_name[r["name"]]
        row = {k: v for k, v in r.items() if k != "rules"}
        row["scores"] = {}
        for k in keys:
            sc = score_alerts(r["rules"][k], s, a.tolerance_frac, a.tolerance_samples)
            sc.update(figures(dict(sc, delay_intervals=[s["interval_s"]] * len(sc["delays_s"]))))
            row["scores"][k] = sc
        row["off_metric_alerts"] = r["off_metric"]
        row["windows"] = s["windows"]
        per_series.append(row)

    def group(field):
        out = {}
        for value in dict.fromkeys(r[field] for r in per_series):
            rows = [r for r in per_series if r[field] == value]
            out[value] = {k: total([r["scores"][k] for r in rows]) for k in keys}
        return out

    kind_metric = {}
    for kind in dict.fromkeys(r["kind"] for r in per_series):
        for metric in dict.fromkeys(r["metric"] for r in per_series):
            rows = [r for r in per_series if r["kind"] == kind and r["metric"] == metric]
            if rows:
                kind_metric.setdefault(kind, {})[metric] = {k: total([r["scores"][k] for r in rows]) for k in keys}
    agg = {"kind": group("kind"), "interval": group("interval"), "metric": group("metric"), "kind_metric": kind_metric,
           "overall": {k: total([r["scores"][k] for r in per_series]) for k in keys}}
    finished = time.perf_counter()
    report = {
        "label": a.label, "binary": bin_, "version": iwd.version(bin_), "rules": a.rules or ["@bundled"], "enabled": a.enable,
        "config": a.config, "scored_rules": scored, "notes": notes,
        "tolerance": {"frac": a.tolerance_frac, "samples": a.tolerance_samples},
        "seed": manifest.get("seed"), "series_count": len(per_series), "events": sum(r["events"] for r in per_series),
        "data": None if generated and not a.data else data,
        "seconds": {"generate": round(gen_done - started, 1) if generated else None, "ingest_and_alerts": round(ingest_done - gen_done, 1),
                    "total": round(finished - started, 1)},
        "aggregates": agg, "series": per_series,
    }
    print_report(report, a.per_series)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"


def table(headers, rows):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(cells))
    return "\n".join([line(headers), line(["-" * x for x in w])] + [line(r) for r in rows])


MAIN_HEADERS = ["", "series", "windows", "detected", "recall", "alerts", "FP", "FP/day", "P(alerts)", "P(windows)", "F1",
                "delay med", "delay max", "med samples"]


def main_row(name, t):
    return [name, t["series"], t["windows"], t["detected"], pct(t["recall"]), f"{t['alerts']:,}", f"{t['fp']:,}",
            num(t["fp_per_day"], 2 if (t["fp_per_day"] or 0) < 10 else 1), pct(t["precision_alerts"]), pct(t["precision_windows"]), num(t["f1"], 3),
            fmt_dur(t["delay_median_s"]), fmt_dur(t["delay_max_s"]), num(t["delay_median_samples"])]


def print_report(rep, per_series):
    agg, scored = rep["aggregates"], rep["scored_rules"]
    out = [f"iw-detect anomaly suite{' (' + rep['label'] + ')' if rep['label'] else ''}: {rep['series_count']} series, "
           f"{rep['events']:,} events; {rep['binary']} ({rep['version']})",
           f"rules: {' '.join(rep['rules'])}" + (f", enabled: {', '.join(rep['enabled'])}" if rep["enabled"] else " (shipped defaults)")
           + (f", config {rep['config']}" if rep["config"] else ""),
           f"scored: {', '.join(scored)}; window tolerance max({rep['tolerance']['frac']:.0%} of the window, "
           f"{rep['tolerance']['samples']:g} samples)"]
    out += [f"  {n}" for n in rep["notes"]]
    for title, field in (("kind", "kind"), ("sampling interval", "interval"), ("metric", "metric")):
        out += ["", f"All scored rules together, by {title}:",
                table(MAIN_HEADERS, [main_row(k, v[ALL]) for k, v in agg[field].items()] + [main_row("overall", agg["overall"][ALL])])]
    metrics = list(dict.fromkeys(m for v in agg["kind_metric"].values() for m in v))
    cell = lambda t: "" if t is None else f"{pct(t['recall'])} / {num(t['fp_per_day'], 2 if (t['fp_per_day'] or 0) < 10 else 1)}"
    out += ["", "All scored rules together, by kind and metric: recall / false alerts per day",
            table(["kind"] + metrics, [[k] + [cell((v.get(m) or {}).get(ALL)) for m in metrics] for k, v in agg["kind_metric"].items()]
                  + [["overall"] + [cell(agg["metric"][m][ALL]) for m in metrics]])]
    out += ["", "Per rule, overall:",
            table(MAIN_HEADERS, [main_row(r, agg["overall"][r]) for r in scored] + [main_row(ALL, agg["overall"][ALL])])]
    out += ["", "Per rule and kind: recall / false alerts per day / median delay",
            table(["kind"] + scored,
                  [[k] + [f"{cell(v[r])} / {fmt_dur(v[r]['delay_median_s'])}" for r in scored] for k, v in agg["kind"].items()]
                  + [["overall"] + [f"{cell(agg['overall'][r])} / {fmt_dur(agg['overall'][r]['delay_median_s'])}" for r in scored]])]
    off = sum(r["off_metric_alerts"] for r in rep["series"])
    others = {}
    for r in rep["series"]:
        for k, n in r["alerts_of_other_rules"].items():
            others[k] = others.get(k, 0) + n
    out += ["", f"off-metric alerts (the series' metric did not fire): {off}; alerts of rules not scored: "
            + (", ".join(f"{k} {n}" for k, n in sorted(others.items())) or "none")]
    if per_series:
        rows = []
        for r in rep["series"]:
            t = r["scores"][ALL]
            rows.append([r["name"], r["events"], t["windows"], t["detected"], f"{t['alerts']:,}", f"{t['fp']:,}",
                         f"{t['fp_before_first_window']:,}", num(t["fp_per_day"]), pct(t["precision_windows"]),
                         " ".join(fmt_dur(d) for d in t["delays_s"]) or "-"])
        out += ["", "Per series, all scored rules:",
                table(["series", "events", "windows", "detected", "alerts", "FP", "FP before", "FP/day", "P(windows)", "delays"], rows)]
    s = rep["seconds"]
    gen_part = f"{s['generate']}s generating, " if s["generate"] is not None else f"series from {rep['data']}, "
    out += ["", f"time: {gen_part}{s['ingest_and_alerts']}s ingesting and reading alerts, {s['total']}s in all"]
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
