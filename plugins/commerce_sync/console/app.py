"""The ops console's FastAPI app: JSON under /api, server-rendered pages beside it.

Every route needs an Airflow login, through Airflow's own security dependencies (the Bearer
header or the UI's `_token` cookie): none is 401. Reading needs read access to a DAG, and a
pairing's pages read access to that pairing's DAGs; discard, replay and mapping apply need edit
access to the flow's DAG (403 otherwise). The user's name is kept with every change.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from commerce_sync.console import service
from commerce_sync.pairing import Pairing

PREFIX = "/commerce-sync"  # where commerce_sync_plugin.py mounts the app


# -- who may do what ---------------------------------------------------------------------------
def _can(user, method: str, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(method=method, details=DagDetails(id=dag_id), user=user)


def _readable(user) -> dict[str, Pairing]:
    """The pairings with at least one DAG the user may read."""
    return {k: p for k, p in service.pairings().items() if any(_can(user, "GET", p.dag_id(f)) for f in p.flows)}


def _pairing(user, key: str) -> Pairing:
    known = service.pairings()
    if key not in known:
        raise HTTPException(404, f"no pairing {key!r}")
    if key not in _readable(user):
        raise HTTPException(403, "Forbidden")
    return known[key]


def _require_edit(request: Request, user, dag_id: str) -> None:
    # Airflow's own check, as its REST API runs it before a DAG is changed or triggered
    requires_access_dag("PUT", param_dag_id=dag_id)(request, user)


def _open_record(user, request: Request, id: int) -> tuple[Any, Pairing, str]:
    """An open quarantine record the user may change: (row, pairing, the DAG flow replaying it)."""
    row = service.ledger().get_quarantine(id)
    if row is None or row.status != "open":
        raise HTTPException(404, f"no open quarantine record #{id}")
    pairing = _pairing(user, row.pairing)
    flow = service.dag_flow(pairing, row.flow) or row.flow
    _require_edit(request, user, pairing.dag_id(flow))
    return row, pairing, flow


def _airflow_runs(dag_ids: list[str]) -> dict[str, dict]:
    """The latest Airflow run of each DAG (state, id, start), read from Airflow's own database."""
    from sqlalchemy import func, select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        latest = (select(DagRun.dag_id, func.max(DagRun.id).label("id")).where(DagRun.dag_id.in_(dag_ids)).group_by(DagRun.dag_id).subquery())
        rows = session.execute(select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date).join(latest, DagRun.id == latest.c.id)).all()
    return {r.dag_id: {"run_id": r.run_id, "state": str(r.state.value if hasattr(r.state, "value") else r.state),
                       "start_date": r.start_date.isoformat(timespec="seconds") if r.start_date else None} for r in rows}


