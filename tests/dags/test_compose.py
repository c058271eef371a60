"""docker-compose.yaml cannot be run here (no Docker engine), so its shape is checked by parsing."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_services_for_production_shape():
    services = _compose()["services"]
    for name in ("postgres", "redis", "sandbox", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer", "airflow-init"):
        assert name in services, name
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-worker"]["command"] == "celery worker"


def test_airflow_services_use_official_33_image_celery_and_separate_ledger():
    services = _compose()["services"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer"):
        svc = services[name]
        assert svc["image"].split(":")[0].endswith("apache/airflow") or "apache/airflow:3.3" in svc["image"]
        assert "3.3" in svc["image"]
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert "postgres" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        ledger = env["AIRFLOW_CONN_INTEGRATION_DB"]
        assert ledger.startswith("postgresql://") and ledger != env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        mounts = {v.split(":")[1] for v in svc["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts


def test_sandbox_service_exposes_every_emulator():
    sandbox = _compose()["services"]["sandbox"]
    assert "python -m sandbox" in sandbox["command"] and "--mirakl-port 8103" in sandbox["command"]
    assert {"8101:8101", "8102:8102", "8103:8103"} <= set(sandbox["ports"])


def test_every_connection_a_pairing_names_is_defined_for_the_airflow_services():
    from commerce_sync.pairing import load_pairings

    compose = _compose()
    named = {ref.connection for p in load_pairings().values() for ref in (p.channel, p.master)}
    for name, svc in compose["services"].items():
        if name.startswith("airflow"):
            defined = {k[len("AIRFLOW_CONN_"):].lower() for k in svc["environment"] if k.startswith("AIRFLOW_CONN_")}
            assert named <= defined, f"{name}: no connection for {named - defined}"
