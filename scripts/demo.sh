#!/usr/bin/env bash
# The whole trial, end to end, on the embedded default: the local HAPI FHIR server, the synthetic
# 60-subject trial (adapter demo generate), and the endpoint report. Everything lands in demo-out/.
#   ADAPTER_DEMO_OUT (demo-out), ADAPTER_DEMO_PORT (8080, FHIR), ADAPTER_DEMO_MLLP_PORT (2575)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PYTHON="${PYTHON:-python3}"
adapter() { "$PYTHON" -m adapter.cli "$@"; }
OUT="${ADAPTER_DEMO_OUT:-demo-out}"
PORT="${ADAPTER_DEMO_PORT:-8080}"
MLLP_PORT="${ADAPTER_DEMO_MLLP_PORT:-2575}"
ROOT="$PWD/$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# exit 1 means "finished, some inputs rejected": the generator plants a few faults on purpose.
allow_rejects() { local rc=0; "$@" || rc=$?; [ "$rc" -le 1 ] || exit "$rc"; [ "$rc" -eq 0 ] || echo "   (rejections above are the generator's deliberate faults, listed in $OUT/input/manifest.json)"; }

if [ -f "$ROOT/adapter.toml" ]; then adapter --config "$ROOT/adapter.toml" server stop >/dev/null 2>&1 || true; fi
# a listener left by an interrupted earlier demo would hold the MLLP port
if [ -f "$ROOT/state/listen.json" ]; then
  kill -TERM "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$ROOT/state/listen.json")" 2>/dev/null || true
  sleep 1
fi
rm -rf "$ROOT" && mkdir -p "$ROOT/inbox/ae" "$ROOT/inbox/hl7"
cat > "$ROOT/adapter.toml" <<TOML
fhir_url = "http://127.0.0.1:$PORT/fhir"
state_dir = "$ROOT/state"

[sync]
watch_dir = "$ROOT/inbox"
TOML
export ADAPTER_CONFIG="$ROOT/adapter.toml"

step "1/9 generate the synthetic trial: 60 subjects, 2 arms, 4 visits, plus 2,000 strangers' lab messages"
adapter demo generate --subjects 60 --seed 2019 --hospital-feed 2000 --out "$OUT/input"

step "2/9 start the local HAPI FHIR server (first start builds nothing twice; 30 s to a few minutes)"
adapter server start --port "$PORT"

step "3/9 push the study: ResearchStudy NCT03943940, sponsor, site, visit schedule"
adapter study push

step "4/9 enroll the subjects (pseudonymised Patients, ResearchSubjects, infusions, body weight)"
adapter enroll "$OUT/input/roster.csv"

step "5/9 the lab's whole feed over MLLP: 575 study results among 2,000 other patients' (ACK after a durable store; strangers dropped)"
"$PYTHON" -m adapter.cli listen --port "$MLLP_PORT" --no-watch &
LISTENER=$!
trap 'kill -TERM "$LISTENER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MLLP_PORT") 2>/dev/null && break; sleep 0.2; done
adapter demo send --port "$MLLP_PORT" "$OUT/input/feed"
kill -TERM "$LISTENER"; wait "$LISTENER" || true  # 143 = stopped by SIGTERM, as asked
trap - EXIT

step "6/9 file drops into the watched folder (the LIS's batch re-exports, the AE CRF export), then adapter sync (cron's job)"
# the batch files repeat results the feed already carried: they are recognised and stored once
cp "$OUT"/input/hl7/*_batch.hl7 "$ROOT/inbox/hl7/" 2>/dev/null || true
cp "$OUT/input/ae.csv" "$ROOT/inbox/ae/"
allow_rejects adapter sync

step "7/9 the HIS medication export (adapter ingest meds)"
allow_rejects adapter ingest meds "$OUT/input/meds.csv"

step "8/9 a BHYT claim XML file from the HIS (adapter ingest bhyt): dispensed drugs and lab results, enrolled patients only"
# drugs that also came by the HIS export count once in the endpoints (endpoints.yaml: source_priority)
BHYT_FILE=$(ls "$OUT"/input/bhyt/*.xml | head -n 1)
allow_rejects adapter ingest bhyt "$BHYT_FILE"

step "9/9 endpoints pulled back from the server: per arm and visit, report and SDTM"
adapter status
adapter endpoints --source "http://127.0.0.1:$PORT/fhir" --out "$OUT/endpoints"

printf '\n\033[1mDone.\033[0m Report: %s/endpoints/report.html  (tables: %s/endpoints/*.csv)\n' "$ROOT" "$ROOT"
printf 'The FHIR server is still running at http://127.0.0.1:%s/fhir; stop it with:\n  ADAPTER_CONFIG=%s adapter server stop\n' "$PORT" "$ROOT/adapter.toml"
