#!/usr/bin/env bash
# make demo: the sandbox emulators, a local SMTP catcher and Airflow (api-server, scheduler,
# dag-processor, triggerer via `airflow standalone`), wired together with no other step.
# Everything lives under .demo/; Ctrl-C stops it all. `make clean-demo` starts afresh.
# `scripts/demo.sh --env-only` writes .demo/env (see below) and stops there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${COMMERCE_SYNC_DEMO_DIR:-$ROOT/.demo}
mkdir -p "$DEMO/airflow"
# alerts and reports are delivered into a Maildir (new/ holds one file per message)
python -c "import mailbox, sys; mailbox.Maildir(sys.argv[1], create=True)" "$DEMO/mail"

export AIRFLOW_HOME=$DEMO/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=10
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080}
# loopback only, like the emulators and the SMTP catcher: the demo's admin password is printed below
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:${AIRFLOW__API__PORT}/execution/
export COMMERCE_SYNC_HOME=$ROOT
# the ledger seals buyers' personal data with this key (made once, kept with the demo's ledger)
[ -s "$DEMO/seal.key" ] || python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" > "$DEMO/seal.key"
export COMMERCE_SYNC_SEAL_KEY=$(cat "$DEMO/seal.key")
# the ledger: no integration_db connection here, so an SQLite file in $AIRFLOW_HOME, named
export COMMERCE_SYNC_LEDGER_URL=sqlite:///$AIRFLOW_HOME/commerce_sync_ledger.db
export PYTHONPATH=$ROOT/plugins:$ROOT${PYTHONPATH:+:$PYTHONPATH}

# .demo/env: everything a shell needs to act on this demo as its DAGs do (the operator commands,
# the airflow CLI): the settings above, the seal key, the ledger and the connections (outside a
# task Airflow reads connections from the environment, not from its database). The demo itself
# runs on the same file, so the two cannot differ.
{
  echo "# written by scripts/demo.sh: \`source .demo/env\` to run the operator commands against this demo"
  for name in $(compgen -e | grep -E '^(AIRFLOW_HOME|AIRFLOW__.*|COMMERCE_SYNC_.*|PYTHONPATH)$'); do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
  python -m commerce_sync.airflow_settings env
  printf 'export PATH=%q:"$PATH"\n' "$(dirname "$(command -v python)")"
} >"$DEMO/env"
# shellcheck source=/dev/null
source "$DEMO/env"
if [ "${1:-}" = "--env-only" ]; then exit 0; fi

