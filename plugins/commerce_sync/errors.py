"""Exception types the DAGs' retry policy names. Kept free of heavy imports: Airflow resolves
these dotted paths while parsing DAG files."""

from __future__ import annotations


class GateBatchError(Exception):
    """The batch as a whole is unfit: fail the task now; retrying cannot fix data."""


class MappingFileError(ValueError):
    """A mapping CSV is unfit (duplicate or blank key, missing column); names the file and line."""


class SealKeyError(RuntimeError):
    """The key for buyers' personal data in the ledger is missing, malformed or not the one the
    ledger was sealed with. Retrying cannot help; the message says which setting to fix."""


class HttpError(Exception):
    """An API call failed. `body` is redacted and short: it may be shown to people."""

    def __init__(self, message: str, *, method: str = "", url: str = "", status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.body = body


class ClientError(HttpError):
    """4xx other than 429: the request itself is wrong (auth, validation). Not retried."""


class ThrottledError(HttpError):
    """Still 429/503 after every retry."""


class TransientError(HttpError):
    """Timeouts, resets, 5xx after retries. `maybe_committed`: a write may have reached the server."""

    def __init__(self, message: str, *, maybe_committed: bool = False, **kw):
        super().__init__(message, **kw)
        self.maybe_committed = maybe_committed


class MalformedResponseError(HttpError):
    """The body is not the JSON the API promises (a schema break, not a network blip)."""


class GraphQLError(HttpError):
    """HTTP 200 with top-level GraphQL `errors`."""

    def __init__(self, message: str, *, errors: list | None = None, **kw):
        super().__init__(message, **kw)
        self.errors = errors or []


class ConflictError(ClientError):
    """A versioned write kept meeting a newer version (HTTP 409) after every bounded re-read and
    recompute: someone else keeps changing the record. A refusal to quarantine, with this reason."""


class RefusedFields(ClientError):
    """The channel refused a record field by field (a product missing a category's required
    attribute, say): `problems` holds (field, the channel's own message) pairs, so the people who
    fix it read which field and why."""

    def __init__(self, message: str, *, problems: list[tuple[str, str]] | None = None, **kw):
        super().__init__(message, **kw)
        self.problems = problems or []
