# Sourced by the protocol scripts (guidance.sh, students.sh): one
# evaluation by condiff's protocol, and one judged twice. The sourcing
# script sets bin, data, n (samples per class), clf, judge and docs.

ev() { # ev OUT ARGS...: one evaluation (real draws of --eval-seed 1), its log beside it; REUSE=1 keeps a finished one
  local d=$1
  shift
  [ -n "${REUSE:-}" ] && [ -f "$d/report.json" ] && return
  "$bin" eval --data "$data" --n-per-class "$n" --eval-seed 1 --out "$d" "$@" >"$d.log" 2>&1 || { cat "$d.log" >&2; exit 1; }
  grep '^eval: over' "$d.log" | sed "s|^|$(basename "$d"): |"
}

judged() { # judged DIR LABEL ARGS...: sample and judge by clf into DIR, judge the same samples by judge into DIR-judge; both reports to docs/LABEL{,-judge}.json
  local d=$1 label=$2
  shift 2
  ev "$d" --classifier "$clf" "$@"
  ev "$d-judge" --samples "$d/samples" --classifier "$judge"
  cp "$d/report.json" "$docs/$label.json"
  cp "$d-judge/report.json" "$docs/$label-judge.json"
}
