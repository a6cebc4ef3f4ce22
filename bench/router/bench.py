#!/usr/bin/env python3
"""Helper for bench/router/run (standard library only).

Subcommands:
  ports N                 print N distinct free TCP ports on 127.0.0.1
  check URL               exit 0 iff a GET returns 200 (prints the failure otherwise)
  probe URL ...           send N GETs on fresh connections and check the bodies
  parse FILE ...          turn one wrk --latency output into a JSON line
  report ...              aggregate the JSON lines, write router.json, print a table
"""

from __future__ import annotations

import argparse
import collections
import datetime
import http.client
import json
import re
import socket
import statistics
import sys
import urllib.parse

# Canonical target order; also the order used in the table and JSON.
ALL_TARGETS = ("direct", "ramp", "haproxy", "nginx")
# (numerator, denominator) pairs whose per-round ratios are reported.
RATIO_PAIRS = (("ramp", "haproxy"), ("ramp", "nginx"))

# wrk prints durations with these suffixes (see its format_time helper).
_UNIT_TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


# --------------------------------------------------------------------------
# ports / check / probe
# --------------------------------------------------------------------------


def cmd_ports(args: argparse.Namespace) -> int:
    # Keep every socket bound until all are chosen so the ports are distinct.
    socks = []
    try:
        for _ in range(args.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()
    return 0


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """One GET on a fresh connection; returns (status, body)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def cmd_check(args: argparse.Namespace) -> int:
    try:
        status, _ = http_get(args.url, args.timeout)
    except (OSError, http.client.HTTPException) as exc:
        print(f"{type(exc).__name__}: {exc}")
        return 1
    if status != 200:
        print(f"HTTP {status}")
        return 1
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Check a path answers 200 and that the bodies show the expected split.

    Fresh connections are used on purpose: that works whether a proxy picks
    the revision per request or per connection, so a failure here really means
    the weights are not configured (or a backend is unreachable).
    """
    counts: collections.Counter[str] = collections.Counter()
    for i in range(args.requests):
        try:
            status, body = http_get(args.url, args.timeout)
        except (OSError, http.client.HTTPException) as exc:
            print(f"{args.name}: request {i + 1} failed: {type(exc).__name__}: {exc}")
            return 1
        if status != 200:
            print(f"{args.name}: request {i + 1} returned HTTP {status}")
            return 1
        counts[body.decode("utf-8", "replace").strip()] += 1

    seen = ", ".join(f"{k!r}={v}" for k, v in sorted(counts.items()))
    total = sum(counts.values())
    problems = []
    if args.expect is not None:
        if set(counts) != {args.expect}:
            problems.append(f"expected only {args.expect!r}")
    else:
        unexpected = set(counts) - {"v1", "v2"}
        v1, v2 = counts["v1"], counts["v2"]
        if unexpected:
            problems.append(f"unexpected bodies {sorted(unexpected)}")
        if v1 == 0 or v2 == 0:
            problems.append("both v1 and v2 must be seen (is the 95/5 split configured?)")
        # 95/5 over ~200 requests gives ~10 v2; a share far above that means
        # the weights were ignored (e.g. a plain 50/50 round robin).
        elif v2 / total > args.max_minor_share:
            problems.append(
                f"v2 share {v2 / total:.1%} is above {args.max_minor_share:.0%}; weights look wrong"
            )
    if problems:
        print(f"{args.name}: FAILED over {total} requests ({seen}): " + "; ".join(problems))
        return 1
    share = f", v2 share {counts['v2'] / total:.1%}" if args.expect is None else ""
    print(f"{args.name}: ok, {total} x 200 ({seen}{share})")
    return 0


# --------------------------------------------------------------------------
# wrk output parsing
# --------------------------------------------------------------------------


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"unrecognised wrk duration {text!r}")
    # wrk prints at most 10ns resolution; rounding drops float noise.
    return round(float(m.group(1)) * _UNIT_TO_MS[m.group(2)], 5)


