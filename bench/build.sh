#!/usr/bin/env bash
# Full build of ../shared/corpus, then a no-change rebuild, each under /usr/bin/time -v.
# Usage: bash bench/build.sh [CORPUS]   (prints wall time, report lines and peak RSS)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/corpus}
IDX=$(mktemp -d)
export HF_HUB_OFFLINE=1
for run in full no-change; do
  extra=(); [ "$run" = full ] && extra=(--full)
  /usr/bin/time -v .venv/bin/qabot index --corpus "$CORPUS" --index "$IDX" --json "${extra[@]}" \
    > "$IDX/report-$run.json" 2> "$IDX/time-$run.txt"
  python3 - "$run" "$IDX/report-$run.json" "$IDX/time-$run.txt" <<'PY'
import json, re, sys
run, report, timing = sys.argv[1:]
r = json.load(open(report)); t = open(timing).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
rate = r["chunks_embedded"] / r["seconds"] if r["chunks_embedded"] else 0
print(f"{run}: process wall {wall}, build {r['seconds']:.2f}s, {r['chunks_embedded']} chunks embedded "
      f"of {r['chunks_total']} ({rate:.1f} chunks/s), peak RSS {rss:.0f} MB")
PY
done
rm -rf "$IDX"
