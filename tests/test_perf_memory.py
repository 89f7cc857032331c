"""Memory per chip against its sources.

Activations: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models" (arXiv 2205.05198). Per layer, with tensor *and* sequence parallelism (their eq. 5 with
SP, §4.2.2) a GPT layer stores ``s·b·h·(34 + 5·a·s/h) / t`` bytes; selective recomputation
(or a fused flash-attention kernel, which never materializes the scores) drops the
``5·a·s²·b`` term, leaving ``34·s·b·h / t`` (§5, Table 2). Full recomputation keeps only
each layer's input, ``2·s·b·h / t`` (Table 2, with SP). The first stage of 1F1B holds ``p``
micro-batches of ``L/p`` layers, i.e. ``L`` layers' worth, and the interleaved schedule
multiplies that by ``1 + (p − 1)/(p·v)`` (§4.2.3).

Model state: mixed-precision Adam, 2 B/param bf16 weights, 4 B fp32 gradients, 12 B fp32
master + two moments (ZeRO, Rajbhandari et al. 2020, arXiv 1910.02054, §3), sharded over
data-parallel ranks by stage (1: optimizer, 2: + gradients, 3: + weights).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chipmix.perf.activations import layer_activations
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.memory import (
    GRAD_BYTES,
    OPTIMIZER_BYTES,
    WEIGHT_BYTES,
    memory_per_chip,
)
from chipmix.workload import Job, ModelSpec, load_model

S, H, A = 2048, 1024, 16  # sequence, hidden, heads of the GPT-3-style test layer
VOCAB = 512  # small, so that the last stage's logits never outweigh the first stage


def gpt_layer_model(num_layers: int = 16) -> ModelSpec:
    """The layer Korthikanti et al. analyse: MHA, GeLU MLP of 4h, dropout, LayerNorm."""
    return ModelSpec(
        name="gpt-style",
        num_layers=num_layers,
        hidden_size=H,
        ffn_hidden_size=4 * H,
        num_heads=A,
        num_kv_heads=A,
        head_dim=H // A,
        vocab_size=VOCAB,
        mlp="gelu",
        norm="layernorm",
        linear_bias=True,
        dropout=True,
        tied_embeddings=True,
    )


def batch(**axes: int | str) -> LayoutBatch:
    return LayoutBatch.of([Layout(**axes)])  # type: ignore[arg-type]


def per_layer(model: ModelSpec, layout: LayoutBatch, seq_len: int = S) -> float:
    """One layer's activations with nothing recomputed."""
    layout = replace(layout, recompute=np.zeros_like(layout.recompute))
    tokens = layout.micro_batch * seq_len / layout.cp.astype(np.float64)
    return float(layer_activations(model, tokens, layout, moe_layer=False).device[0])


def lse_bytes(b: int, t: int, seq_len: int = S) -> float:
    """Flash attention's only attention-core residue: the fp32 log-sum-exp per query row
    and head (Dao et al. 2022, arXiv 2205.14135, §3.1), split over tp with the heads."""
    return 4.0 * A * seq_len * b / t


# -- one layer ------------------------------------------------------------------------------
@pytest.mark.parametrize(("t", "b"), [(1, 1), (2, 1), (4, 2), (8, 4)])
def test_layer_activations_are_34sbh_over_t(t: int, b: int) -> None:
    """34·s·b·h/t with sequence parallelism and no stored attention scores, plus the
    log-sum-exp flash attention keeps (4·a·s·b/t bytes, 0.2% of the layer here)."""
    model = gpt_layer_model()
    got = per_layer(model, batch(tp=t, micro_batch=b))
    korthikanti = 34.0 * S * b * H / t
    assert got == pytest.approx(korthikanti + lse_bytes(b, t), rel=1e-12)
    assert got == pytest.approx(korthikanti, rel=4.0 * A / (34.0 * H) + 1e-12)


def test_layer_activations_split_by_context_parallelism() -> None:
    model = gpt_layer_model()
    assert per_layer(model, batch(cp=4)) * 4 == pytest.approx(per_layer(model, batch()))


def test_layer_without_dropout_saves_its_two_masks() -> None:
    """Korthikanti's 34 includes two dropout masks of s·b·h bytes each (11 → 10, 19 → 18)."""
    with_dropout = gpt_layer_model()
    without = with_dropout.model_copy(update={"dropout": False})
    saved = per_layer(with_dropout, batch()) - per_layer(without, batch())
    assert saved == pytest.approx(2.0 * S * H)


