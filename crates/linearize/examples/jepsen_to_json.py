#!/usr/bin/env python3
"""Convert a Jepsen register history (history.edn) to palisade's JSON history format.

    pip install edn_format          # tested with edn_format 0.8.0
    python3 jepsen_to_json.py history.edn > history.json            # one register
    python3 jepsen_to_json.py --keyed history.edn > history.json    # jepsen.independent [k v]
    palisade check history.json

Each Jepsen op map becomes one event of the same process, type and f. Ops of non-integer
processes (the nemesis) are dropped. With --keyed, each value is a [k v] tuple: k becomes
"key" and v the value (so a cas value is [k [old new]]). Errors (:error) are kept as strings;
palisade checks a failed cas only when its error is "mismatch", otherwise a :fail means "did
not happen" exactly as in Knossos. :time is kept when it never decreases; otherwise the order
of the file, which is Jepsen's real-time order, is used alone.
"""
import json
import sys
from collections.abc import Mapping, Sequence, Set

import edn_format
from edn_format import Keyword


def plain(x):
    """EDN value -> JSON value (keywords become their names, without the colon)."""
    if isinstance(x, Keyword):
        return x.name
    if isinstance(x, Mapping):
        return {str(plain(k)): plain(v) for k, v in x.items()}
    if isinstance(x, (Sequence, Set)) and not isinstance(x, str):
        return [plain(v) for v in x]
    return x


def read_ops(text):
    # Newer Jepsen prints ops as #jepsen.history.Op{...} records; older ones as plain maps.
    edn_format.add_tag("jepsen.history.Op", lambda m: m)
    forms = edn_format.loads_all(text)
    if len(forms) == 1 and isinstance(forms[0], Sequence):
        forms = forms[0]
    return [plain(f) for f in forms]


def convert(ops, keyed):
    events = []
    for op in ops:
        if not isinstance(op.get("process"), int):
            continue
        event = {"process": op["process"], "type": op["type"], "f": op["f"]}
        value = op.get("value")
        if keyed:
            if not (isinstance(value, list) and len(value) == 2):
                sys.exit(f"--keyed: expected a [k v] value, found {value!r} in {op!r}")
            event["key"], value = value
        event["value"] = value
        if op.get("error") is not None:
            error = op["error"]
            event["error"] = error if isinstance(error, str) else json.dumps(error)
        if isinstance(op.get("time"), int):
            event["time"] = op["time"]
        events.append(event)
    times = [e.get("time") for e in events]
    if None in times or any(a > b for a, b in zip(times, times[1:])):
        for e in events:
            e.pop("time", None)
    return {"model": "kv", "operations": events}


def main():
    args = [a for a in sys.argv[1:] if a != "--keyed"]
    if len(args) != 1:
        sys.exit(__doc__)
    with open(args[0]) as f:
        ops = read_ops(f.read())
    history = convert(ops, "--keyed" in sys.argv[1:])
    print('{"model": "kv", "operations": [')
    print(",\n".join(json.dumps(e) for e in history["operations"]))
    print("]}")


if __name__ == "__main__":
    main()
