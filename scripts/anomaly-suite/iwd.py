"""Running iw-detect for the anomaly suite: the binary, the rule set under test, ingest, alerts.

Shared by score.py and fp30.py. Every failure of the binary raises Failure with its command, exit
status and the end of its standard error, so a suite run stops loudly instead of scoring an empty
database.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class Failure(Exception):
    pass


def binary(path=None):
    """The iw-detect binary: --bin, else $IW_DETECT_BIN, else .build/release/iw-detect of the repo."""
    b = path or os.environ.get("IW_DETECT_BIN") or os.path.join(REPO, ".build", "release", "iw-detect")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise Failure(f"no iw-detect binary at {b} (set IW_DETECT_BIN or pass --bin)")
    return os.path.abspath(b)


def clean_env():
    """The environment for the binary without IW_DETECT_* settings (database, rules, config, sinks):
    what runs is only what the suite passes on the command line."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IW_DETECT_")}


def run(cmd, what, **kw):
    p = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, **kw)
    if p.returncode != 0:
        tail = "\n".join((p.stderr or "").strip().splitlines()[-15:])
        raise Failure(f"{what} failed with exit status {p.returncode}: {' '.join(cmd)}\n{tail}")
    return p


def version(bin_):
    return run([bin_, "--version"], "iw-detect --version").stdout.strip()


RULE_START = re.compile(r"^- name:\s*(\S+)\s*$")
ENABLED = re.compile(r"^(\s+)enabled:\s*(true|false)\s*$")


def rules_dir(src, enable=()):
    """A temporary copy of the rule directory `src` with the `enabled: false` line of each rule
    in `enable` set to true. Returns (dir, notes). The caller removes the dir."""
    if not os.path.isdir(src):
        raise Failure(f"rules directory {src} not found (pass --rules-src)")
    out = tempfile.mkdtemp(prefix="iwd-suite-rules-")
    shutil.copytree(src, out, dirs_exist_ok=True)
    wanted, found, flipped, notes = set(enable), set(), set(), []
    for root, _, files in os.walk(out):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, f)
            lines = open(path).read().split("\n")
            changed, current = False, None
            for i, line in enumerate(lines):
                m = RULE_START.match(line)
                if m:
                    current = m.group(1)
                    found.update({current} & wanted)
                    continue
                e = ENABLED.match(line)
                if e and current in wanted and current not in flipped:
                    flipped.add(current)
                    if e.group(2) == "false":
                        lines[i] = f"{e.group(1)}enabled: true"
                        changed = True
                        notes.append(f"{current}: enabled: false -> true ({os.path.relpath(path, out)})")
            if changed:
                open(path, "w").write("\n".join(lines))
    missing = wanted - found
    if missing:
        shutil.rmtree(out)
        raise Failure(f"no rule named {', '.join(sorted(missing))} in {src}")
    for r in sorted(wanted - flipped):
        notes.append(f"{r}: no enabled: line, so it was enabled already")
    return out, notes


def rule_args(rules):
    return [a for r in rules for a in ("--rules", r)]


def rules_list(bin_, rules, config=None):
    cmd = [bin_, "rules", "list", "--json"] + rule_args(rules) + (["--config", config] if config else [])
    return [json.loads(l) for l in run(cmd, "rules list").stdout.splitlines() if l.strip()]


BASELINE_READ = re.compile(r"\bbaseline\b|\bz\(")


def baseline_rules(rule_list):
    """The rules whose condition reads a baseline (baseline.<stat>, baseline(m).<stat>, z(m))."""
    return [r["name"] for r in rule_list if BASELINE_READ.search(r["condition"])]


def compare_with_bundled(bin_, rules, config=None):
    """Rules whose condition differs between `rules` and the binary's own (@bundled): a warning
    that a copied rule directory is not what the binary ships."""
    mine = {r["name"]: r["condition"] for r in rules_list(bin_, rules, config)}
    shipped = {r["name"]: r["condition"] for r in rules_list(bin_, ["@bundled"], config)}
    return sorted(n for n in set(mine) & set(shipped) if mine[n] != shipped[n])


def ingest(bin_, path, db, rules, config=None):
    """Ingests `path` into a fresh database; returns the JSON summary. Fails on a non-zero exit,
    rejected lines, or a summary that cannot be read."""
    cmd = [bin_, "ingest", path, "--db", db, "--json-summary", "--quiet", "--drain-timeout", "0"] + rule_args(rules)
    if config:
        cmd += ["--config", config]
    p = subprocess.run(cmd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr or ""
    if p.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise Failure(f"ingest of {path} failed with exit status {p.returncode}: {' '.join(cmd)}\n{tail}")
    summary = None
    for line in reversed(err.strip().splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
                break
            except ValueError:
                pass
    if summary is None:
        raise Failure(f"ingest of {path}: no JSON summary on standard error:\n{err[-2000:]}")
    if summary.get("rejected"):
        raise Failure(f"ingest of {path} rejected lines: {summary['rejected']} (see iw-detect rejects --db {db})")
    if summary.get("interrupted_by"):
        raise Failure(f"ingest of {path} was interrupted by {summary['interrupted_by']}")
    return summary


def alerts(bin_, db, config=None):
    """Every alert of the database (alerts list --json), oldest first, as parsed objects."""
    cmd = [bin_, "alerts", "list", "--db", db, "--json", "--limit", "100000000"] + (["--config", config] if config else [])
    p = run(cmd, "alerts list")
    if "showing" in p.stderr:
        raise Failure(f"alerts list cut its answer: {p.stderr.strip()}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


Z_TEST = re.compile(r"z\((\w+)\)\)?\s*>\s*([0-9.]+)")


def fired_metrics(alert):
    """The metrics that made an alert fire, read from its evidence: for a z-score test
    (`abs(z(m)) > K`) the metrics whose z passes it; otherwise the metrics whose baseline the
    evidence carries (the ones the condition reads). 'other' when neither applies (e.g. an
    unapproved tool name)."""
    values = alert.get("values") or {}
    cond = alert.get("condition", "")
    z_limits = {m: float(k) for m, k in Z_TEST.findall(cond)}
    out = []
    for key, v in values.items():
        if not key.startswith("baseline.") or not isinstance(v, dict):
            continue
        m = key[len("baseline."):]
        if m in z_limits:
            z = v.get("z")
            if z is not None and abs(z) > z_limits[m]:
                out.append(m)
        else:
            out.append(m)
    return out or ["other"]


def count_metrics(alert_list):
    c = Counter()
    for a in alert_list:
        for m in fired_metrics(a):
            c[m] += 1
    return c
