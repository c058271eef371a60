"""Files from wherever a pairing keeps them, through Airflow's object storage.

A location is an `airflow.sdk.ObjectStoragePath` URL (file://, s3://, gs://, sftp:// ...; the
connection named beside it holds the credentials), or a folder relative to the project (the demo
and the tests). Moving from a local folder to a bucket is a change of URL in the pairing file.
Airflow's SDK is imported only here, when a task runs: never at DAG parse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from commerce_sync.pairing import project_root


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int | None
    modified: str | None  # as the store reports it: with the size, tells a replaced file before reading it
    path: object  # the ObjectStoragePath, to read it

    def read(self) -> tuple[bytes, str]:
        """The content and its SHA-256."""
        data = self.path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()


def resolve(location: str) -> str:
    if "://" in location:
        return location
    path = Path(location)
    return (path if path.is_absolute() else project_root() / path).resolve().as_uri()


def list_files(location: str, pattern: str, conn_id: str | None = None) -> list[StoredFile]:
    """The files matching `pattern` directly in `location`, by name."""
    from airflow.sdk import ObjectStoragePath

    base = ObjectStoragePath(resolve(location), conn_id=conn_id)
    out = []
    for path in base.glob(pattern):
        info = path.stat()
        if info.get("type", "file") != "file":
            continue
        modified = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("last_modified")
        out.append(StoredFile(path.name, info.get("size"), None if modified is None else str(modified), path))
    return sorted(out, key=lambda f: f.name)


def write_once(location: str, name: str, data: bytes, conn_id: str | None = None) -> tuple[bool, str]:
    """Write `name` into `location` unless a file of that name is there already (a run that died
    after writing it): a file another system may have imported is never replaced. (written?, SHA-256
    of what the store now holds)."""
    from airflow.sdk import ObjectStoragePath

    base = ObjectStoragePath(resolve(location), conn_id=conn_id)
    base.mkdir(parents=True, exist_ok=True)
    path = base / name
    if path.exists():
        return False, hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(data)
    return True, hashlib.sha256(data).hexdigest()
