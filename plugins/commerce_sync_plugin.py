"""The Airflow plugin of Commerce Sync: what Airflow's own components must know of it.

Loaded by every Airflow component, so it imports nothing heavy (the flows, pandas and Great
Expectations stay in the task processes). Today it registers the flows' deadline reference (the
scheduler reads it back from serialized DAGs only through a plugin) and the listener that gives a
cleared run a fresh deadline; see commerce_sync/deadlines.py.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from commerce_sync import deadlines, webhooks


class CommerceSyncPlugin(AirflowPlugin):
    name = "commerce_sync"
    deadline_references = [deadlines.RunDueDeadline]
    listeners = [deadlines]
    fastapi_apps = [
        {"app": webhooks.app, "url_prefix": webhooks.URL_PREFIX, "name": "Commerce Sync webhooks"},  # webhooks.py
    ]
