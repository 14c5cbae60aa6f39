#!/bin/bash
# A CNN-only candidate on several draws of the demo's generator, one after the other:
#
#   bench/cnn_investigation/candidate_draws.sh ROOT NAME 'JSON overrides of demo.yaml' N [N ...]
#
# ROOT/dN/cohort is draw N's cohort (`deepradiomics demo --cohort-seed N --out ROOT/dN` writes
# it); each draw's preprocessing is cached in ROOT/dN/cache and shared by the candidates. Runs
# `demo_candidate.py` then `deepradiomics run` with one thread (two such scripts side by side
# use both cores) into ROOT/NAME_dN and appends one line per draw to ROOT/results.txt: CNN AUC
# and the Spearman r of its score with each part of the true risk (visible, spatial [CI low],
# clinical, site), and the training seconds.
set -euo pipefail
root=$1; name=$2; over=$3; shift 3
here=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
for d in "$@"; do
  yaml=$root/${name}_d$d.yaml
  PYTHONPATH=$here/src "$py" "$here/bench/cnn_investigation/demo_candidate.py" \
    "$root/d$d/cohort" "$yaml" "$over" --cache "$root/d$d/cache" > /dev/null
  rm -rf "$root/${name}_d$d"
  OMP_NUM_THREADS=1 PYTHONPATH=$here/src "$py" -m deepradiomics.cli run "$yaml" \
    --out "$root/${name}_d$d" > "$root/${name}_d$d.log" 2>&1
  "$py" - "$root/${name}_d$d/metrics.json" "$name" "$d" >> "$root/results.txt" <<'PY'
import json, sys
path, name, d = sys.argv[1:]
m = json.load(open(path))
c = m["truth"]["models"]["cnn"]["components"]
r = lambda k: round(c[k]["value"], 3)  # noqa: E731
print(name, "draw", d, "auc", round(m["models"]["cnn"]["test"]["auc"]["value"], 3),
      "vis", r("visible"), "spat", r("spatial"), "[", round(c["spatial"]["ci_low"], 3), "]",
      "clin", r("clinical"), "site", r("site"), "s", m["timing"]["train_seconds"])
PY
done
