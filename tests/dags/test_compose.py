"""docker-compose.yaml cannot be run here (no Docker engine), so its shape is checked by parsing,
and its variables are interpolated the way Compose does (`${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$$`) to show it refuses to start without
its secrets."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# settings that carry a credential, by their name
SECRETISH = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN|^AIRFLOW_CONN_|SQL_ALCHEMY_CONN|BROKER_URL|RESULT_BACKEND")
# what may keep a default: none of these carries a credential
NOT_SECRET = {"AIRFLOW_IMAGE_NAME", "AIRFLOW_UID", "_PIP_ADDITIONAL_REQUIREMENTS"}


class Refused(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation; every `:?`/`?` variable missing is named in Refused."""
    missing = []

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            missing.append((name, arg))
            return ""
        if op == ":-" and not value or op == "-" and value is None:
            return arg
        return value or ""

    out = VARIABLE.sub(one, text)
    if missing:
        raise Refused(missing)
    return out


def _compose_text() -> str:
    return (ROOT / "docker-compose.yaml").read_text()


def _required() -> set[str]:
    return {m.group("name") for m in VARIABLE.finditer(_compose_text()) if m.group("op") == ":?"}


def _compose(env: dict[str, str] | None = None):
    """The compose file as Compose would run it, with every required variable set to a marker."""
    env = {name: f"<{name}>" for name in _required()} if env is None else env
    return yaml.safe_load(interpolate(_compose_text(), env))


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


def test_sandbox_service_exposes_every_emulator_on_loopback_in_its_profile_only():
    services = _compose()["services"]
    sandbox = services["sandbox"]
    assert "python -m sandbox" in sandbox["command"] and "--mirakl-port 8103" in sandbox["command"]
    assert {f"127.0.0.1:{p}:{p}" for p in range(8101, 8107)} == set(sandbox["ports"])  # Cin7 ... Centra
    for flag in ("--cin7-port 8101", "--commercetools-port 8104", "--sfcc-port 8105", "--centra-port 8106"):
        assert flag in sandbox["command"]
    assert [name for name, svc in services.items() if "sandbox" in svc.get("profiles", [])] == ["sandbox", "mailcatcher"]
    assert all(not svc.get("profiles") for name, svc in services.items() if name not in ("sandbox", "mailcatcher"))


def test_every_published_port_is_on_loopback():
    published = {name: svc["ports"] for name, svc in _compose()["services"].items() if svc.get("ports")}
    assert published and all(str(p).startswith("127.0.0.1:") for ports in published.values() for p in ports), published


def test_the_compose_file_refuses_to_start_without_its_secrets():
    with pytest.raises(Refused) as refused:
        interpolate(_compose_text(), {})
    missing = {name for name, _ in refused.value.args[0]}
    assert {"POSTGRES_PASSWORD", "LEDGER_DB_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
            "AIRFLOW_API_SECRET_KEY", "COMMERCE_SYNC_SEAL_KEY", "AIRFLOW_CONN_SMTP_DEFAULT"} <= missing
    assert all(message.strip() for _, message in refused.value.args[0])  # each says what to set
    # an empty value is refused as well (":?"), and one variable set is not enough
    with pytest.raises(Refused):
        interpolate(_compose_text(), {name: "" for name in _required()})
    with pytest.raises(Refused):
        interpolate(_compose_text(), {name: "x" for name in _required() - {"AIRFLOW_JWT_SECRET"}})


def _settings(services):
    """(service, setting, value) for every environment setting and command of every service."""
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            yield name, key, str(value)
        command = svc.get("command")
        yield name, "command", " ".join(command) if isinstance(command, list) else str(command or "")


def test_every_secret_bearing_setting_is_a_required_variable():
    """With each required variable set to a marker, every credential in the file is exactly a
    marker: no literal password, key or token, and no default one."""
    markers = {f"<{name}>" for name in _required()}
    marker = re.compile(r"<[A-Za-z_][A-Za-z0-9_]*>")
    checked = []
    for service, key, value in _settings(_compose()["services"]):
        if SECRETISH.search(key) and key not in NOT_SECRET:
            checked.append(key)
            url = re.match(r"^[a-z0-9+.-]+://(?P<user>[^:@/]*):(?P<password>[^@]*)@", value)
            if url:
                assert url.group("password") in markers, f"{service} {key}: password is not a required variable"
            else:
                assert value in markers, f"{service} {key}: {value!r} is not a required variable"
        for found in marker.findall(value):
            assert found in markers
    assert {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
            "AIRFLOW_CONN_INTEGRATION_DB", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW_CONN_SMTP_DEFAULT"} <= set(checked)
    redis = _compose()["services"]["redis"]
    assert "--requirepass" in " ".join(redis["command"]) and redis["environment"]["REDIS_PASSWORD"] == "<REDIS_PASSWORD>"
    defaults = {m.group("name") for m in VARIABLE.finditer(_compose_text()) if m.group("op") in (":-", "-")}
    assert defaults <= NOT_SECRET, defaults - NOT_SECRET
    init = (ROOT / "scripts" / "postgres-init.sh").read_text()
    assert "LEDGER_DB_PASSWORD" in init and not re.search(r"PASSWORD\s+'", init, re.I)  # the ledger's password: never a literal


def test_env_example_says_how_to_make_every_required_variable():
    text = (ROOT / ".env.example").read_text()
    blocks = re.split(r"\n\s*\n", text)
    for name in _required():
        block = next((b for b in blocks if re.search(rf"^{name}=", b, re.M)), None)
        assert block is not None, f".env.example does not name {name}"
        assert "#" in block, f".env.example says nothing about {name}"
        value = re.search(rf"^{name}=(.*)$", block, re.M).group(1)
        if not name.startswith("AIRFLOW_CONN_"):  # connections carry the sandbox's demo keys; secrets are made, never shipped
            assert value == "", f"{name} ships a value"
            assert re.search(r"[Mm]ake (it|each)|made like", block), f".env.example does not say how to make {name}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_production_auth_manager_is_fab_with_its_provider_installed():
    compose = _compose()
    for name, svc in compose["services"].items():
        if name.startswith("airflow"):
            env = svc["environment"]
            assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
            assert re.search(r"(^| )apache-airflow-providers-fab==", env["_PIP_ADDITIONAL_REQUIREMENTS"])
    readme = (ROOT / "README.md").read_text()
    assert "users create --role Admin" in readme and "FabAuthManager" in readme  # how the first admin is made


def test_every_connection_a_pairing_names_is_defined_for_the_airflow_services():
    from commerce_sync.pairing import load_pairings

    compose = _compose()
    named = {ref.connection for p in load_pairings().values() for ref in (p.channel, p.master)}
    for name, svc in compose["services"].items():
        if name.startswith("airflow"):
            defined = {k[len("AIRFLOW_CONN_"):].lower() for k in svc["environment"] if k.startswith("AIRFLOW_CONN_")}
            assert named <= defined, f"{name}: no connection for {named - defined}"