def _replay(request: Request, user, id: int) -> dict[str, Any]:
    """Replay = a run of the flow's DAG started through Airflow (held records are gated again by
    every run), recorded in Airflow (triggering user, note) and in the ledger (operator_action)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dag import DagModel
    from airflow.utils.types import DagRunTriggeredByType

    row, pairing, flow = _open_record(user, request, id)
    dag_id = pairing.dag_id(flow)
    name = user.get_name()
    dag_model = DagModel.get_current(dag_id)
    if dag_model is None:
        raise HTTPException(409, f"the DAG {dag_id} is not known to Airflow yet (not parsed)")
    run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=name, conf={},
                      note=f"Replay of quarantine #{id} requested from the ops console by {name}")
    service.ledger().record_action(pairing.key, row.flow, "replay", f"quarantine #{id}", run.run_id, by=name)
    return {"id": id, "dag_id": dag_id, "run_id": run.run_id, "run_url": f"/dags/{quote(dag_id)}/runs/{quote(run.run_id)}",
            "paused": bool(dag_model.is_paused), "by": name}


# -- the app -----------------------------------------------------------------------------------
def create_app() -> FastAPI:
    app = FastAPI(title="Commerce Sync ops console", docs_url=None, redoc_url=None, openapi_url=None)
    # read access to some DAG for every route: no login is 401, a token for nothing here 403
    api = APIRouter(prefix="/api", dependencies=[Depends(requires_access_dag("GET"))])
    pages = APIRouter(dependencies=[Depends(requires_access_dag("GET"))])

    @app.exception_handler(Exception)
    async def _unavailable(request: Request, exc: Exception):  # the ledger down, a seal key missing: one line, no traceback
        from commerce_sync.cli import _one_line

        return JSONResponse({"detail": f"the console could not do that: {_one_line(exc)}"}, status_code=503)

    # JSON -------------------------------------------------------------------------------------
    @api.get("/overview")
    def api_overview(user: GetUserDep) -> dict:
        return _overview(user)

    @api.get("/quarantine")
    def api_quarantine(user: GetUserDep, pairing: str | None = None, flow: str | None = None, reason: str | None = None,
                       min_age_hours: float | None = Query(None, ge=0)) -> list:
        known = _readable(user) if pairing is None else {pairing: _pairing(user, pairing)}
        return service.quarantine(service.ledger(), known, pairing, flow, reason, min_age_hours)

    @api.post("/quarantine/{id}/discard")
    def api_discard(id: int, request: Request, user: GetUserDep, body: dict) -> dict:
        reason = str(body.get("reason") or "").strip()
        if not reason:
            raise HTTPException(422, "a discard needs a reason")
        _open_record(user, request, id)
        row = service.discard(service.ledger(), id, reason, user.get_name())
        if row is None:
            raise HTTPException(404, f"no open quarantine record #{id}")
        return {"id": id, "status": "discarded", "reason": reason, "by": user.get_name()}

    @api.post("/quarantine/{id}/replay")
    def api_replay(id: int, request: Request, user: GetUserDep) -> dict:
        return _replay(request, user, id)

    @api.get("/mappings/{pairing}")
    def api_mappings(pairing: str, user: GetUserDep) -> dict:
        return service.mappings(service.ledger(), _pairing(user, pairing))

    @api.post("/mappings/{pairing}/{kind}")
    async def api_import(pairing: str, kind: str, request: Request, user: GetUserDep, file: UploadFile = File(...),
                         apply: bool = Form(False), merge: bool = Form(False)) -> dict:
        return _import(request, user, pairing, kind, await file.read(), apply, merge)

    @api.get("/reports/{pairing}")
    def api_reports(pairing: str, user: GetUserDep) -> list:
        return service.reports(service.ledger(), _pairing(user, pairing))

    @api.get("/reports/{pairing}/{flow}/{period}/{name}")
    def api_report(pairing: str, flow: str, period: str, name: str, user: GetUserDep) -> Response:
        found = service.report_file(service.ledger(), _pairing(user, pairing), flow, period, name)
        if found is None:
            raise HTTPException(404, f"no report {name!r} for {pairing} {flow} {period}")
        data, ctype = found
        disposition = "inline" if ctype.startswith("text/html") else f'attachment; filename="{pairing}-{flow}-{period}-{name}"'
        return Response(data, media_type=ctype, headers={"Content-Disposition": disposition})

    # pages ------------------------------------------------------------------------------------
    @pages.get("/", response_class=HTMLResponse)
    def page_overview(user: GetUserDep) -> str:
        return _page("Overview", _overview_html(_overview(user)), user)

    @pages.get("/dag/{dag_id}")
    def page_for_dag(dag_id: str, user: GetUserDep) -> RedirectResponse:
        """The `dag` destination link of every DAG page: to its pairing's console page."""
        key = dag_id.split("__", 1)[0]
        return RedirectResponse(f"{PREFIX}/pairing/{quote(key)}" if key in service.pairings() else f"{PREFIX}/", status_code=303)

    @pages.get("/pairing/{key}", response_class=HTMLResponse)
    def page_pairing(key: str, user: GetUserDep) -> str:
        p = _pairing(user, key)
        data = _overview(user, only=p)
        return _page(key, _overview_html(data) + _quarantine_html(service.quarantine(service.ledger(), {key: p}, key), {"pairing": key}, user), user)

    @pages.get("/quarantine", response_class=HTMLResponse)
    def page_quarantine(user: GetUserDep, pairing: str | None = None, flow: str | None = None, reason: str | None = None,
                        min_age_hours: float | None = Query(None, ge=0), done: str | None = None) -> str:
        known = _readable(user) if not pairing else {pairing: _pairing(user, pairing)}
        rows = service.quarantine(service.ledger(), known, pairing or None, flow, reason or None, min_age_hours)
        note = f"<p class='done'>{escape(done)}</p>" if done else ""
        filters = {"pairing": pairing, "flow": flow, "reason": reason, "min_age_hours": min_age_hours}
        return _page("Quarantine", note + _filters_html(known, filters) + _quarantine_html(rows, filters, user), user)

    @pages.post("/quarantine/{id}/discard")
    def page_discard(id: int, request: Request, user: GetUserDep, reason: str = Form("")) -> RedirectResponse:
        if not reason.strip():
            raise HTTPException(422, "a discard needs a reason")
        row, _, _ = _open_record(user, request, id)
        service.discard(service.ledger(), id, reason.strip(), user.get_name())
        done = f"Discarded #{id} ({row.flow} {row.record_key}) by {user.get_name()}: {reason.strip()}"
        return RedirectResponse(f"{PREFIX}/quarantine?{urlencode({'done': done})}", status_code=303)

    @pages.post("/quarantine/{id}/replay", response_class=HTMLResponse)
    def page_replay(id: int, request: Request, user: GetUserDep) -> str:
        r = _replay(request, user, id)
        paused = "<p><b>The DAG is paused</b>: the run waits until it is unpaused.</p>" if r["paused"] else ""
        body = (f"<p id='replayed'>Run <a target='_top' href='{escape(r['run_url'])}'>{escape(r['run_id'])}</a> of "
                f"<b>{escape(r['dag_id'])}</b> started by {escape(r['by'])}: it gates every held record of the flow again "
                f"and books those that now pass, once.</p>{paused}<p><a href='{PREFIX}/quarantine'>Back to the quarantine</a></p>")
        return _page("Replay started", body, user)

    @pages.get("/mappings/{key}", response_class=HTMLResponse)
    def page_mappings(key: str, user: GetUserDep) -> str:
        return _page(f"Mappings of {key}", _mappings_html(service.mappings(service.ledger(), _pairing(user, key))), user)

    @pages.post("/mappings/{key}", response_class=HTMLResponse)
    async def page_import(key: str, request: Request, user: GetUserDep, kind: str = Form(...), file: UploadFile | None = File(None),
                          csv_text: str = Form(""), apply: bool = Form(False), merge: bool = Form(False)) -> str:
        data = (await file.read()) if file is not None and file.filename else csv_text.encode()
        result = _import(request, user, key, kind, data, apply, merge)
        return _page(f"Mappings of {key}", _diff_html(key, result, data.decode("utf-8", "replace")), user)

    @pages.get("/reports/{key}", response_class=HTMLResponse)
    def page_reports(key: str, user: GetUserDep) -> str:
        return _page(f"Reports of {key}", _reports_html(key, service.reports(service.ledger(), _pairing(user, key))), user)

    app.include_router(api)
    app.include_router(pages)
    return app


