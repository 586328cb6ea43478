// Reads a gzipped pprof profile with the pprof-format package (Datadog's,
// independent of ours) and prints what the e2e tests compare, as JSON:
// the sample types, the period, every function's file, every location's
// (function, line), and every sample's stack as function names root first
// with its values and labels.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Profile } from "pprof-format";

const profile = Profile.decode(gunzipSync(readFileSync(process.argv[2])));
const str = (i) => profile.stringTable.strings[Number(i)];
const fns = new Map(profile.function.map((f) => [Number(f.id), str(f.name)]));
const locs = new Map(profile.location.map((l) => [Number(l.id), l.line.map((x) => fns.get(Number(x.functionId)))]));
const out = {
  sampleTypes: profile.sampleType.map((t) => [str(t.type), str(t.unit)]),
  period: Number(profile.period),
  periodType: profile.periodType ? [str(profile.periodType.type), str(profile.periodType.unit)] : null,
  functions: profile.function.map((f) => ({ name: str(f.name), filename: str(f.filename) })),
  lines: profile.location.map((l) => l.line.map((x) => [fns.get(Number(x.functionId)), Number(x.line)])).flat(),
  samples: profile.sample.map((s) => ({
    stack: s.locationId.map((id) => locs.get(Number(id))).flat().reverse(),
    values: s.value.map(Number),
    labels: Object.fromEntries(s.label.map((l) => [str(l.key), Number(l.num)])),
  })),
};
process.stdout.write(JSON.stringify(out));
