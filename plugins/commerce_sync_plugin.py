"""The Airflow plugin of Commerce Sync: what Airflow's own components must know of it.

Loaded by every Airflow component, so it imports nothing heavy (the flows, pandas and Great
Expectations stay in the task processes; tests/unit/test_console.py checks). It registers the
flows' deadline reference (the scheduler reads it back from serialized DAGs only through a
plugin), the listener that gives a cleared run a fresh deadline (commerce_sync/deadlines.py), and
the ops console (commerce_sync/console): a FastAPI app the api-server mounts at /commerce-sync,
built on its first request, a nav entry and a link from every DAG page to its pairing's page;
and the webhook receiver (commerce_sync/webhooks.py) at /commerce-sync/webhooks.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from commerce_sync import deadlines, webhooks

CONSOLE_PREFIX = "/commerce-sync"


class _Console:
    """The console's ASGI app, imported and built on the first request: only the api-server
    serves it, and the scheduler, workers and dag-processor never pay for FastAPI routes,
    Airflow's security module or the ledger."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            from commerce_sync.console.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class CommerceSyncPlugin(AirflowPlugin):
    name = "commerce_sync"
    deadline_references = [deadlines.RunDueDeadline]
    listeners = [deadlines]
    # mounted in this order, and the console's prefix also covers the receiver's: the receiver first
    fastapi_apps = [
        {"app": webhooks.app, "url_prefix": webhooks.URL_PREFIX, "name": "Commerce Sync webhooks"},  # webhooks.py
        {"app": _Console(), "url_prefix": CONSOLE_PREFIX, "name": "Commerce Sync ops console"},
    ]
    external_views = [
        # the nav entry: the console inside the Airflow UI (shown at /plugin/commerce-sync)
        {"name": "Commerce Sync", "href": f"{CONSOLE_PREFIX}/", "destination": "nav", "url_route": "commerce-sync", "icon": None},
        # a tab on every DAG's page: the console page of its pairing
        {"name": "Ops console", "href": CONSOLE_PREFIX + "/dag/{DAG_ID}", "destination": "dag", "url_route": "commerce-sync-dag"},
    ]
