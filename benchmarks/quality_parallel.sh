#!/bin/bash
# The quality benchmark from snapshots, one process per (dataset, model group).
#
#   .venv/bin/python benchmarks/quality.py --save-snapshots SNAP --models popularity --no-cold-start --docs '' --out /tmp/snapq
#   bash benchmarks/quality_parallel.sh SNAP OUT          # on the GPU machine (SNAP holds <dataset>.pt)
#   .venv/bin/python benchmarks/quality.py --report-only --merge OUT/* --note '...'   # back here: the report
#
# PYTHON (default python3) runs benchmarks/quality.py; DEVICE (default cuda); JOBS: processes at once
# (default: all of them, which suits a GPU; on a CPU, one per core); ONLY: only the groups whose number is
# listed (e.g. ONLY="01 11"; default: all). Each process logs to OUT/logs/.
set -euo pipefail
snap=${1:?usage: quality_parallel.sh SNAPSHOT_DIR OUT_DIR}
out=${2:?usage: quality_parallel.sh SNAPSHOT_DIR OUT_DIR}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
jobs=${JOBS:-1000}
only=${ONLY:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/logs"
started=()
run() {  # dataset tag quality.py-arguments...
  local d=$1 tag=$2; shift 2
  if [ -n "$only" ] && [[ " $only " != *" ${tag%%-*} "* ]]; then return 0; fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  ( "$python" "$here/quality.py" --from-snapshots "$snap" --device "$device" --threads 1 --docs '' --datasets "$d" \
      --out "$out/$d-$tag" "$@" > "$out/logs/$d-$tag.log" 2>&1; echo $? > "$out/logs/$d-$tag.rc" ) &
  started+=("$d-$tag")
}
datasets="hetrec-lastfm movielens recbole"
for d in $datasets; do  # all there before any process starts
  [ -f "$snap/$d.pt" ] || { echo "$snap/$d.pt is missing" >&2; exit 1; }
done
for d in $datasets; do
  run "$d" 01-kgrec --models kgrec --no-cold-start
  run "$d" 02-pop --models popularity,itemknn --no-cold-start
  run "$d" 03-mf --models mf-bpr --no-cold-start
  run "$d" 04-lightgcn --models lightgcn --no-cold-start
  run "$d" 05-text --models text --no-cold-start
  run "$d" 06-notext --models kgrec-no-text --no-cold-start
  run "$d" 07-nokg --models kgrec-no-kg --no-cold-start
  run "$d" 08-shuffled --models kgrec-kg-shuffled --no-cold-start
  run "$d" 09-noneigh --models kgrec-no-neighbourhood --no-cold-start
  run "$d" 10-uniform --models kgrec-uniform-negatives --no-cold-start
  run "$d" 11-cold --models popularity,itemknn,text,kgrec --cold-only
  run "$d" 13-ease --models ease --no-cold-start
  run "$d" 15-channel --models kgrec-channel --no-cold-start
  run "$d" 16-entityids --models kgrec-entity-ids --no-cold-start
done
run movielens 12-rating --models kgrec-rating,bias,mean --no-cold-start
for d in movielens recbole; do  # HetRec's interactions have no times: without them KGRec is the same model
  run "$d" 14-notime --models kgrec-no-time --no-cold-start
done
wait
failed=0
for name in "${started[@]}"; do
  [ "$(cat "$out/logs/$name.rc" 2>/dev/null)" = 0 ] || { echo "failed: $name (log: $out/logs/$name.log)" >&2; failed=$((failed + 1)); }
done
grep -h "ndcg@20" "$out"/logs/*.log || true
echo "$((${#started[@]} - failed)) of ${#started[@]} processes succeeded; sections under $out/*/"
exit $((failed > 0))
