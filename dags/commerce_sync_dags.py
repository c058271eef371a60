"""Airflow DAG file: every Commerce Sync DAG, built from include/pairings/*.yaml.

No logic here: the factory in plugins/commerce_sync builds one DAG per pairing and flow
(`<pairing>__<flow>`). Add a pairing file, not code.
"""

from commerce_sync.factory import build_all

globals().update(build_all())