def _overview(user, only: Pairing | None = None) -> dict[str, Any]:
    known = {only.key: only} if only else _readable(user)
    led = service.ledger()
    dag_ids = [p.dag_id(f) for p in known.values() for f in p.flows]
    try:
        runs = _airflow_runs(dag_ids)
    except Exception:  # noqa: BLE001 - Airflow's run states are a nicety; the ledger's figures still show
        runs = {}
    return {"pairings": [service.overview(led, p, runs) for p in known.values()], "outbox": service.outbox(led)}


def _import(request: Request, user, key: str, kind: str, data: bytes, apply: bool, merge: bool) -> dict[str, Any]:
    from commerce_sync.errors import MappingFileError

    p = _pairing(user, key)
    if not kind.isidentifier():
        raise HTTPException(422, f"not a mapping kind: {kind!r}")
    if apply:  # a mapping changes what every flow of the pairing does
        for flow in p.flows:
            _require_edit(request, user, p.dag_id(flow))
    try:
        return service.import_mapping(service.ledger(), p, kind, data, apply=apply, merge=merge, by=user.get_name())
    except MappingFileError as exc:
        raise HTTPException(422, str(exc)) from exc


# -- pages: plain HTML, no build step ----------------------------------------------------------
CSS = """body{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#1f2937}nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d1d5db;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}.bad{color:#b91c1c;font-weight:600}.ok{color:#15803d}.done{background:#ecfdf5;padding:.5rem}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}figcaption{font-size:.85rem}
pre{max-height:12rem;overflow:auto;background:#f9fafb;font-size:.8rem;margin:0}form.inline{display:inline}small{color:#6b7280}"""


