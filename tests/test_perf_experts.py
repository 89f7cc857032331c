"""Expert-parallel communication against closed forms: the all-to-all split over the links
it crosses, node-deduplicated dispatch (DeepSeek-V3, arXiv 2412.19437 §3.2.2) with its
hypergeometric count of remote domains, and the expert-data-parallel gradient group."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from chipmix.catalog.catalog import load_catalog
from chipmix.perf import experts
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.step import evaluate
from chipmix.workload.make import make_job
from chipmix.workload.model import ModelSpec, MoE

GB = 1e9


def _model(experts_: int = 256, top_k: int = 8, hidden: int = 7168) -> ModelSpec:
    return ModelSpec(
        name="moe-test", num_layers=4, hidden_size=hidden, ffn_hidden_size=4 * hidden,
        num_heads=32, num_kv_heads=8, head_dim=128, vocab_size=32000, mlp="swiglu",
        moe=MoE(num_experts=experts_, top_k=top_k, expert_ffn_hidden_size=2048),
    )  # fmt: skip


@pytest.mark.parametrize(("e", "k", "d"), [(256, 8, 4), (128, 8, 2), (64, 6, 8), (16, 2, 16)])
def test_remote_domains_match_the_hypergeometric_closed_form(e: int, k: int, d: int) -> None:
    per = e // d
    miss = comb(e - per, k) / comb(e, k)
    expected = (d - 1) * (1.0 - miss)
    got = float(experts.remote_domains_per_token(e, k, np.array([float(d)]))[0])
    assert got == pytest.approx(expected, rel=1e-12)


def test_one_domain_sends_nothing_remote_and_top1_sends_its_share() -> None:
    assert float(experts.remote_domains_per_token(64, 4, np.array([1.0]))[0]) == 0.0
    # top-1: the token's one expert is remote with probability (D − 1) / D
    assert float(experts.remote_domains_per_token(64, 1, np.array([4.0]))[0]) == pytest.approx(0.75)


def _a2a(layout: Layout, dedup: bool, domain: int = 8) -> float:
    batch = LayoutBatch.of([layout])
    t = np.array([4096.0])
    return float(
        experts.all_to_all_seconds(
            _model(), t, batch, domain, 600 * GB, 40 * GB, 0.0, dedup=dedup, element_bytes=2.0
        )[0]
    )


def test_all_to_all_inside_one_domain_runs_on_the_scale_up_links() -> None:
    """ep 8 in an 8-chip domain: 7/8 of the top-k copies over the fast links."""
    expected = 4096 * 7168 * 2.0 * 8 * 7 / 8 / (600 * GB)
    assert _a2a(Layout(dp=32, ep=8), dedup=False) == pytest.approx(expected, rel=1e-12)
    assert _a2a(Layout(dp=32, ep=8), dedup=True) == pytest.approx(expected, rel=1e-12)


def test_all_to_all_across_domains_sends_the_remote_share_over_the_network() -> None:
    """ep 32 over four 8-chip domains: 24/32 of the copies leave the domain."""
    token = 4096 * 7168 * 2.0
    plain = token * 8 * 24 / 32 / (40 * GB)
    assert _a2a(Layout(dp=32, ep=32), dedup=False) == pytest.approx(plain, rel=1e-12)
    miss = comb(192, 8) / comb(256, 8)
    dedup = token * 3 * (1 - miss) / (40 * GB)
    assert _a2a(Layout(dp=32, ep=32), dedup=True) == pytest.approx(dedup, rel=1e-12)
    assert dedup < plain / 2


def test_expert_gradients_reduce_over_the_expert_data_parallel_group() -> None:
    """dp 64 with ep 8 inside an 8-chip domain: the 8 replicas of an expert sit in 8
    different domains; with ep 64 every expert has one replica and nothing to reduce."""
    edp, per_domain = experts.expert_dp_group(LayoutBatch.of([Layout(dp=64, ep=8)]), 8)
    assert (float(edp[0]), float(per_domain[0])) == (8.0, 1.0)
    edp, _ = experts.expert_dp_group(LayoutBatch.of([Layout(dp=64, ep=64)]), 72)
    assert float(edp[0]) == 1.0
    edp, per_domain = experts.expert_dp_group(LayoutBatch.of([Layout(dp=64, ep=8)]), 72)
    assert (float(edp[0]), float(per_domain[0])) == (8.0, 8.0)


def test_expert_data_parallel_traffic_shows_in_the_step() -> None:
    """Same job, same chips: ep 8 leaves every expert replicated 8× across the network, ep
    64 not at all, so the exposed data-parallel time is larger at ep 8."""
    cat = load_catalog()
    job = make_job(_model(experts_=128, top_k=4, hidden=2880), seq_len=4096, global_batch=256,
                   stack="megatron-bridge")  # fmt: skip
    system = cat.system("b200")
    batch = LayoutBatch.of(
        [Layout(dp=64, ep=8, micro_batch=4), Layout(dp=64, ep=64, micro_batch=4)]
    )
    dp = evaluate(job, system, cat.calibration, batch).breakdown.dp_comm
    assert dp[0] > 2.0 * dp[1]


def test_routed_token_copies_move_four_tensors_of_hidden_each_way() -> None:
    """Outside the expert GEMMs, each of a token's top-k copies is written and read in four
    hand-offs of the token dispatcher (dispatched, grouped by expert, expert output
    restored, combined; Megatron-Core token_dispatcher.py), beside the SwiGLU activation's
    3 × expert_ffn: per token and layer, top_k · (3 f + 8 h) elements, over tp."""
    from chipmix.perf.ops import ACT_BYTES, layer_work

    model = _model(experts_=128, top_k=8, hidden=2048)
    batch = LayoutBatch.of([Layout(tp=2, dp=8, ep=8, micro_batch=1)])
    work = layer_work(model, 4096, batch, moe_layer=True)
    tokens = 4096.0
    expected = ACT_BYTES * tokens * 8 * (3 * 2048 + 8 * 2048) / 2
    assert float(work.elementwise_parts["moe_act"][0]) == pytest.approx(expected, rel=1e-12)
