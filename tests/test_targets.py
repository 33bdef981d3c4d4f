import pytest

from app.errors import ConfigError
from app.targets import (
    Target,
    TargetError,
    complete_metrics_url,
    demo_target,
    derive_name,
    is_demo_url,
    labels_for,
    parse_targets,
)

MD = "https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaaexampleuniqueid1234"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"{MD}/predict/metrics", f"{MD}/predict/metrics"),
        (MD, f"{MD}/predict/metrics"),
        (f"{MD}/", f"{MD}/predict/metrics"),
        (f"{MD}/predict", f"{MD}/predict/metrics"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/metrics"),
        ("http://localhost:8000/metrics", "http://localhost:8000/metrics"),
        ("http://[::1]:8000/metrics", "http://[::1]:8000/metrics"),
    ],
)
def test_urls_are_completed_like_oracles_guide(raw, expected):
    assert complete_metrics_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("ftp://example.com/metrics", "not an http(s) URL"),
        ("http://example.com/metrics", "plain http"),
        ("http://10.0.0.5:8000/metrics", "plain http"),
        ("https://user:pw@example.com/metrics", "user:password"),
        ("https://example.com/some/path", "does not end in /metrics"),
        ("https://example.com:99999/metrics", "not a valid URL"),
        ("not a url", "not an http(s) URL"),
        ("https://demo.invalid/demo/metrics", "reserved for the built-in demo"),
        ("https://x.INVALID./metrics", "reserved for the built-in demo"),
    ],
)
def test_bad_urls_are_rejected_with_a_reason(raw, fragment):
    with pytest.raises(TargetError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        complete_metrics_url(raw)


def test_password_in_url_is_not_echoed():
    with pytest.raises(TargetError) as info:
        complete_metrics_url("https://user:hunter2@example.com/metrics")
    assert "hunter2" not in str(info.value)


def test_labels_show_ocid_and_region():
    labels = labels_for("llama", f"{MD}/predict/metrics")
    assert labels == {
        "deployment": "llama",
        "deployment_ocid": "ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaaexampleuniqueid1234",
        "region": "us-ashburn-1",
    }
    assert labels_for("local", "http://127.0.0.1:8000/metrics") == {"deployment": "local"}


def test_derived_names_are_stable_slugs():
    assert derive_name(f"{MD}/predict/metrics") == "md-iqueid1234"
    assert derive_name("http://127.0.0.1:8000/metrics") == "local-8000"
    assert derive_name(f"{MD}/predict/metrics") == derive_name(MD + "/predict/metrics")


def test_target_and_targets_forms():
    (one,) = parse_targets(MD, None)
    assert one.name == "md-iqueid1234" and one.url == f"{MD}/predict/metrics"
    many = parse_targets(
        None, f"llama={MD}\n local = http://127.0.0.1:8000 ,http://127.0.0.1:9000/metrics"
    )
    assert [t.name for t in many] == ["llama", "local", "local-9000"]
    assert parse_targets(None, None) == ()
    assert parse_targets("  ", "") == ()


@pytest.mark.parametrize(
    ("target", "targets", "fragment"),
    [
        (MD, "a=" + MD, "TARGET and TARGETS are both set"),
        (None, f"a={MD},a=http://127.0.0.1:1/metrics", "duplicate target name 'a'"),
        (None, f"{MD},{MD}", "duplicate target name"),
        (None, "Bad Name=http://127.0.0.1:1/metrics", "TARGETS"),
        (None, "UPPER=http://127.0.0.1:1/metrics", "lowercase slug"),
        ("http://example.com/metrics", None, "TARGET: "),
    ],
)
def test_bad_target_settings_name_the_setting(target, targets, fragment):
    with pytest.raises(TargetError, match=fragment):
        parse_targets(target, targets)


def test_the_demo_is_a_target_with_a_url_no_network_can_reach():
    demo = demo_target()
    assert (demo.name, demo.labels) == ("demo", {"deployment": "demo", "demo": "true"})
    assert demo.url == "http://demo.invalid/demo/metrics" and is_demo_url(demo.url)
    assert not is_demo_url(f"{MD}/predict/metrics")
    assert not is_demo_url("http://127.0.0.1:8000/metrics")


def test_target_errors_are_configuration_errors():
    with pytest.raises(ConfigError) as info:
        parse_targets("ftp://x/metrics", None)
    assert info.value.problems == ["TARGET: 'ftp://x/metrics' is not an http(s) URL"]


def test_replica_is_a_reserved_label_and_instance_counts_are_positive():
    # The proxy labels each replica's series `replica` (issue 11): a target label of that name
    # would clash with it.
    with pytest.raises(TargetError, match="reserved"):
        Target("a", "http://127.0.0.1:9/metrics", labels={"replica": "x"})
    with pytest.raises(TargetError, match="at least 1"):
        Target("a", "http://127.0.0.1:9/metrics", instance_count=0)
    known = Target("a", "http://127.0.0.1:9/metrics", instance_count=3)
    # Discovery may learn the count later: it does not make another target.
    assert known == Target("a", "http://127.0.0.1:9/metrics") and known.instance_count == 3