pids=()
cleanup() {
  echo "stopping the demo..."
  # each component runs in its own process group: stop the group, children included
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  sleep 3
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for() {  # url, name, seconds
  for _ in $(seq 1 "$3"); do
    if python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "$2 did not come up at $1; see $DEMO/*.log" >&2
  exit 1
}

echo "1/5 sandbox emulators (Cin7 Core :8101, Marketplacer :8102, Mirakl for John Lewis :8103, commercetools :8104, SFCC :8105, Centra :8106) with demo data"
setsid python -m sandbox --cin7-port 8101 --marketplacer-port 8102 --mirakl-port 8103 --commercetools-port 8104 --sfcc-port 8105 --centra-port 8106 --seed demo >"$DEMO/sandbox.log" 2>&1 &
pids+=($!)
echo "2/5 SMTP catcher on 127.0.0.1:8025 (alerts land in $DEMO/mail)"
setsid python -m aiosmtpd -n -l 127.0.0.1:8025 -c aiosmtpd.handlers.Mailbox "$DEMO/mail" >"$DEMO/smtp.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:8101/_sandbox/calls "Cin7 emulator" 30
wait_for http://127.0.0.1:8102/_sandbox/calls "Marketplacer emulator" 30
wait_for http://127.0.0.1:8103/_sandbox/calls "Mirakl emulator" 30
wait_for http://127.0.0.1:8104/_sandbox/calls "commercetools emulator" 30
wait_for http://127.0.0.1:8106/_sandbox/calls "Centra emulator" 30
wait_for http://127.0.0.1:8105/_sandbox/calls "SFCC emulator" 30
# the Cin7 sales the shipped settlement sample pays for (include/settlements/demo): the first
# cin7_sfcc__settlement_reconciliation run reconciles it and e-mails finance the report
python -m sandbox.settlement_demo --cin7 http://127.0.0.1:8101 --prefix "" >>"$DEMO/sandbox.log" 2>&1

echo "3/5 Airflow metadata DB, connections, pools and variables (airflow_settings.yaml), ledger"
airflow db migrate >"$DEMO/migrate.log" 2>&1
python -m commerce_sync.airflow_settings apply >"$DEMO/settings.log" 2>&1
python -c "from commerce_sync.ledger import migrate; migrate()" >>"$DEMO/settings.log" 2>&1

echo "4/5 Airflow (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1"
# the components one by one rather than `airflow standalone`: the scheduler's and the triggerer's
# log servers listen on every interface, and only their own commands can leave them off (tasks
# run on this machine, so the api-server reads their logs from disk)
for component in "api-server" "scheduler --skip-serve-logs" "dag-processor" "triggerer --skip-serve-logs"; do
  setsid airflow $component >"$DEMO/airflow-${component%% *}.log" 2>&1 &
  pids+=($!)
done
wait_for "http://127.0.0.1:${AIRFLOW__API__PORT}/api/v2/monitor/health" "Airflow" 180
# event-driven: every pairing's webhook side has its emulator push to the receiver (README,
# "Webhooks") with the proof its connection in .demo/env expects; the crons stay as the safety net
python scripts/demo_webhooks.py "http://127.0.0.1:${AIRFLOW__API__PORT}" >"$DEMO/webhooks.log" 2>&1

echo "5/5 unpausing the demo DAGs and starting a first run (the drift monitors once stock has synced)"
for _ in $(seq 1 60); do
  airflow dags list -o plain 2>/dev/null | grep -q "cin7_marketplacer__orders_in" && break
  sleep 2
done
dags=$(airflow dags list -o plain 2>/dev/null | awk '{print $1}' | grep "__" || true)
for dag in $(grep -v "__drift_monitor$" <<<"$dags"); do
  airflow dags unpause "$dag" >/dev/null
  airflow dags trigger "$dag" >/dev/null
done
# Drift compares each channel with Cin7: until a pairing's first stock_out has run, every listing
# differs, and a monitor started now would e-mail that as drift. So the monitors start once every
# pairing's stock_out has finished a run (or after 10 minutes, whatever happened).
start_drift_monitors() {
  python - <<'PY'
import time
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import load_pairings
ledger = Ledger.from_url()
keys = [p.key for p in load_pairings().values() if "stock_out" in p.flows]
for _ in range(60):
    if all(any(r.get("finished_at") for r in ledger.runs(k, "stock_out", limit=5)) for k in keys):
        break
    time.sleep(10)
PY
  for dag in "$@"; do
    airflow dags unpause "$dag" >/dev/null
    airflow dags trigger "$dag" >/dev/null
  done
}
# shellcheck disable=SC2046
setsid bash -c "$(declare -f start_drift_monitors); start_drift_monitors \"\$@\"" _ $(grep "__drift_monitor$" <<<"$dags") \
  >"$DEMO/drift-start.log" 2>&1 &
pids+=($!)

password=$(python -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('admin',''))" \
  "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" 2>/dev/null || echo "see $DEMO/airflow-api-server.log")
cat <<EOT

Commerce Sync demo is running.
  Airflow UI:        http://127.0.0.1:${AIRFLOW__API__PORT}   login: admin / ${password}
  Ops console:       http://127.0.0.1:${AIRFLOW__API__PORT}/plugin/commerce-sync   ("Commerce Sync" in the UI's menu)
  Sales in Cin7:     curl -s http://127.0.0.1:8101/_sandbox/sales | python -m json.tool
  John Lewis orders: curl -s http://127.0.0.1:8103/_sandbox/shipments | python -m json.tool
  Operator commands: in another shell, cd $ROOT, then (a record's buyer data stays masked unless --reveal, which is recorded)
                     source ${DEMO#"$ROOT"/}/env
                     python -m commerce_sync health
                     python -m commerce_sync quarantine list
                     python -m commerce_sync quarantine show <id>
                     python -m commerce_sync files --pairing cin7_john_lewis
  Alert e-mails:     $DEMO/mail/new (one file per message)
  Logs:              $DEMO/*.log
New Marketplacer and John Lewis orders arrive every ~20 s; their webhooks wake orders_in (its 5-minute cron is the fallback). Ctrl-C stops everything.
EOT
wait
