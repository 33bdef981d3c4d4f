"""PromQL building blocks shared by the dashboards and the alert rules.

- Every vLLM selector of a dashboard filters `job="vllm"`, `deployment=~"$deployment"` and, where
  the family has the label, `model_name=~"$model_name"`; alert rules filter `job="vllm"` only.
- Families vLLM renamed are read as `new or on (deployment) old` (`fallback`): each side is first
  aggregated per deployment, so a deployment on an old vLLM falls back to the old name while one on
  a new vLLM (or one exposing both names during a deprecation window) uses the new name only. A
  plain `rate(new) or rate(old)` would be wrong: `rate()` drops the metric name, so the old series
  would survive wherever its label set differs from the new one's and both would be summed.
- Quantiles are `histogram_quantile(q, sum by (le) (...))` over `rate()` of the buckets, never of
  raw counters; ratios divide by `(denominator > 0)` so an idle deployment shows no value, not NaN.
- A panel with one line per deployment keeps `PER_DEPLOYMENT` (`deployment`, unique, for matching;
  `display_name`, which every vLLM-job series carries, for the legend). Series of other jobs (the
  proxy's, OCI Monitoring's) have only `deployment`: `with_display_name` joins theirs from `up`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

RATE = "$__rate_interval"
VLLM_MATCHERS = 'job="vllm", deployment=~"$deployment", model_name=~"$model_name"'
TARGET_MATCHERS = 'job="vllm", deployment=~"$deployment"'
ALERT_MATCHERS = 'job="vllm"'
PROXY_MATCHERS = 'job="aqua-proxy", deployment=~"$deployment"'
# The labels of a per-deployment line: the readable name for the legend, the unique one to match on.
PER_DEPLOYMENT = ("deployment", "display_name")


@dataclass(frozen=True)
class Family:
    """A vLLM metric name, and the name older vLLM releases exposed the same data under."""

    new: str
    old: str | None = None


def fallback(render: Callable[[str], str], family: Family, labels: Sequence[str]) -> str:
    """`render` of the new name, per deployment falling back to `render` of the old name.

    The one definition of a legacy fallback: dashboards and alert rules both build theirs here.
    """
    new = render(family.new)
    if family.old is None:
        return new
    if "deployment" not in labels:
        raise ValueError("a fallback must keep the deployment label to decide per deployment")
    return f"{new} or on (deployment) {render(family.old)}"


def _selector(metric: str, matchers: str, extra: str) -> str:
    return f"{metric}{{{matchers}{', ' + extra if extra else ''}}}"


def sel(metric: str, extra: str = "", *, model: bool = True) -> str:
    """A selector for a vLLM-job series, filtered by the dashboard variables."""
    return _selector(metric, VLLM_MATCHERS if model else TARGET_MATCHERS, extra)


def proxy_sel(metric: str, extra: str = "") -> str:
    """A selector for the proxy's own per-deployment series, filtered by `$deployment`."""
    return _selector(metric, PROXY_MATCHERS, extra)


def by(labels: Sequence[str]) -> str:
    return f"by ({', '.join(labels)})"


def counter_rate(
    family: Family, labels: Sequence[str] = PER_DEPLOYMENT, extra: str = "", suffix: str = ""
) -> str:
    """`sum by (labels) (rate(...))`, per deployment falling back to the old name."""

    def render(metric: str) -> str:
        return f"sum {by(labels)} (rate({sel(metric + suffix, extra)}[{RATE}]))"

    return fallback(render, family, labels)


def gauge(family: Family, agg: str, labels: Sequence[str] = PER_DEPLOYMENT, extra: str = "") -> str:
    """`agg by (labels) (...)` of a gauge, per deployment falling back to the old name."""
    return fallback(lambda metric: f"{agg} {by(labels)} ({sel(metric, extra)})", family, labels)


def quantile(q: float, family: Family, *, split: bool) -> str:
    """q-quantile of a histogram family: per deployment when `split`, else over the selection."""
    if split:
        per_bucket = (*PER_DEPLOYMENT, "le")
        return f"histogram_quantile({q}, {counter_rate(family, per_bucket, suffix='_bucket')})"
    if family.old is None:
        return f"histogram_quantile({q}, {counter_rate(family, ('le',), suffix='_bucket')})"
    inner = counter_rate(family, ("deployment", "le"), suffix="_bucket")
    return f"histogram_quantile({q}, sum by (le) ({inner}))"


def histogram_mean(family: Family) -> str:
    """Mean observation over the selection: rate of _sum over rate of _count."""
    if family.old is None:
        return (
            f"sum(rate({sel(family.new + '_sum')}[{RATE}])) / "
            f"(sum(rate({sel(family.new + '_count')}[{RATE}])) > 0)"
        )
    total = counter_rate(family, suffix="_sum")
    count = counter_rate(family, suffix="_count")
    return f"sum({total}) / (sum({count}) > 0)"


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / (({denominator}) > 0)"


def display_names(matchers: str = TARGET_MATCHERS) -> str:
    """One series per scraped deployment, value 1, labelled `deployment` and `display_name`.

    `topk by (deployment) (1, ...)` keeps a join on it one-to-one even in the moment a renamed
    target's old `up` has not gone stale yet.
    """
    return f"topk by (deployment) (1, group by ({', '.join(PER_DEPLOYMENT)}) (up{{{matchers}}}))"


def with_display_name(expr: str, matchers: str = TARGET_MATCHERS) -> str:
    """`expr` (series with a `deployment` label, of any job) gaining its target's `display_name`."""
    return f"({expr}) * on (deployment) group_left (display_name) {display_names(matchers)}"


def zero_if_absent(expr: str, label: str) -> str:
    """`expr`, or one zero series labelled `label="none"` while the proxy is up and `expr` is empty.

    prometheus-client creates a labelled child on first use, so a counter of failures has no series
    at all until the first failure: without this the panel would read "No data" exactly when all is
    well, and look the same as a proxy that is down. Its legend names it: `display_name` is "all"
    (the deployments) unless `label` is `display_name` itself.
    """
    proxy_up = 'max(up{job="aqua-proxy"})'
    if label != "display_name":
        proxy_up = f'label_replace({proxy_up}, "display_name", "all", "", "")'
    zero = f'label_replace(0 * {proxy_up}, "{label}", "none", "", "")'
    return f"{expr} or on () {zero}"
