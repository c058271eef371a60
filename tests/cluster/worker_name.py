"""`[core] hostname_callable` of the test cluster's Celery workers: two workers on one machine
would otherwise report the same host name, and the tests must tell which one ran a task."""

import os


def hostname() -> str:
    return os.environ.get("COMMERCE_SYNC_TEST_WORKER") or os.uname().nodename