def _page(title: str, body: str, user) -> str:
    links = "".join(f"<a href='{PREFIX}/pairing/{escape(k)}'>{escape(k)}</a>" for k in _readable(user))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)} - Commerce Sync</title><style>{CSS}</style></head>"
            f"<body><nav><a href='{PREFIX}/'><b>Commerce Sync</b></a><a href='{PREFIX}/quarantine'>Quarantine</a>{links}"
            f"<small>signed in as {escape(user.get_name())}</small></nav><h1>{escape(title)}</h1>{body}</body></html>")


def _state(state: str | None) -> str:
    cls = "bad" if state in ("failed", "upstream_failed") else "ok" if state == "success" else ""
    return f"<span class='{cls}'>{escape(state or '-')}</span>"


def _overview_html(data: dict[str, Any]) -> str:
    box = data["outbox"]
    parts = [f"<p class='bad'>{box['undelivered']} alert e-mail(s) not delivered, the oldest for {box['oldest_undelivered_minutes']} minutes; "
             f"last error: {escape(str(box['last_error']))}</p>" if box["undelivered"] else "<p class='ok'>Alert e-mails: all delivered.</p>"]
    for p in data["pairings"]:
        key = p["pairing"]
        b = p["backlog"]
        parts.append(
            f"<h2><a href='{PREFIX}/pairing/{escape(key)}'>{escape(key)}</a></h2><p>{escape(p['description'])}. "
            f"<a href='{PREFIX}/quarantine?pairing={escape(key)}'>Quarantine</a> · <a href='{PREFIX}/mappings/{escape(key)}'>Mappings</a> · "
            f"<a href='{PREFIX}/reports/{escape(key)}'>Reports</a></p>"
            f"<p class='backlog'>Backlog: <b>{b['held_orders']}</b> channel order(s) held, not in the ERP"
            + (f" (oldest {b['oldest_hours']} h)" if b["oldest_hours"] is not None else "")
            + f"; <b>{b['orphaned_orders']}</b> neither booked nor held at the last drift check.</p>"
            + _charts_html(p["charts"]) +
            "<table><tr><th>flow</th><th>last run (Airflow)</th><th>finished (ledger)</th><th>extracted</th><th>loaded</th><th>held</th>"
            "<th>throttled</th><th>open quarantine by reason</th><th>oldest open</th></tr>"
        )
        for flow, f in p["flows"].items():
            reasons = ", ".join(f"{escape(k)} {v}" for k, v in f["by_reason"].items()) or "-"
            run = (f"<a target='_top' href='/dags/{quote(f['dag_id'])}/runs/{quote(f['airflow_run_id'])}'>{_state(f['state'])}</a> {escape(f['run_started'] or '')}"
                   if f["airflow_run_id"] else "never")
            breaches = "".join(f"<br><span class='bad'>! {escape(x)}</span>" for x in f["breaches"])
            parts.append(f"<tr><td><a target='_top' href='/dags/{quote(f['dag_id'])}'>{escape(flow)}</a></td><td>{run}</td>"
                         f"<td>{escape(f['finished_at'] or '-')}{breaches}</td><td>{f['extracted']}</td><td>{f['loaded']}</td>"
                         f"<td>{f['quarantined']}</td><td>{f['throttled']} of {f['api_calls']} calls</td><td>{f['open_quarantine']}: {reasons}</td>"
                         f"<td>{'-' if f['oldest_open_hours'] is None else str(f['oldest_open_hours']) + ' h'}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


def _bars(title: str, values: list, every: str) -> str:
    """A bar chart people read at a glance: inline SVG, no script."""
    top = max(values or [0]) or 1
    width = 3 if len(values) > 100 else 6
    bars = "".join(f"<rect x='{i * width}' y='{40 - 40 * v / top:.1f}' width='{width - 1}' height='{40 * v / top:.1f}'><title>{v}</title></rect>"
                   for i, v in enumerate(values) if v)
    return (f"<figure><figcaption>{escape(title)} <small>(max {max(values or [0])}, {every})</small></figcaption>"
            f"<svg width='{max(1, len(values)) * width}' height='42' role='img'><line x1='0' y1='41' x2='{len(values) * width}' y2='41' stroke='#9ca3af'/>"
            f"<g fill='#2563eb'>{bars}</g></svg></figure>")


def _charts_html(c: dict[str, list]) -> str:
    return ("<div class='charts'>" + _bars("Backlog: held orders", c["backlog_per_hour"], "per hour, 7 days")
            + _bars("Orders booked", c["booked_per_hour"], "per hour, 7 days") + _bars("Newly quarantined", c["quarantined_per_hour"], "per hour, 7 days")
            + _bars("Stock drift found", c["stock_drift_per_run"], "per drift check") + "</div>")


def _filters_html(known: dict[str, Pairing], f: dict[str, Any]) -> str:
    options = "".join(f"<option {'selected' if k == f['pairing'] else ''}>{escape(k)}</option>" for k in known)
    return (f"<form method='get' action='{PREFIX}/quarantine'>pairing <select name='pairing'><option value=''>any</option>{options}</select> "
            f"flow <input name='flow' value='{escape(f['flow'] or '')}' size='14'> reason <input name='reason' value='{escape(f['reason'] or '')}' size='16'> "
            f"older than <input name='min_age_hours' value='{'' if f['min_age_hours'] is None else f['min_age_hours']}' size='4'> h "
            "<button>Filter</button></form>")


def _quarantine_html(rows: list[dict[str, Any]], filters: dict[str, Any], user) -> str:
    if not rows:
        return "<p id='no-quarantine'>No open quarantine" + (" matching the filter" if any(filters.values()) else "") + ".</p>"
    parts = [f"<p>{len(rows)} open record(s).</p><table id='quarantine'><tr><th>#</th><th>pairing / flow</th><th>order</th><th>why it is held</th>"
             "<th>age</th><th>payload (personal data masked)</th><th>actions</th></tr>"]
    for r in rows:
        reasons = "".join(f"<li><b>{escape(str(x['check']))}</b>: {escape(str(x['detail']))}<br><small>{escape(x['meaning'])} "
                          f"<i>What to do:</i> {escape(x['action'])}</small></li>" for x in r["reasons"])
        replay = (f"<form class='inline' method='post' action='{PREFIX}/quarantine/{r['id']}/replay'>"
                  f"<button name='replay' id='replay-{r['id']}'>Replay (run {escape(r['replayed_by'])})</button></form>") if r["replayed_by"] else ""
        parts.append(
            f"<tr id='record-{r['id']}'><td>{r['id']}</td><td>{escape(r['pairing'])}<br>{escape(r['flow'])}</td>"
            f"<td class='order'>{escape(r['order'] or '-')}<br><small>key {escape(r['record_key'])}</small></td><td><ul>{reasons}</ul></td>"
            f"<td>{r['age_hours']} h<br><small>seen {r['attempts']}x</small></td>"
            f"<td><pre>{escape(json.dumps(r['payload'], indent=1, default=str, ensure_ascii=False))}</pre></td>"
            f"<td>{replay}<form method='post' action='{PREFIX}/quarantine/{r['id']}/discard'>"
            f"<input name='reason' id='discard-reason-{r['id']}' placeholder='why discard (required)' required> "
            f"<button id='discard-{r['id']}'>Discard</button></form></td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _mappings_html(data: dict[str, Any]) -> str:
    key = data["pairing"]
    kinds = "".join(f"<option>{escape(k)}</option>" for k in data["kinds"])
    parts = [f"<h2>Upload a mapping file</h2><form method='post' enctype='multipart/form-data' action='{PREFIX}/mappings/{escape(key)}'>"
             f"kind <select name='kind'>{kinds}</select> <input type='file' name='file' accept='.csv'> "
             "<label><input type='checkbox' name='merge' value='true'> merge (keep rows the file does not name)</label> "
             "<button id='dry-run'>Show what would change</button></form><p><small>Nothing changes until you apply the diff.</small></p>"]
    for kind, rows in data["kinds"].items():
        parts.append(f"<h2>{escape(kind)} ({len(rows)})</h2><table><tr><th>key</th><th>value</th></tr>")
        parts += [f"<tr><td>{escape(k)}</td><td>{escape(json.dumps(v, ensure_ascii=False))}</td></tr>" for k, v in sorted(rows.items())[:500]]
        parts.append("</table>")
    parts.append("<h2>History</h2><table><tr><th>when</th><th>who</th><th>kind</th><th>key</th><th>change</th></tr>")
    parts += [f"<tr><td>{escape(h['changed_at'] or '')}</td><td>{escape(str(h['changed_by']))}</td><td>{escape(h['kind'])}</td>"
              f"<td>{escape(h['key'])}</td><td>{escape(h['action'])}</td></tr>" for h in data["history"]]
    parts.append("</table>")
    return "".join(parts)


def _diff_html(key: str, r: dict[str, Any], csv_text: str) -> str:
    rows = ([f"<tr><td>added</td><td>{escape(a['key'])}</td><td>{escape(json.dumps(a['new'], ensure_ascii=False))}</td></tr>" for a in r["added"]]
            + [f"<tr><td>changed</td><td>{escape(c['key'])}</td><td>{escape(json.dumps(c['old']))} &rarr; {escape(json.dumps(c['new']))}</td></tr>" for c in r["changed"]]
            + [f"<tr><td class='bad'>removed</td><td>{escape(k)}</td><td></td></tr>" for k in r["removed"]])
    out = f"<p id='diff-summary'>{escape(r['summary'])}</p><table><tr><th>change</th><th>key</th><th>values</th></tr>{''.join(rows)}</table>"
    if r["applied"]:
        return out + f"<p id='applied' class='ok'>Installed and loaded ({escape(r['installed'] or '')}). <a href='{PREFIX}/mappings/{escape(key)}'>Mappings</a></p>"
    merge = "<input type='hidden' name='merge' value='true'>" if r["merge"] else ""
    warn = f"<p class='bad'>{len(r['removed'])} row(s) not in the file will be removed (tick merge to keep them).</p>" if r["removed"] else ""
    return (out + warn + f"<form method='post' enctype='multipart/form-data' action='{PREFIX}/mappings/{escape(key)}'>"
            f"<input type='hidden' name='kind' value='{escape(r['kind'])}'><textarea name='csv_text' hidden>{escape(csv_text)}</textarea>{merge}"
            "<input type='hidden' name='apply' value='true'><button id='apply'>Apply</button></form>")


def _reports_html(key: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No reports stored yet.</p>"
    parts = ["<table><tr><th>flow</th><th>period / run</th><th>file</th><th>stored</th></tr>"]
    for r in rows:
        href = f"{PREFIX}/api/reports/{quote(key)}/{quote(r['flow'])}/{quote(r['period'], safe='')}/{quote(r['name'])}"
        parts.append(f"<tr><td>{escape(r['flow'])}</td><td>{escape(r['period'])}</td><td><a href='{escape(href)}'>{escape(r['name'])}</a></td>"
                     f"<td>{escape(r['created_at'] or '')}</td></tr>")
    parts.append("</table>")
    return "".join(parts)