# -- whole stages ---------------------------------------------------------------------------
def job_for(model: ModelSpec, global_batch: int, seq_len: int = S, **kw: object) -> Job:
    return Job(model=model, seq_len=seq_len, global_batch=global_batch, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("t", [1, 4])
def test_full_recompute_keeps_2sbh_over_t_per_layer(t: int) -> None:
    """Each layer's input (2·s·b·h/t with SP) for all L layers, plus one layer's working
    set while it is being recomputed (the rest of that layer's activations)."""
    model = gpt_layer_model(num_layers=16)
    layout = batch(tp=t, recompute="full")
    mem = memory_per_chip(job_for(model, 1), layout, reserved_gib=0.0)
    expected = 16 * 2.0 * S * H / t + per_layer(model, layout) - 2.0 * S * H / t
    assert float(mem.activations[0]) == pytest.approx(expected, rel=1e-12)


def test_full_recompute_in_a_pipeline_counts_the_working_set_once() -> None:
    """1F1B with full recomputation: every micro-batch in flight keeps its layers' inputs,
    but only one layer is being recomputed at a time, so its working set counts once."""
    model = gpt_layer_model(num_layers=16)
    layout = batch(pp=4, recompute="full")
    mem = memory_per_chip(job_for(model, global_batch=16), layout, 0.0)
    expected = 4 * (4 * 2.0 * S * H) + per_layer(model, layout) - 2.0 * S * H
    assert float(mem.activations[0]) == pytest.approx(expected, rel=1e-12)


def test_selective_recompute_stores_as_much_as_flash_attention() -> None:
    """With fused attention there are no attention scores to drop: selective (Megatron's
    core_attn) frees only the log-sum-exp the attention core keeps."""
    model = gpt_layer_model()
    job = job_for(model, 1)
    none = memory_per_chip(job, batch(recompute="none"), 0.0)
    selective = memory_per_chip(job, batch(recompute="selective"), 0.0)
    lse_all_layers = 16 * lse_bytes(1, 1)
    assert float(none.activations[0]) - float(selective.activations[0]) == pytest.approx(
        lse_all_layers - lse_bytes(1, 1)  # one layer's is regenerated during its backward
    )
    assert float(none.activations[0]) == pytest.approx(16 * per_layer(model, batch()))


@pytest.mark.parametrize("p", [2, 4, 8])
def test_1f1b_first_stage_holds_p_microbatches_of_l_over_p_layers(p: int) -> None:
    """The first stage holds p micro-batches in flight: L layers' activations in all,
    whatever p (Korthikanti §4.2.3)."""
    model = gpt_layer_model(num_layers=16)
    layout = batch(pp=p)
    mem = memory_per_chip(job_for(model, global_batch=4 * p), layout, 0.0)
    assert float(mem.activations[0]) == pytest.approx(16 * per_layer(model, layout), rel=1e-12)
    assert float(mem.logits[0]) == 0.0  # the first stage is the fuller one here


def test_1f1b_with_fewer_microbatches_than_stages_holds_only_those() -> None:
    model = gpt_layer_model(num_layers=16)
    layout = batch(pp=8)
    mem = memory_per_chip(job_for(model, global_batch=3), layout, 0.0)
    assert float(mem.activations[0]) == pytest.approx(3 * 2 * per_layer(model, layout))


@pytest.mark.parametrize(("p", "v"), [(2, 2), (4, 2), (4, 4), (8, 2)])
def test_interleaved_first_stage_factor(p: int, v: int) -> None:
    """Interleaving by v virtual stages: L · (1 + (p − 1)/(p·v)) layers' worth."""
    model = gpt_layer_model(num_layers=32)
    layout = batch(pp=p, vpp=v)
    mem = memory_per_chip(job_for(model, global_batch=4 * p), layout, 0.0)
    factor = 1.0 + (p - 1.0) / (p * v)
    expected = 32 * per_layer(model, layout) * factor
    assert float(mem.activations[0]) == pytest.approx(expected, rel=1e-12)


def test_last_stage_logits_count_when_they_dominate() -> None:
    """A large vocabulary on a short stage: the last stage (one micro-batch plus fp32 and
    bf16 logits, 6 bytes per logit) is the fuller one and is what is reported."""
    model = gpt_layer_model(num_layers=4).model_copy(update={"vocab_size": 256_000})
    layout = batch(pp=4)
    mem = memory_per_chip(job_for(model, global_batch=16), layout, 0.0)
    logits = 6.0 * S * 256_000
    assert float(mem.logits[0]) == pytest.approx(logits)
    assert float(mem.activations[0]) == pytest.approx(per_layer(model, layout))


# -- model state by ZeRO stage ---------------------------------------------------------------
DP = 8


@pytest.fixture(scope="module")
def dense_state() -> tuple[float, dict[int, dict[str, float]]]:
    """Weights, gradients and optimizer bytes of Llama 3 8B on tp1 pp1 dp8, by ZeRO stage."""
    model = load_model("llama3-8b")
    job = job_for(model, global_batch=DP, seq_len=1024)
    layouts = LayoutBatch.of([Layout(dp=DP, zero=z) for z in range(4)])
    mem = memory_per_chip(job, layouts, 0.0)
    parts = {
        z: {k: float(getattr(mem, k)[z]) for k in ("weights", "gradients", "optimizer")}
        for z in range(4)
    }
    return float(model.num_params()), parts


def test_bytes_per_param_are_2_4_12() -> None:
    assert (WEIGHT_BYTES, GRAD_BYTES, OPTIMIZER_BYTES) == (2.0, 4.0, 12.0)


# The final norm's h weights are not counted in the stage's parameters (4096 of 8.0e9).
REL_P = 1e-6


@pytest.mark.parametrize(
    ("zero", "weights", "grads", "optimizer"),
    [
        pytest.param(0, 2.0, 4.0, 12.0, id="zero0: everything replicated (16 B/param)"),
        pytest.param(1, 2.0, 4.0, 12.0 / DP, id="zero1: optimizer sharded"),
        pytest.param(2, 2.0, 4.0 / DP, 12.0 / DP, id="zero2: + gradients sharded"),
    ],
)
def test_zero_stage_bytes_per_param(
    dense_state: tuple[float, dict[int, dict[str, float]]],
    zero: int,
    weights: float,
    grads: float,
    optimizer: float,
) -> None:
    params, parts = dense_state
    got = parts[zero]
    assert got["weights"] == pytest.approx(weights * params, rel=REL_P)
    assert got["gradients"] == pytest.approx(grads * params, rel=REL_P)
    assert got["optimizer"] == pytest.approx(optimizer * params, rel=REL_P)


def test_zero3_shards_weights_and_keeps_two_gathered_layers(
    dense_state: tuple[float, dict[int, dict[str, float]]],
) -> None:
    """FSDP: 2/dp B/param plus the bf16 buffers of the layer in use and the one prefetched."""
    params, parts = dense_state
    model = load_model("llama3-8b")
    layer = float(model.layer_params(moe_layer=False))
    got = parts[3]
    assert got["weights"] == pytest.approx(2.0 * params / DP + 2 * layer * 2.0, rel=REL_P)
    assert got["gradients"] == pytest.approx(4.0 * params / DP, rel=REL_P)
    assert got["optimizer"] == pytest.approx(12.0 * params / DP, rel=REL_P)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_zero_on_one_rank_shards_nothing(zero: int) -> None:
    """dp = 1: there is nobody to shard with, so every stage costs what ZeRO-0 costs
    (ZeRO-3 gathers nothing, so it needs no gather buffers either)."""
    job = job_for(load_model("llama3-8b"), global_batch=1, seq_len=1024)
    mem = memory_per_chip(job, LayoutBatch.of([Layout(zero=0), Layout(zero=zero)]), 0.0)
    assert float(mem.total[1]) == pytest.approx(float(mem.total[0]), rel=1e-12)


def test_routed_experts_shard_over_the_expert_data_parallel_group() -> None:
    """Mixtral on dp8 ep4: experts split 4 ways, their optimizer state over dp/ep = 2."""
    model = load_model("mixtral-8x7b")
    job = job_for(model, global_batch=8, seq_len=1024)
    mem = memory_per_chip(job, LayoutBatch.of([Layout(dp=8, ep=4, zero=1)]), 0.0)
    experts = model.num_moe_layers * float(model.expert_params_per_layer())
    rest = float(model.num_params()) - experts
    assert float(mem.optimizer[0]) == pytest.approx(12.0 * (rest / 8 + experts / 4 / 2), rel=REL_P)
    assert float(mem.weights[0]) == pytest.approx(2.0 * (rest + experts / 4), rel=REL_P)


def test_reserve_is_added_as_given() -> None:
    job = job_for(gpt_layer_model(), 1)
    mem = memory_per_chip(job, batch(), reserved_gib=3.5)
    assert float(mem.reserved[0]) == 3.5 * 2**30
    assert float(mem.total[0]) == pytest.approx(
        sum(float(getattr(mem, k)[0]) for k in ("weights", "gradients", "optimizer"))
        + float(mem.activations[0] + mem.logits[0] + mem.reserved[0])
    )
