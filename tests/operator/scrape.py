"""Scrape sluiced's /metrics and parse it with prometheus_client's text-format parser.

Usage: scrape.py URL DOCS_METRICS_MD
Prints JSON: {"families": {documented name: {"type": t, "samples": [[name, labels, value], ...]}},
              "missing": [documented names with no family or no sample],
              "undocumented": [sluice_* families not in the docs]}
"""
import json
import re
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def documented(path):
    names = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\|\s*`(sluice_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|", line)
        if m:
            names.append((m.group(1), m.group(2)))
    return names


def main():
    url, docs = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        body = r.read().decode()
    parsed = {}
    for fam in text_string_to_metric_families(body):
        parsed[fam.name] = fam
    out = {"families": {}, "missing": [], "undocumented": [], "content_type": ctype}
    want = documented(docs)
    known = set()
    for name, kind in want:
        # The parser names counter families without their _total suffix.
        fam_name = name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name
        known.add(fam_name)
        fam = parsed.get(fam_name)
        if fam is None or fam.type != kind or not fam.samples:
            out["missing"].append(name)
            continue
        out["families"][name] = {
            "type": fam.type,
            "samples": [[s.name, s.labels, s.value] for s in fam.samples],
        }
    out["undocumented"] = sorted(n for n in parsed if n.startswith("sluice_") and n not in known)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
