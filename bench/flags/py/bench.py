"""Times openfeature-flagd-core's in-process evaluation on the flag benchmark's workload.

Prints one JSON report on stdout: evaluations per second per flag class and the variant served
to every context.

Usage: python bench.py --flags FILE --workload FILE [--duration S] [--warmup S]
"""

import argparse
import json
import sys
import time
from importlib.metadata import version

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError


def to_evaluation_context(context):
    """The OpenFeature context a Python application builds: targeting key kept apart."""
    attributes = {name: value for name, value in context.items() if name != "targetingKey"}
    return EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)


def resolver(core, value_type):
    """The typed call a provider makes for each flag type."""
    calls = {"boolean": core.resolve_boolean_value, "string": core.resolve_string_value}
    if value_type not in calls:
        sys.exit(f"bench.py: no resolver for type {value_type}")
    return calls[value_type]


def variant_of(resolve, spec, context):
    try:
        return resolve(spec["flag"], spec["default"], context).variant
    except OpenFeatureError:
        return None


def evaluations_per_second(resolve, spec, contexts, seconds):
    """Cycles through all contexts until `seconds` have passed; counts whole passes."""
    flag, default = spec["flag"], spec["default"]
    start = time.perf_counter()
    done = 0
    while True:
        for context in contexts:
            try:
                resolve(flag, default, context)
            except OpenFeatureError:
                pass
        done += len(contexts)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flags", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()

    with open(args.workload, encoding="utf-8") as file:
        workload = json.load(file)
    with open(args.flags, encoding="utf-8") as file:
        flag_text = file.read()
    core = FlagdCore()
    core.set_flags(flag_text)
    contexts = [to_evaluation_context(context) for context in workload["contexts"]]

    report = {
        "evaluator": "openfeature-flagd-core",
        "version": version("openfeature-flagd-core"),
        "runtime": f"python {sys.version.split()[0]}",
        "variants": {},
    }
    for spec in workload["classes"]:
        resolve = resolver(core, spec["type"])
        evaluations_per_second(resolve, spec, contexts, args.warmup)
        report[f"{spec['class']}_eps"] = evaluations_per_second(
            resolve, spec, contexts, args.duration
        )
        report["variants"][spec["class"]] = [
            variant_of(resolve, spec, context) for context in contexts
        ]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
