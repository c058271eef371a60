"""Exception types the DAGs' retry policy names. Kept free of heavy imports: Airflow resolves
these dotted paths while parsing DAG files."""

from __future__ import annotations


class GateBatchError(Exception):
    """The batch as a whole is unfit: fail the task now; retrying cannot fix data."""
