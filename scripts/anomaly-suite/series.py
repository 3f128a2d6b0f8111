#!/usr/bin/env python3
"""Labeled synthetic series for iw-detect, written as inference-log JSON lines.

Each series is one value per sampling interval (1 s, 1 m, 5 m or 1 h), carried by one metric
field of an otherwise ordinary inference log (`output_tokens`, `inference_latency_ms` or
`risk_score`), plus labeled anomaly windows [start, end) with a kind. The other metrics are
bounded uniform noise (their z-score never reaches 1.8, their p99 never doubles), so every
alert of a baseline rule comes from the series metric. Standard library only, deterministic:
the same --seed gives the same bytes.

Kinds (sigma is the series' noise standard deviation, mu its level; see KINDS below):

  spike_up          6 spikes of 1 or 3 samples, alternately mu + 6 sigma and 3 mu (days 15, 17, ..
                    25 at varying hours; at 1/s spread over the second day).
  dip               6 dips of 1 or 3 samples, alternately mu - 6 sigma and 0.3 mu.
  level_shift_up    +5 sigma from the shift on, to the end; the window is the first 6 h after the
                    shift (12 h at 1/h sampling). Alerts after it are false positives: the new
                    level is the new normal.
  level_shift_down  the same, -5 sigma.
  daily_cycle_missing_peak
                    a daily cycle (amplitude 4 sigma, peak at 14:00 UTC); on two days (one at
                    1/s) 08:00-20:00 stays at the night level. Every value is inside the global
                    range: only a detector that knows the time of day can see it.
  weekly_cycle_flat_weekday
                    the daily cycle on weekdays, the night level all day on Saturday and Sunday;
                    two weekdays are flat like a weekend day (window: the whole UTC day). Not at
                    1/s (its series are two days long).
  slow_drift        from the drift start a linear rise of 1 sigma per day (3 sigma per 6 h at
                    1/s) to the end. The window is the stretch after the drift exceeds 3 sigma,
                    up to the end of the series; alerts before it are false positives.
  pure_noise        Gaussian noise, no window: only false alerts count.
  pure_noise_skewed lognormal noise with the same mean (shape 0.4): what skewed token counts and
                    latencies look like. No window.

Series at 1/s are two days long (anomalies in the second day, after 24 h of history) and carry
output_tokens only, to keep the run short; the others are 28 days (anomalies after day 14, so a
14-day baseline has filled) for each of the three metrics.

Usage: series.py OUT_DIR [--seed N] [--intervals 1s,1m,5m,1h] [--kinds a,b] [--metrics a,b] [--jobs N]
Writes OUT_DIR/<series>.jsonl and OUT_DIR/manifest.json (series, metric, windows, counts).
"""
import argparse
import datetime as dt
import json
import math
import multiprocessing
import os
import random
import sys
import zlib

START = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)  # a Monday, 00:00 UTC
MODEL = "llama-3.1-70b"
USERS = 200
SESSION_EVENTS = 10  # a user's session changes every 10 of their events

# Level and noise of each metric that can carry a series, and how its values are written.
METRICS = {
    "output_tokens": {"mu": 250.0, "sigma": 25.0, "fmt": "int", "lo": 1.0, "hi": 1e9},
    "inference_latency_ms": {"mu": 900.0, "sigma": 60.0, "fmt": "int", "lo": 1.0, "hi": 1e9},
    "risk_score": {"mu": 0.2, "sigma": 0.03, "fmt": "score", "lo": 0.0, "hi": 1.0},
}

# Metrics written from the series metric (total = inference + 10-40 ms): they fire with it.
FOLLOWERS = {"inference_latency_ms": ["total_latency_ms"]}

INTERVALS = {"1s": 1, "1m": 60, "5m": 300, "1h": 3600}

KINDS = [
    "spike_up", "dip", "level_shift_up", "level_shift_down", "daily_cycle_missing_peak",
    "weekly_cycle_flat_weekday", "slow_drift", "pure_noise", "pure_noise_skewed",
]

DAY = 86400
HOUR = 3600

INPUTS = [
    "Summarize the attached quarterly report.", "What is the status of my order?",
    "Draft a reply to the customer about the refund.", "Translate this paragraph to French.",
    "List the open tickets for the support team.", "Explain the renewal terms of the contract.",
]
OUTPUTS = [
    "Here is a short summary of the report.", "Your order has shipped and arrives Friday.",
    "Dear customer, your refund was processed today.", "Voici la traduction du paragraphe.",
    "There are four open tickets in the queue.", "The contract renews yearly unless cancelled.",
]


