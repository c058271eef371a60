"""The gate: validate a staged batch with a Great Expectations suite and split it.

Rows that fail any expectation are named with the checks they failed, so the flow can put their
records into quarantine with a readable reason; the rest of the batch goes on. Failures that
concern the batch as a whole (its columns, or a share of bad records over the pairing's limit)
raise GateBatchError, which fails the task at once, without spending retries.

GX and pandas are imported here only, inside functions' reach of the gate task: never at DAG
parse time. GX itself (seconds of imports in a fresh process) is imported only when a batch has
rows to validate: a gate given an empty batch passes it without loading GX (nothing to check),
and every batch with rows is validated by GX. Checks may be given as a function building them,
so that building the expectations waits for a batch that needs them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import pandas as pd  # noqa: E402

from commerce_sync.errors import GateBatchError  # noqa: E402

log = logging.getLogger(__name__)

ROW_ID = "_row_id"
RECORD_KEY = "_record_key"


@dataclass(frozen=True)
class Check:
    """One named expectation with the sentence an operator reads when a record fails it."""

    name: str
    detail: str
    expectation: Any  # a gxe.Expectation
    batch_level: bool = False
    # the sentence for one failing row, from that row's values (plain Python, never numpy's):
    # how a check shows money in the channel's currency rather than as a frame's minor units
    explain: Callable[[Mapping[str, Any]], str] | None = None


@dataclass
class GateResult:
    passed: list[str]  # record keys
    failed: dict[str, list[dict[str, str]]]  # record key -> reasons [{check, detail}]
    checks_run: int = 0
    batch_failures: list[dict[str, str]] = field(default_factory=list)


def load_gx():
    """Great Expectations, imported on first use (a no-op once imported, or preloaded by the
    process that forks the tasks: commerce_sync/preload.py)."""
    import great_expectations as gx
    import great_expectations.expectations  # noqa: F401 - the expectation classes

    return gx


class _Expectations:
    """`great_expectations.expectations`, imported when a suite first names an expectation."""

    def __getattr__(self, name: str) -> Any:
        return getattr(load_gx().expectations, name)


def _quiet_context():
    gx = load_gx()
    ctx = gx.get_context(mode="ephemeral")
    try:
        # progress bars would print into every task log
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        log.debug("could not turn GX progress bars off", exc_info=True)
    return ctx


def run_gate(
    name: str,
    frame: pd.DataFrame,
    checks: list[Check] | Callable[[], list[Check]],
    *,
    max_bad_share: Decimal,
    min_records_for_share: int = 10,
    pre_failed: dict[str, list[dict[str, str]]] | None = None,
    known_bad: set[str] = frozenset(),
) -> GateResult:
    """Validate `frame` (one row per record or record line; RECORD_KEY names the record).

    `pre_failed` holds records that already failed before the frame was built (unreadable
    payloads); they count towards the bad share and are reported alongside. `known_bad` are
    records replayed from quarantine: they do not count towards the share (twenty orders waiting
    for one mapping must not fail every later run), and neither does a batch smaller than
    `min_records_for_share` (one bad order in a quiet window is an order, not a pattern).
    """
    failed: dict[str, list[dict[str, str]]] = {k: list(v) for k, v in (pre_failed or {}).items()}
    keys_in_frame = list(dict.fromkeys(frame[RECORD_KEY].tolist())) if len(frame) else []
    batch_failures: list[dict[str, str]] = []

    checks_run = 0
    if len(frame):
        gx = load_gx()
        checks = checks() if callable(checks) else checks
        checks_run = len(checks)
        frame = frame.reset_index(drop=True)
        frame[ROW_ID] = range(len(frame))
        ctx = _quiet_context()
        by_name = {c.name: c for c in checks}
        for check in checks:
            # results come back in GX's own order: the meta tag leads each one back to its check
            check.expectation.meta = {**(check.expectation.meta or {}), "check": check.name}
        suite = gx.ExpectationSuite(name=f"{name}_suite", expectations=[c.expectation for c in checks])
        suite = ctx.suites.add(suite)
        batch = (
            ctx.data_sources.add_pandas(name=f"{name}_source")
            .add_dataframe_asset(name=f"{name}_frame")
            .add_batch_definition_whole_dataframe(name="whole")
        )
        definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_validation", data=batch, suite=suite))
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]},
        )
        for res in result.results:
            if res.success:
                continue
            check = by_name[res.expectation_config.meta["check"]]
            if res.exception_info and res.exception_info.get("raised_exception"):
                batch_failures.append({"check": check.name, "detail": f"{check.detail}: could not be evaluated ({res.exception_info.get('exception_message')})"})
                continue
            if check.batch_level:
                batch_failures.append({"check": check.name, "detail": check.detail})
                continue
            for hit in res.result.get("unexpected_index_list") or []:
                row = {k: plain(v) for k, v in frame.iloc[int(plain(hit[ROW_ID]))].items()}
                if check.explain is not None:
                    detail = check.explain(row)
                else:
                    detail = _detail(check.detail, plain(hit.get(res.expectation_config.kwargs.get("column"))))
                reason = {"check": check.name, "detail": detail}
                reasons = failed.setdefault(row[RECORD_KEY], [])
                if reason not in reasons:
                    reasons.append(reason)

    if batch_failures:
        raise GateBatchError(f"{name}: batch refused: " + "; ".join(f"{f['check']}: {f['detail']}" for f in batch_failures))

    fresh = [k for k in dict.fromkeys(keys_in_frame + list(failed)) if k not in known_bad]
    fresh_bad = [k for k in fresh if k in failed]
    passed = [k for k in keys_in_frame if k not in failed]
    if len(fresh) >= max(1, min_records_for_share):
        share = Decimal(len(fresh_bad)) / Decimal(len(fresh))
        if share > max_bad_share:
            raise GateBatchError(
                f"{name}: {len(fresh_bad)} of {len(fresh)} new records failed the gate "
                f"({share:.0%} > the pairing's limit of {max_bad_share:.0%}); this looks systemic "
                f"(schema change, lost mapping file), so nothing was loaded or quarantined. "
                f"First reasons: {_first_reasons(failed)}"
            )
    return GateResult(passed=passed, failed=failed, checks_run=checks_run)


def plain(value: Any) -> Any:
    """A frame's value as plain Python: numpy scalars unwrapped, pandas' missing markers None."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes, Decimal)):
        value = value.item()  # np.int64(-1) -> -1: a reason shows numbers, not a library's types
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _detail(detail: str, value: Any) -> str:
    if value is None:
        return f"{detail} (value is missing)"
    if isinstance(value, bool):
        return detail  # a flag column: the sentence already says what is wrong
    if isinstance(value, str):
        return f"{detail} (got '{value}')"
    return f"{detail} (got {value})"


def _first_reasons(failed: dict[str, list[dict[str, str]]], n: int = 3) -> str:
    out = []
    for key, reasons in list(failed.items())[:n]:
        out.append(f"{key}: " + ", ".join(r["detail"] for r in reasons))
    return " | ".join(out)


# Re-exported so suites can be written without importing GX themselves (imported on first use).
expect = _Expectations()
