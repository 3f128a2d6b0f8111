#!/usr/bin/env python3
"""A log writer for the tail tests: runs a list of steps against files in a folder.

    log_writer.py DIR STEPS_JSON

Steps (JSON arrays):
    ["write", FILE, FIRST, LAST, DELAY]  append events FIRST..LAST-1 (one line each, flushed),
                                         DELAY seconds apart (optional, default 0)
    ["half", FILE, N, SECONDS]            append the first half of event N, sleep, then the rest
    ["rename", FROM, TO]                  rotation by rename
    ["copy", FROM, TO]                    the copy step of copytruncate
    ["truncate", FILE]                    truncation in place
    ["delete", FILE]
    ["sleep", SECONDS]

Event N is {"log_id": "e<N>", "user_id": "u<N>", "timestamp": <2026-11-01 + N seconds>, ...}.
"""
import json
import os
import shutil
import sys
import time


def event(n):
    t = time.gmtime(1793491200 + n)
    return json.dumps({
        "log_id": "e%d" % n, "session_id": "s%d" % (n % 7), "user_id": "u%d" % n,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", t),
        "input_tokens": 10 + n % 13, "output_tokens": 100 + n % 37, "input_injection_score": 0.01,
        "model_id": "m-1", "tool_calls": [], "risk_score": 0.1,
    }) + "\n"


def main():
    folder, steps = sys.argv[1], json.loads(sys.argv[2])
    path = lambda name: os.path.join(folder, name)
    for step in steps:
        op = step[0]
        if op == "write":
            delay = step[4] if len(step) > 4 else 0
            with open(path(step[1]), "a") as f:
                for n in range(step[2], step[3]):
                    f.write(event(n))
                    f.flush()
                    if delay:
                        time.sleep(delay)
        elif op == "half":
            line = event(step[2])
            with open(path(step[1]), "a") as f:
                f.write(line[: len(line) // 2])
                f.flush()
                time.sleep(step[3])
                f.write(line[len(line) // 2:])
                f.flush()
        elif op == "rename":
            os.rename(path(step[1]), path(step[2]))
        elif op == "copy":
            shutil.copyfile(path(step[1]), path(step[2]))
        elif op == "truncate":
            with open(path(step[1]), "r+") as f:
                f.truncate(0)
        elif op == "delete":
            os.unlink(path(step[1]))
        elif op == "sleep":
            time.sleep(step[1])
        else:
            sys.exit("unknown step %r" % (step,))


if __name__ == "__main__":
    main()