def parse_wrk(text: str) -> dict:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)\s*$", text, re.M)
    if not rps:
        raise ValueError("no 'Requests/sec:' line (did wrk run with --latency and finish?)")
    pct = {m.group(1): to_ms(m.group(2)) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M)}
    if "99" not in pct:
        raise ValueError("no '99%' latency line (wrk must run with --latency)")
    total = re.search(r"^\s*(\d+) requests in (\S+), (\S+) read", text, re.M)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()))) if sock else {
        "connect": 0, "read": 0, "write": 0, "timeout": 0,
    }
    non2xx_m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non_2xx = int(non2xx_m.group(1)) if non2xx_m else 0
    return {
        "rps": float(rps.group(1)),
        "p50_ms": pct.get("50"),
        "p75_ms": pct.get("75"),
        "p90_ms": pct.get("90"),
        "p99_ms": pct["99"],
        "requests": int(total.group(1)) if total else None,
        "elapsed_s": round(to_ms(total.group(2)) / 1e3, 3) if total else None,
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
        "errors": non_2xx + sum(socket_errors.values()),
    }


def cmd_parse(args: argparse.Namespace) -> int:
    with open(args.file, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    try:
        rec = parse_wrk(text)
    except ValueError as exc:
        print(f"cannot parse wrk output {args.file}: {exc}\n--- output ---\n{text}", file=sys.stderr)
        return 1
    rec = {"round": args.round, "position": args.position, "target": args.target, **rec}
    print(json.dumps(rec))
    flag = "" if rec["errors"] == 0 else f"  <-- {rec['errors']} ERRORS"
    print(
        f"  round {args.round} {args.target:<8} {rec['rps']:>11,.1f} req/s"
        f"  p50 {rec['p50_ms']:.3f} ms  p99 {rec['p99_ms']:.3f} ms{flag}",
        file=sys.stderr,
    )
    return 0


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def _rnd(value, digits):
    return None if value is None else round(value, digits)


def _setting_value(key: str, raw: str):
    if raw == "":
        return None
    if key in ("targets",):
        return raw.split(",")
    return int(raw) if re.fullmatch(r"-?\d+", raw) else raw


def _put(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cmd_report(args: argparse.Namespace) -> int:
    targets = [t for t in ALL_TARGETS if t in args.targets.split(",")]
    with open(args.runs, encoding="utf-8") as fh:
        runs = [json.loads(line) for line in fh if line.strip()]

    # ---- per-round figures ------------------------------------------------
    by_round: dict[int, list[dict]] = collections.defaultdict(list)
    for rec in runs:
        by_round[rec["round"]].append(rec)
    rounds = []
    for rnum in sorted(by_round):
        recs = sorted(by_round[rnum], key=lambda r: r["position"])
        results = {r["target"]: {k: v for k, v in r.items() if k not in ("round", "position", "target")} for r in recs}
        ratios = {}
        # Every target against haproxy (for the table) plus the ramp pairs.
        pairs = {(t, "haproxy") for t in targets if t != "haproxy"} | set(RATIO_PAIRS)
        for a, b in sorted(pairs):
            if a in results and b in results:
                ratios[f"{a}_vs_{b}_rps_ratio"] = _rnd(_ratio(results[a]["rps"], results[b]["rps"]), 4)
                ratios[f"{a}_vs_{b}_p99_ratio"] = _rnd(_ratio(results[a]["p99_ms"], results[b]["p99_ms"]), 4)
        rounds.append({"round": rnum, "order": [r["target"] for r in recs], "results": results, "ratios": ratios})

    def per_round(target, key):
        return [r["results"][target][key] for r in rounds if target in r["results"]]

    def ratio_median(name):
        return _rnd(_median(r["ratios"].get(name) for r in rounds), 4)

    # ---- medians and summary ----------------------------------------------
    out: dict = {
        "benchmark": "router",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "targets": targets,
    }
    summary = {}
    for t in ALL_TARGETS:
        rps, p99 = per_round(t, "rps"), per_round(t, "p99_ms")
        out[f"{t}_rps"] = _rnd(_median(rps), 2)
        out[f"{t}_p99_ms"] = _rnd(_median(p99), 3)
        if t not in targets:
            continue
        summary[t] = {
            "runs": len(rps),
            "rps_median": _rnd(_median(rps), 2),
            "rps_min": _rnd(min(rps), 2) if rps else None,
            "rps_max": _rnd(max(rps), 2) if rps else None,
            "p50_ms_median": _rnd(_median(per_round(t, "p50_ms")), 3),
            "p90_ms_median": _rnd(_median(per_round(t, "p90_ms")), 3),
            "p99_ms_median": _rnd(_median(p99), 3),
            "p99_ms_min": _rnd(min(p99), 3) if p99 else None,
            "p99_ms_max": _rnd(max(p99), 3) if p99 else None,
            "vs_haproxy_rps_ratio": ratio_median(f"{t}_vs_haproxy_rps_ratio"),
            "vs_haproxy_p99_ratio": ratio_median(f"{t}_vs_haproxy_p99_ratio"),
        }
    for a, b in RATIO_PAIRS:
        out[f"{a}_vs_{b}_rps_ratio"] = ratio_median(f"{a}_vs_{b}_rps_ratio")
        out[f"{a}_vs_{b}_p99_ratio"] = ratio_median(f"{a}_vs_{b}_p99_ratio")

    # ---- errors -------------------------------------------------------------
    errors = {t: sum(per_round(t, "errors")) for t in targets}
    bad_runs = [
        {"round": r["round"], "target": t, "non_2xx": res["non_2xx"], "socket_errors": res["socket_errors"]}
        for r in rounds
        for t, res in r["results"].items()
        if res["errors"]
    ]
    out["valid"] = not bad_runs
    out["errors"] = errors
    out["error_runs"] = bad_runs
    out["summary"] = summary
    out["rounds"] = rounds

    settings: dict = {}
    for item in args.setting:
        key, _, raw = item.partition("=")
        _put(settings, key, _setting_value(key, raw))
    settings.setdefault("cpu_model", _cpu_model())
    out["settings"] = settings

    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")

    print_table(out, targets)
    print(f"\nresults: {args.out}")
    if bad_runs:
        print("\nERROR: some runs had failed requests, so these numbers are not meaningful:", file=sys.stderr)
        for b in bad_runs:
            se = b["socket_errors"]
            print(
                f"  round {b['round']} {b['target']}: non-2xx/3xx {b['non_2xx']}, socket errors "
                f"connect {se['connect']} read {se['read']} write {se['write']} timeout {se['timeout']}",
                file=sys.stderr,
            )
        return 2
    return 0


def print_table(out: dict, targets: list[str]) -> None:
    s = out["settings"]
    print(
        f"\nRouter benchmark, 95/5 split: {s.get('rounds')} rounds x {s.get('duration_s')}s, "
        f"wrk -t{s.get('threads')} -c{s.get('connections')}, {s.get('workers')} proxy workers, "
        f"{s.get('cpu_count')} CPUs"
    )

    def fmt(value, spec, suffix=""):
        return "-" if value is None else f"{value:{spec}}{suffix}"

    header = f"{'target':<8} {'median rps':>12} {'rps range':>10} {'median p99 ms':>14} {'rps/haproxy':>12} {'p99/haproxy':>12} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for t in targets:
        row = out["summary"][t]
        spread = None
        if row["rps_median"]:
            spread = 100.0 * (row["rps_max"] - row["rps_min"]) / row["rps_median"]
        rps_ratio, p99_ratio = row["vs_haproxy_rps_ratio"], row["vs_haproxy_p99_ratio"]
        if t == "haproxy":
            rps_ratio = p99_ratio = 1.0
        print(
            f"{t:<8} {fmt(row['rps_median'], ',.1f'):>12} {fmt(spread, '.1f', '%'):>10} "
            f"{fmt(row['p99_ms_median'], '.3f'):>14} {fmt(rps_ratio, '.3f'):>12} "
            f"{fmt(p99_ratio, '.3f'):>12} {out['errors'][t]:>7}"
        )
    for a, b in RATIO_PAIRS:
        if a in targets and b in targets:
            print(
                f"{a} vs {b} (median of per-round ratios): throughput x{out[f'{a}_vs_{b}_rps_ratio']:.3f}, "
                f"p99 x{out[f'{a}_vs_{b}_p99_ratio']:.3f}"
            )


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("ports")
    p.add_argument("count", type=int)
    p.set_defaults(func=cmd_ports)

    p = sub.add_parser("check")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("probe")
    p.add_argument("url")
    p.add_argument("--name", default="probe")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--expect", help="every body must be exactly this (after stripping)")
    p.add_argument("--max-minor-share", type=float, default=0.20)
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("parse")
    p.add_argument("file")
    p.add_argument("--target", required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--position", type=int, required=True)
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("report")
    p.add_argument("--runs", required=True, help="file of JSON lines from 'parse'")
    p.add_argument("--targets", required=True, help="comma-separated targets that were run")
    p.add_argument("--out", required=True)
    p.add_argument("--setting", action="append", default=[], help="key=value (dots nest), repeatable")
    p.set_defaults(func=cmd_report)

    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
