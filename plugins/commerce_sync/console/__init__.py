"""The ops console: pages and a JSON API inside the Airflow UI (issue 19).

Loaded by the api-server on the first request to its url prefix (commerce_sync_plugin.py), never
by the scheduler, the workers or the dag-processor. service.py holds what it shows and does (the
operator commands' own code); app.py the routes, Airflow's login and roles, and the pages.
"""
