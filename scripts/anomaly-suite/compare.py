#!/usr/bin/env python3
"""Before and after: the figures of two scripts/bench-anomaly --out directories side by side.

Usage: compare.py BEFORE_DIR AFTER_DIR
For each suite run found in both (suite-shipped.json, suite-enabled.json): per kind and per
sampling interval for all scored rules together, and per rule overall: recall, false alerts per
day, window precision, F1 and median delay, before -> after. For fp30.json: alerts per day per
rule and run.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score import fmt_dur, num, pct, table  # noqa: E402


def load(d, name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None


def pair(f, b, a, key):
    x = f(b.get(key)) if b else "-"
    y = f(a.get(key)) if a else "-"
    return f"{x} -> {y}"


def suite_rows(before, after, groups):
    rows = []
    for label, get in groups:
        b, a = get(before), get(after)
        rows.append([label, pair(pct, b, a, "recall"), pair(num, b, a, "fp_per_day"), pair(pct, b, a, "precision_windows"),
                     pair(lambda x: num(x, 3), b, a, "f1"), pair(fmt_dur, b, a, "delay_median_s")])
    return rows


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    bdir, adir = argv
    out = []
    for name in ("suite-shipped.json", "suite-enabled.json"):
        b, a = load(bdir, name), load(adir, name)
        if not (b and a):
            continue
        out.append(f"{name}: {b['version']} -> {a['version']}; scored {', '.join(b['scored_rules'])} -> {', '.join(a['scored_rules'])}")
        headers = ["", "recall", "FP/day", "P(windows)", "F1", "delay med"]
        for field in ("kind", "interval"):
            keys = list(dict.fromkeys(list(b["aggregates"][field]) + list(a["aggregates"][field])))
            groups = [(k, (lambda r, k=k: r["aggregates"][field].get(k, {}).get("all"))) for k in keys]
            groups.append(("overall", lambda r: r["aggregates"]["overall"]["all"]))
            out += [f"all scored rules, by {field}:", table(headers, suite_rows(b, a, groups)), ""]
        rules = list(dict.fromkeys(b["scored_rules"] + a["scored_rules"]))
        groups = [(r, (lambda x, r=r: x["aggregates"]["overall"].get(r))) for r in rules]
        out += ["per rule, overall:", table(headers, suite_rows(b, a, groups)), ""]
    b, a = load(bdir, "fp30.json"), load(adir, "fp30.json")
    if b and a:
        out.append(f"fp30.json: false alerts per day on {b['days']:g} -> {a['days']:g} days of ordinary traffic")
        rows = []
        for i, run in enumerate(b["runs"]):
            other = a["runs"][i] if i < len(a["runs"]) else {"per_rule": {}}
            for r in dict.fromkeys(list(run["per_rule"]) + list(other["per_rule"])):
                x, y = run["per_rule"].get(r), other["per_rule"].get(r)
                rows.append([run["name"], r, pair(num, x, y, "alerts_per_day")])
        out += [table(["run", "rule", "alerts/day"], rows)]
    if not out:
        sys.exit(f"compare.py: no figures found in both {bdir} and {adir}")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
