"""Readable unique deployment names and the label set (pure)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.discovery.deployments import DiscoveredDeployment, InferenceContainer
from app.discovery.naming import (
    FORBIDDEN_LABEL_NAMES,
    LABEL_NAMES,
    assign_names,
    deployment_labels,
    ocid_fragment,
    slugify,
)
from app.targets import TARGET_NAME_PATTERN

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _deployment(name: str, unique: str, *, age: int = 0, state: str = "ACTIVE"):
    return DiscoveredDeployment(
        ocid=f"ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaa{unique}",
        display_name=name,
        url="",
        lifecycle_state=state,
        compartment_id="c",
        project_id="p",
        region="us-ashburn-1",
        is_aqua=True,
        aqua_model="m",
        shape="VM.GPU.A10.2",
        instance_count=1,
        inference_container=InferenceContainer.VLLM,
        image="",
        time_created=BASE + timedelta(days=age),
    )


def test_slug_of_display_names():
    assert slugify("Llama 3.1 8B (prod)") == "llama-3-1-8b-prod"
    assert slugify("  --Mistral_7B--  ") == "mistral-7b"
    assert slugify("模型") == ""
    assert len(slugify("x" * 200)) == 63


def test_colliding_names_get_an_ocid_fragment_and_the_oldest_keeps_the_bare_slug():
    old = _deployment("Llama 3", "oldoldold1", age=0)
    new = _deployment("llama-3", "newnewnew2", age=5)
    names = assign_names([new, old])
    assert names[old.ocid] == "llama-3"
    assert names[new.ocid] == "llama-3-ewnew2"  # last 6 characters of the OCID


def test_names_do_not_depend_on_listing_order():
    fleet = [
        _deployment("Llama", "aaaaaa1", age=3),
        _deployment("Llama", "bbbbbb2", age=1),
        _deployment("llama", "cccccc3", age=2, state="DELETED"),
        _deployment("Mistral", "dddddd4"),
        _deployment("", "eeeeee5"),
    ]
    results = {
        tuple(sorted(assign_names(order).items())) for order in itertools.permutations(fleet)
    }
    assert len(results) == 1
    names = dict(next(iter(results)))
    assert names[fleet[1].ocid] == "llama"  # the oldest live one
    assert names[fleet[4].ocid] == f"md-{ocid_fragment(fleet[4].ocid)}"
    assert len(set(names.values())) == len(fleet)


def test_a_leaving_deployment_yields_its_name_to_a_live_one():
    old = _deployment("chat", "oldoldold1", age=0, state="DELETING")
    replacement = _deployment("chat", "newnewnew2", age=9)
    assert assign_names([old, replacement])[replacement.ocid] == "chat"


def test_a_name_is_stable_while_the_display_name_is():
    first = _deployment("Qwen 2.5", "qqqqqq1", age=0)
    before = assign_names([first])[first.ocid]
    later = assign_names([first, _deployment("Qwen 2.5", "zzzzzz9", age=4)])
    assert later[first.ocid] == before == "qwen-2-5"
    renamed = assign_names([replace(first, display_name="Qwen 3")])
    assert renamed[first.ocid] == "qwen-3"


def test_reserved_names_win_and_fixed_names_are_kept():
    mine = _deployment("prod", "pppppp1")
    other = _deployment("staging", "ssssss2")
    names = assign_names([mine, other], reserved={"prod"}, fixed={other.ocid: "my-staging"})
    assert names[mine.ocid] == f"prod-{ocid_fragment(mine.ocid)}"
    assert names[other.ocid] == "my-staging"


def test_a_display_name_shaped_like_a_fragment_name_cannot_steal_it():
    a = _deployment("x", "aaaaaa")
    b = _deployment("x", "bbbbbb", age=1)
    squatter = _deployment(f"x-{ocid_fragment(b.ocid)}", "cccccc", age=2)
    names = assign_names([a, b, squatter])
    assert len(set(names.values())) == 3


@given(st.lists(st.text(max_size=80), min_size=1, max_size=12))
def test_every_name_is_a_valid_unique_target_name(display_names):
    fleet = [_deployment(name, f"u{i:06d}", age=i) for i, name in enumerate(display_names)]
    names = assign_names(fleet)
    assert len(set(names.values())) == len(fleet)
    assert all(TARGET_NAME_PATTERN.match(name) for name in names.values())


def test_label_set_is_complete_and_never_clashes_with_vllm_labels():
    deployment = _deployment("Llama", "aaaaaa1")
    labels = deployment_labels(deployment, "llama")
    assert tuple(labels) == LABEL_NAMES
    assert not FORBIDDEN_LABEL_NAMES & set(labels)
    assert labels == {
        "deployment": "llama",
        "deployment_ocid": deployment.ocid,
        "region": "us-ashburn-1",
        "display_name": "Llama",
        "aqua_model": "m",
        "shape": "VM.GPU.A10.2",
        "inference_container": "vllm",
    }