def plan(kind, interval, days):
    """The series' shape: a list of anomaly windows (start s, end s, note) relative to the
    start, and the parameters value() reads. Times are whole multiples of the interval."""
    short = days <= 2
    n = days * DAY // interval  # samples
    snap = lambda t: (int(t) // interval) * interval
    p = {"windows": [], "spikes": [], "shift": None, "drift": None, "cycle": None, "flat": []}
    region = (snap(DAY + 2 * HOUR), snap(days * DAY - 2 * HOUR)) if short else (15 * DAY, 27 * DAY)
    if kind in ("spike_up", "dip"):
        k = 6
        for j in range(k):
            if short:  # 20 h apart / 6, a few seconds of jitter
                t0 = snap(region[0] + (region[1] - region[0]) * (j + 0.5) / k + (j % 3) * 37)
            else:  # days 15, 17, ..., 25, at varying hours
                t0 = snap(region[0] + 2 * DAY * j + ((7 * j) % 24) * HOUR + 17 * 60)
            length = 1 if j % 2 == 0 else 3
            large = j % 2 == 1 if kind == "spike_up" else j % 2 == 0
            p["spikes"].append((t0, t0 + length * interval, large))
            p["windows"].append((t0, t0 + length * interval, f"{length} sample(s), {'large' if large else 'moderate'}"))
    elif kind in ("level_shift_up", "level_shift_down"):
        t0 = snap(30 * HOUR) if short else 18 * DAY + 9 * HOUR
        w = max(6 * HOUR, 12 * interval)
        p["shift"] = (t0, 5.0 if kind == "level_shift_up" else -5.0)
        p["windows"].append((t0, t0 + w, f"shift {p['shift'][1]:+.0f} sigma, first {w // HOUR} h labeled"))
    elif kind == "daily_cycle_missing_peak":
        p["cycle"] = "daily"
        for d in ([1] if short else [17, 23]):
            a, b = d * DAY + 8 * HOUR, d * DAY + 20 * HOUR
            p["flat"].append((a, b))
            p["windows"].append((a, b, "08:00-20:00 at the night level"))
    elif kind == "weekly_cycle_flat_weekday":
        p["cycle"] = "weekly"
        for d in [16, 22]:  # START is a Monday: day 16 is a Wednesday, day 22 a Tuesday
            a, b = d * DAY, (d + 1) * DAY
            p["flat"].append((a, b))
            p["windows"].append((a, b, "a weekday flat like a weekend"))
    elif kind == "slow_drift":
        t0, rate = (DAY, 3.0 / (6 * HOUR)) if short else (14 * DAY, 1.0 / DAY)  # sigma per second
        p["drift"] = (t0, rate)
        cross = snap(t0 + 3.0 / rate)
        p["windows"].append((cross, n * interval, "drift above 3 sigma, to the end"))
    for a, b, _ in p["windows"]:
        assert 0 <= a < b <= n * interval, (kind, interval, a, b)
    return p


def make_value(kind, metric, p, rng):
    m = METRICS[metric]
    mu, sigma = m["mu"], m["sigma"]
    amp = 4.0 * sigma

    def cycle(t):
        if p["cycle"] is None:
            return 0.0
        hour = (t % DAY) / HOUR
        if any(a <= t < b for a, b in p["flat"]):
            return -amp
        if p["cycle"] == "weekly" and ((START.weekday() + t // DAY) % 7) >= 5:
            return -amp
        return amp * math.cos(2 * math.pi * (hour - 14) / 24)

    def value(t):
        if kind == "pure_noise_skewed":
            s = 0.4
            x = mu * math.exp(s * rng.gauss(0.0, 1.0) - s * s / 2)
        else:
            x = mu + cycle(t) + sigma * rng.gauss(0.0, 1.0)
        if p["shift"] and t >= p["shift"][0]:
            x += p["shift"][1] * sigma
        if p["drift"] and t >= p["drift"][0]:
            x += (t - p["drift"][0]) * p["drift"][1] * sigma
        for a, b, large in p["spikes"]:
            if a <= t < b:
                if kind == "spike_up":
                    x = 3.0 * mu if large else mu + 6.0 * sigma
                else:
                    x = 0.3 * mu if large else mu - 6.0 * sigma
                x += 0.2 * sigma * rng.gauss(0.0, 1.0)
        return min(max(x, m["lo"]), m["hi"])

    return value


def iso(epoch_s):
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_series(path, name, kind, interval, days, metric, seed):
    p = plan(kind, interval, days)
    rng = random.Random(seed)
    noise = random.Random(seed ^ 0x5EED)  # the other fields: their own stream, so the series is the same whatever they draw
    value = make_value(kind, metric, p, rng)
    start = int(START.timestamp())
    n = days * DAY // interval
    user_events = [0] * USERS
    day_prefix = {}
    fmt_score = lambda x: f"{x:.4f}"
    with open(path, "w", buffering=1 << 20) as f:
        for i in range(n):
            t = i * interval
            d, sod = divmod(t, DAY)
            pre = day_prefix.get(d)
            if pre is None:
                pre = day_prefix[d] = (START + dt.timedelta(days=d)).strftime("%Y-%m-%dT")
            ts = f"{pre}{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}.000Z"
            u = int(noise.random() * USERS)
            sess = user_events[u] // SESSION_EVENTS
            user_events[u] += 1
            r = noise.random
            fields = {
                "input_tokens": str(60 + int(r() * 81)),
                "output_tokens": str(200 + int(r() * 101)),
                "inference_latency_ms": str(800 + int(r() * 201)),
                "input_injection_score": fmt_score(r() * 0.1),
                "risk_score": fmt_score(0.15 + r() * 0.1),
            }
            v = value(t)
            fields[metric] = str(int(round(v))) if METRICS[metric]["fmt"] == "int" else fmt_score(v)
            total = int(fields["inference_latency_ms"]) + 10 + int(r() * 31)
            k = int(r() * len(INPUTS))
            f.write(
                f'{{"log_id":"{name}-{i}","timestamp":"{ts}","user_id":"user-{u}","session_id":"sess-{u}-{sess}",'
                f'"source_ip":"10.0.{u % 250}.{1 + u // 250}","model_id":"{MODEL}",'
                f'"user_input":"{INPUTS[k]}","input_tokens":{fields["input_tokens"]},'
                f'"input_injection_score":{fields["input_injection_score"]},'
                f'"model_output":"{OUTPUTS[k]}","output_tokens":{fields["output_tokens"]},'
                f'"output_pii_detected":false,"tool_calls":[],'
                f'"inference_latency_ms":{fields["inference_latency_ms"]},"total_latency_ms":{total},'
                f'"guardrail_triggered":false,"guardrail_action":"allow","risk_score":{fields["risk_score"]}}}\n'
            )
    windows = [
        {"start": iso(start + a), "end": iso(start + b), "start_s": start + a, "end_s": start + b, "kind": kind, "note": note}
        for a, b, note in p["windows"]
    ]
    return {
        "name": name, "kind": kind, "interval": next(k for k, v in INTERVALS.items() if v == interval),
        "interval_s": interval, "days": days, "metric": metric,
        "metric_fields": [metric] + FOLLOWERS.get(metric, []), "file": os.path.basename(path),
        "start": iso(start), "end": iso(start + n * interval), "start_s": start, "end_s": start + n * interval,
        "events": n, "seed": seed, "windows": windows,
    }


def suite(intervals, kinds, metrics):
    """The series of the suite: (name, kind, interval s, days, metric)."""
    out = []
    for iv in intervals:
        interval = INTERVALS[iv]
        for kind in kinds:
            if iv == "1s" and kind == "weekly_cycle_flat_weekday":
                continue  # two days hold no week
            for metric in (["output_tokens"] if iv == "1s" else metrics):
                if iv == "1s" and metric not in metrics:
                    continue
                out.append((f"{kind}-{iv}-{metric}", kind, interval, 2 if iv == "1s" else 28, metric))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="directory for the JSON-lines files and manifest.json")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--intervals", default=",".join(INTERVALS), help="of " + ",".join(INTERVALS))
    ap.add_argument("--kinds", default=",".join(KINDS), help="of " + ",".join(KINDS))
    ap.add_argument("--metrics", default=",".join(METRICS), help="of " + ",".join(METRICS))
    ap.add_argument("--jobs", type=int, default=1, help="series written at once (processes)")
    a = ap.parse_args(argv)
    pick = lambda s, allowed, what: [x for x in s.split(",") if x] if all(x in allowed for x in s.split(",") if x) else sys.exit(
        f"series.py: unknown {what} in '{s}' (known: {', '.join(allowed)})")
    intervals = pick(a.intervals, INTERVALS, "interval")
    kinds = pick(a.kinds, KINDS, "kind")
    metrics = pick(a.metrics, METRICS, "metric")
    os.makedirs(a.out, exist_ok=True)
    jobs = [(os.path.join(a.out, name + ".jsonl"), name, kind, interval, days, metric, (a.seed * 1_000_003) ^ zlib.crc32(name.encode()))
            for name, kind, interval, days, metric in suite(intervals, kinds, metrics)]
    if a.jobs > 1:
        with multiprocessing.Pool(a.jobs) as pool:
            series = pool.starmap(write_series, jobs)
    else:
        series = [write_series(*j) for j in jobs]
    manifest = {"version": 1, "seed": a.seed, "model_id": MODEL, "users": USERS, "metrics": METRICS, "series": series}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"series.py: {len(series)} series, {sum(s['events'] for s in series):,} events, "
          f"{sum(len(s['windows']) for s in series)} windows in {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
