// Times @openfeature/flagd-core's in-process evaluation on the flag benchmark's workload and
// prints one JSON report on stdout: evaluations per second per flag class and the variant served
// to every context. The packages live outside the source tree (see bench/flags/run), so their
// node_modules directory is passed in with --modules.
//
// Usage: node bench.mjs --modules DIR --flags FILE --workload FILE [--duration S] [--warmup S]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    modules: { type: 'string' },
    flags: { type: 'string' },
    workload: { type: 'string' },
    duration: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '0.5' },
  },
});
for (const required of ['modules', 'flags', 'workload']) {
  if (!args[required]) {
    console.error(`bench.mjs: --${required} is required`);
    process.exit(1);
  }
}

const require = createRequire(join(resolve(args.modules), '..', 'package.json'));
const { FlagdCore } = require('@openfeature/flagd-core');
const { version } = require('@openfeature/flagd-core/package.json');

const workload = JSON.parse(readFileSync(args.workload, 'utf8'));
const core = new FlagdCore();
core.setConfigurations(readFileSync(args.flags, 'utf8'));

// The typed call an OpenFeature provider makes for each flag type.
const resolvers = {
  boolean: (key, fallback, context) => core.resolveBooleanEvaluation(key, fallback, context),
  string: (key, fallback, context) => core.resolveStringEvaluation(key, fallback, context),
};

/** Evaluations per second, cycling through all contexts until `seconds` have passed. */
function evaluationsPerSecond(spec, contexts, seconds) {
  const resolveOne = resolvers[spec.type];
  const limitMs = seconds * 1000;
  const start = performance.now();
  let done = 0;
  let served = 0;
  for (;;) {
    for (let index = 0; index < contexts.length; index++) {
      // Counting served variants keeps the result alive so the loop cannot be optimised away.
      if (resolveOne(spec.flag, spec.default, contexts[index]).variant !== undefined) served++;
    }
    done += contexts.length;
    const elapsedMs = performance.now() - start;
    if (elapsedMs >= limitMs) {
      globalThis.benchServed = served;
      return done / (elapsedMs / 1000);
    }
  }
}

const contexts = workload.contexts;
const report = { evaluator: '@openfeature/flagd-core', version, runtime: `node ${process.version}`, variants: {} };
for (const spec of workload.classes) {
  if (!resolvers[spec.type]) {
    console.error(`bench.mjs: no resolver for type ${spec.type}`);
    process.exit(1);
  }
  evaluationsPerSecond(spec, contexts, Number(args.warmup));
  report[`${spec.class}_eps`] = evaluationsPerSecond(spec, contexts, Number(args.duration));
  report.variants[spec.class] = contexts.map(
    (context) => resolvers[spec.type](spec.flag, spec.default, context).variant ?? null,
  );
}
console.log(JSON.stringify(report));
