"""Airflow imports this module (from the plugins folder, which it puts on sys.path) at the start
of every process. Commerce Sync uses it only to preload Great Expectations in the process that
forks the task processes (commerce_sync/preload.py says why and which). An
airflow_local_settings.py of the deployment's own in $AIRFLOW_HOME/config comes first on
sys.path and replaces this one: call `commerce_sync.preload.preload_for_tasks()` from it.
"""

from commerce_sync.preload import preload_for_tasks

preload_for_tasks()
