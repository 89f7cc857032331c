"""Recomputation policies, host offload, per-stack state and loss memory, pipeline splits
and the layout rules each stack allows — every figure against a closed form from the paper
or the stack's documentation (issue 12)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import chipmix
from chipmix.catalog import load_catalog
from chipmix.catalog.calibration import Calibration
from chipmix.errors import InputError, LayoutError
from chipmix.perf.activations import layer_activations
from chipmix.perf.layout import Layout, LayoutBatch, pipeline_split
from chipmix.perf.memory import GIB, memory_per_chip
from chipmix.perf.offload import canonical_offload, offload_from_text
from chipmix.perf.recompute import (
    canonical_recompute,
    policy_by_code,
    policy_code,
    policy_from_text,
)
from chipmix.perf.rerun import recompute_flops_per_token
from chipmix.perf.stacks import stack_traits
from chipmix.perf.step import evaluate
from chipmix.perf.validity import check_layout
from chipmix.workload import Job, ModelSpec, load_model

S, H, A, B = 2048, 1024, 16, 2  # sequence, hidden, heads, micro-batch


def gpt(dropout: bool = False, layers: int = 8) -> ModelSpec:
    """Korthikanti's GPT layer: MHA, GeLU MLP of 4h."""
    return ModelSpec(
        name="gpt", num_layers=layers, hidden_size=H, ffn_hidden_size=4 * H, num_heads=A,
        num_kv_heads=A, head_dim=H // A, vocab_size=512, mlp="gelu", norm="layernorm",
        dropout=dropout, tied_embeddings=True,
    )  # fmt: skip


def one(**axes: object) -> LayoutBatch:
    return LayoutBatch.of([Layout(micro_batch=B, **axes)])  # type: ignore[arg-type]


def act(model: ModelSpec, recompute: str, tp: int = 1, input_bytes: float = 2.0) -> list[float]:
    """(device, host, recomputed) bytes of one layer, one micro-batch."""
    a = layer_activations(
        model, np.array([B * S], dtype=np.float64), one(tp=tp, recompute=recompute), False,
        input_bytes,
    )  # fmt: skip
    return [float(a.device[0]), float(a.host[0]), float(a.working[0])]


SBH = S * B * H


# -- activations per policy --------------------------------------------------------------------
@pytest.mark.parametrize("t", [1, 2, 8])
def test_no_recompute_is_korthikanti_34sbh_with_flash_attention(t: int) -> None:
    """sbh(34 + 5as/h) without recomputation (Korthikanti et al. 2022, eq. in §4.1); flash
    attention stores none of the 5as/h terms, only its fp32 log-sum-exp (4·a bytes/token)."""
    device, _, _ = act(gpt(dropout=True), "none", tp=t)
    assert device == pytest.approx((34 * SBH + 4 * A * S * B) / t)


def test_selective_keeps_all_but_the_attention_core_log_sum_exp() -> None:
    """Megatron's selective (recompute_modules=[core_attn]) with flash attention."""
    none, selective = act(gpt(True), "none"), act(gpt(True), "selective")
    assert none[0] - selective[0] == pytest.approx(4 * A * S * B)
    assert policy_by_code(policy_code("selective")).rerun == {"attn"}


def test_megatron_modules_drop_what_they_checkpoint() -> None:
    """--recompute-modules: ``mlp`` drops the fc1 output and the activation output (16sbh for
    a 4h GeLU MLP, Korthikanti's 19sbh less its 2sbh input and 1sbh mask); ``layernorm``
    drops both norm outputs (Korthikanti's 4sbh)."""
    none = act(gpt(True), "none")[0]
    assert none - act(gpt(True), "mlp")[0] == pytest.approx(16 * SBH)
    assert none - act(gpt(True), "layernorm")[0] == pytest.approx(4 * SBH)
    both = act(gpt(True), "layernorm,mlp")
    assert none - both[0] == pytest.approx(20 * SBH)
    assert both[2] == pytest.approx(20 * SBH)  # regenerated while the layer runs backward
    assert policy_by_code(policy_code("mlp")).rerun == {"fc1", "act", "fc2"}


def test_full_keeps_only_the_layer_input() -> None:
    assert act(gpt(True), "full")[0] == pytest.approx(2 * SBH)


@pytest.mark.parametrize(
    ("policy", "kept_sbh", "reruns", "skips"),
    [
        # checkpoint_dots_with_no_batch_dims: q, k, v, out_proj, fc1 output, layer input
        ("minimal", 2 + 6 + 2 + 8, {"attn", "norm", "act"}, {"fc1", "fc2", "qkv"}),
        # save_only_these_names(query/key/value_proj, out_proj): the MLP is rematerialized
        ("save_dot_except_mlp", 2 + 6 + 2, {"attn", "fc1", "act"}, {"fc2", "qkv"}),
        ("save_qkv_proj", 2 + 6, {"attn", "out_proj", "fc1"}, {"qkv", "fc2"}),
        ("full", 2, {"qkv", "attn", "out_proj", "fc1", "fc2"}, set()),
    ],
)
def test_maxtext_remat_policies_keep_their_named_tensors(
    policy: str, kept_sbh: int, reruns: set[str], skips: set[str]
) -> None:
    """MaxText layers/decoders.py get_remat_policy; the scan carry (decoder_layer_input)
    is always kept; XLA re-runs only the producers of what backward needs."""
    device, host, _ = act(gpt(), policy)
    assert device == pytest.approx(kept_sbh * SBH)
    assert host == 0.0
    rerun = policy_by_code(policy_code(policy)).rerun
    assert reruns <= rerun
    assert not skips & rerun


def test_maxtext_custom_offload_moves_its_tensors_to_the_host() -> None:
    """custom: decoder_layer_input, query/key/value_proj, out_proj = offload (tpu-recipes'
    Llama 3.1 8B policy): 2 + 6 + 2 = 10sbh on the host, nothing on the device."""
    name = policy_from_text(
        "custom: decoder_layer_input, out_proj, query_proj, key_proj, value_proj = offload; "
        "all other named tensors remat"
    )
    assert name is not None
    device, host, _ = act(gpt(), canonical_recompute(name))
    assert (device, host) == (0.0, pytest.approx(10 * SBH))


def test_fp8_recipes_keep_linear_inputs_in_fp8() -> None:
    """Transformer Engine saves the FP8 copy of each linear layer's input: the QKV and fc1
    inputs (h each), the attention context (h) and the fc2 input (4h) halve: 7sbh less."""
    bf16, fp8 = act(gpt(), "none")[0], act(gpt(), "none", input_bytes=1.0)[0]
    assert bf16 - fp8 == pytest.approx(7 * SBH)


def test_recompute_flops_follow_the_policy() -> None:
    """HFU's extra FLOPs: the causal attention forward (2·L·h·s per token, half of the
    unmasked 4·L·h·s) for selective, a whole forward (2N + attention) for full
    (Korthikanti §5)."""
    model = gpt(layers=4)
    job = Job(model=model, seq_len=S, global_batch=8)
    got = recompute_flops_per_token(
        job, LayoutBatch.of([Layout(recompute=r) for r in ("none", "selective", "full", "mlp")])
    )
    attention = 2.0 * 4 * H * S
    layer_matmuls = 2.0 * (4 * H * H + 8 * H * H)  # qkv + out, fc1 + fc2
    assert got[0] == 0.0
    assert got[1] == pytest.approx(attention)
    assert got[2] == pytest.approx(attention + 4 * layer_matmuls)
    assert got[3] == pytest.approx(4 * 2.0 * 8 * H * H)


# -- offload, states, loss ----------------------------------------------------------------
def test_activation_offload_keeps_the_rest_and_a_double_buffer() -> None:
    """TE cpu_offloading_num_layers=N: N layers' activations on the host, two layers'
    buffers while they stream back."""
    model = gpt(layers=8)
    job = Job(model=model, seq_len=S, global_batch=B, stack="megatron")
    base = memory_per_chip(job, one(), 0.0)
    off = memory_per_chip(job, one(offload="activations:4"), 0.0)
    layer = act(model, "none")[0]
    assert float(base.activations[0]) == pytest.approx(8 * layer)
    assert float(off.activations[0]) == pytest.approx(4 * layer + 2 * layer)
    opt = memory_per_chip(job, one(offload="optimizer"), 0.0)
    assert float(opt.optimizer[0]) == 0.0


def test_megatron_distributed_optimizer_is_6_plus_12_over_d_bytes() -> None:
    """Megatron-Core dist_optimizer.md: bf16 params, fp32 grads: 6 + 12/d bytes/param."""
    model = load_model("llama3-8b")
    job = Job(model=model, seq_len=1024, global_batch=64, stack="megatron")
    mem = memory_per_chip(job, LayoutBatch.of([Layout(dp=8, zero=1)]), 0.0)
    n = model.num_params()
    states = float(mem.weights[0] + mem.gradients[0] + mem.optimizer[0])
    assert states == pytest.approx(n * (6 + 12 / 8), rel=1e-6)  # (the final norm aside)


def test_maxtext_keeps_fp32_weights_and_moments_sharded() -> None:
    """MaxText base.yml: weight_dtype float32, mu_dtype = weight_dtype: 16 B/param, all of it
    sharded by FSDP, plus two gathered bf16 layers."""
    model = load_model("llama3-8b")
    job = Job(model=model, seq_len=1024, global_batch=64, stack="maxtext")
    mem = memory_per_chip(job, LayoutBatch.of([Layout(dp=8, zero=3, recompute="full")]), 0.0)
    per_layer = model.layer_params(False)
    states = float(mem.weights[0] + mem.gradients[0] + mem.optimizer[0])
    assert states == pytest.approx(model.num_params() * 16 / 8 + 2 * per_layer * 2, rel=1e-3)


@pytest.mark.parametrize(("stack", "per_logit"), [("megatron", 2.0), (None, 6.0)])
def test_loss_memory_is_fused_on_megatron(stack: str | None, per_logit: float) -> None:
    """Fused vocab-parallel cross entropy writes the gradient into the bf16 logits; an
    unfused loss keeps bf16 logits and an fp32 copy."""
    model = gpt(layers=1).model_copy(update={"vocab_size": 32000})
    job = Job(model=model, seq_len=S, global_batch=B, stack=stack)
    mem = memory_per_chip(job, one(), 0.0)
    assert float(mem.logits[0]) == pytest.approx(per_logit * B * S * 32000)


@pytest.mark.parametrize("tiles", [1, 16])
def test_maxtext_loss_keeps_one_vocab_tile_of_bf16_logits_and_gradient(tiles: int) -> None:
    """MaxText materializes the logits whole (num_vocab_tiling 1, configs/base.yml) or one
    of num_vocab_tiling tiles of tokens at a time (docs/explanations/tiling.md): bf16 logits
    and their bf16 gradient, 4 B per logit of the live tile."""
    model = gpt(layers=1).model_copy(update={"vocab_size": 262144})
    seq = 32768
    job = Job(model=model, seq_len=seq, global_batch=B, stack="maxtext", loss_tiles=tiles)
    mem = memory_per_chip(job, one(recompute="full", zero=3), 0.0)
    assert float(mem.logits[0]) == pytest.approx(4.0 * B * seq / tiles * 262144)


def test_unstated_maxtext_tiling_takes_the_fewest_power_of_two_tiles_that_fit() -> None:
    """A job that does not state num_vocab_tiling on MaxText gets the fewest tiles (powers
    of two) with which the loss rank fits; without a capacity, or when it fits whole, 1."""
    model = gpt(layers=1).model_copy(update={"vocab_size": 262144})
    seq = 32768
    job = Job(model=model, seq_len=seq, global_batch=B, stack="maxtext")
    batch = one(recompute="full", zero=3)
    whole = memory_per_chip(job, batch, 0.0)
    logits = 4.0 * B * seq * 262144
    assert float(whole.logits[0]) == pytest.approx(logits)
    rest = float(whole.total[0]) - logits
    # Room for a bit more than a fifth of the logits: 8 tiles (4 would not fit).
    tight = memory_per_chip(job, batch, 0.0, capacity_bytes=rest + logits / 5.0)
    assert float(tight.logits[0]) == pytest.approx(logits / 8.0)
    roomy = memory_per_chip(job, batch, 0.0, capacity_bytes=rest + 2.0 * logits)
    assert float(roomy.logits[0]) == pytest.approx(logits)
    # Nothing fits: at most one token per tile, the layout is then rejected as too big.
    none = memory_per_chip(job, batch, 0.0, capacity_bytes=rest / 2.0)
    assert float(none.logits[0]) == pytest.approx(logits / 4096.0)


@pytest.mark.parametrize(("stack", "tiles"), [("maxtext", 1), ("maxtext", 2), ("megatron", None)])
def test_stated_tiling_or_an_untiled_stack_keeps_its_logits(stack: str, tiles: int | None) -> None:
    """A stated loss_tiles is respected even when it does not fit; Megatron's fused
    cross-entropy has no tiling to choose (its logits stay whole)."""
    model = gpt(layers=1).model_copy(update={"vocab_size": 262144})
    job = Job(model=model, seq_len=S, global_batch=B, stack=stack, loss_tiles=tiles)
    batch = one(recompute="full")
    free = memory_per_chip(job, batch, 0.0)
    tight = memory_per_chip(job, batch, 0.0, capacity_bytes=float(free.total[0]) / 2.0)
    assert float(tight.logits[0]) == pytest.approx(float(free.logits[0]))
    assert float(free.logits[0]) > 0.0


def test_release_stacks_take_the_memory_traits_of_the_stack_they_pin() -> None:
    """tpu-recipes runs MaxText at a pinned tag; mlperf-google submits MaxText."""
    assert stack_traits("tpu-recipes") == stack_traits("maxtext")
    assert stack_traits("mlperf-google") == stack_traits("maxtext")
    # Megatron-Bridge keeps Megatron's memory traits; its MoE recipes add the flex
    # (node-deduplicating) token dispatcher.
    bridge, megatron = stack_traits("megatron-bridge"), stack_traits("megatron")
    assert replace(bridge, ep_dispatch_dedup=False, source=megatron.source) == megatron
    assert bridge.ep_dispatch_dedup
    assert not megatron.ep_dispatch_dedup


# -- pipeline -------------------------------------------------------------------------------
def test_126_layers_on_16_stages_split_7_8_7() -> None:
    """Megatron-Core --account-for-embedding/loss-in-pipeline-split (Llama 3 405B)."""
    split = pipeline_split(126, LayoutBatch.of([Layout(pp=16), Layout(pp=16, vpp=8)]))
    assert list(split.first) == [7, 7]
    assert list(split.middle) == [8, 8]
    assert list(split.last) == [7, 7]


def test_interleaved_schedule_holds_korthikanti_factor_or_every_microbatch() -> None:
    """Rank 0 of the interleaved schedule warms up 2(p−1) + (v−1)p chunks + 1 in flight:
    p·(1 + (p−1)/(p·v)) micro-batches (Korthikanti §4.2.3) — unless there are fewer."""
    model = gpt(dropout=True, layers=16)
    layer = act(model, "none")[0]
    many = Job(model=model, seq_len=S, global_batch=B * 64)
    few = Job(model=model, seq_len=S, global_batch=B * 4)
    layout = one(pp=4, vpp=2)
    got = float(memory_per_chip(many, layout, 0.0).activations[0])
    assert got == pytest.approx(4 * layer * 4 * (1 + 3 / 8))
    got = float(memory_per_chip(few, layout, 0.0).activations[0])
    assert got == pytest.approx(4 * layer * 4)  # all 4 micro-batches of its 4 layers


# -- rules each stack allows -------------------------------------------------------------
def test_tp_above_kv_heads_is_allowed_where_kv_heads_are_replicated() -> None:
    system = load_catalog().system("h100-sxm")
    model = load_model("llama3-70b")  # 8 KV heads
    layout = Layout(tp=16, dp=1)
    for stack in ("megatron", "neuronx-distributed"):
        check_layout(Job(model=model, stack=stack), system, layout)
    with pytest.raises(LayoutError, match="maxtext does not replicate KV heads"):
        check_layout(Job(model=model, stack="maxtext"), system, layout)


def test_expert_parallelism_folds_over_tp_on_megatron_only() -> None:
    system = load_catalog().system("h100-sxm")
    model = load_model("mixtral-8x7b")
    layout = Layout(tp=8, dp=1, ep=8)  # ep spans the tp ranks (MoE parallel folding)
    check_layout(Job(model=model, stack="megatron", global_batch=8), system, layout)
    with pytest.raises(LayoutError, match="Megatron-Core folds them"):
        check_layout(Job(model=model, stack="neuronx-distributed", global_batch=8), system, layout)


def test_uneven_pipeline_is_megatron_only() -> None:
    system = load_catalog().system("h100-sxm")
    model = load_model("llama3.1-405b")  # 126 layers
    layout = Layout(tp=8, pp=16, vpp=8, dp=1)
    check_layout(Job(model=model, stack="megatron", global_batch=16), system, layout)
    with pytest.raises(LayoutError, match="maxtext splits layers evenly"):
        check_layout(Job(model=model, stack="maxtext", global_batch=16), system, layout)


def test_policies_run_only_on_their_stack() -> None:
    system = load_catalog().system("h100-sxm")
    job = Job(model=load_model("llama3-8b"), stack="megatron")
    with pytest.raises(LayoutError, match="'minimal' is a maxtext policy"):
        check_layout(job, system, Layout(recompute="minimal"))
    with pytest.raises(LayoutError, match="offload"):
        check_layout(job.model_copy(update={"stack": "maxtext"}), system,
                     Layout(offload="activations:2"))  # fmt: skip


# -- parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("full activation recomputation", "full"),
        ("selective activation recomputation + sequence parallelism", "selective"),
        ("selective: recompute_modules=[mla_up_proj, mlp]", "mlp,mla_up_proj"),
        ("selective: recompute_modules=[layernorm, moe_act]", "layernorm,moe_act"),
        ("none (no recompute_modules / recompute_num_layers in the perf config)", "none"),
        ("minimal", "minimal"),
        ("custom: decoder_layer_input=device; query_proj, key_proj, value_proj = remat; "
         "all other named tensors remat", "custom:decoder_layer_input=device"),
    ],
)  # fmt: skip
def test_published_recompute_detail_parses(text: str, policy: str) -> None:
    name = policy_from_text(text)
    assert name is not None
    assert canonical_recompute(name) == policy


def test_published_offload_parses() -> None:
    text = "activations of 20 of 80 layers offloaded to host (cpu_offloading_num_layers=20)"
    assert canonical_offload(offload_from_text(text) or "") == "activations:20"
    assert offload_from_text("decoder_layer_input, out_proj") is None  # in the remat policy


@pytest.mark.parametrize(
    ("bad", "hint"),
    [("selectve", "Did you mean 'selective'"), ("core_atn", "Did you mean 'core_attn'"),
     ("custom:query=offload", "Did you mean 'query_proj'"), ("partial", "Valid: none")],
)  # fmt: skip
def test_unknown_policy_names_the_valid_ones(bad: str, hint: str) -> None:
    with pytest.raises(InputError, match=hint):
        canonical_recompute(bad)


def test_unknown_offload_names_the_valid_ones() -> None:
    with pytest.raises(InputError, match="valid: none, activations"):
        canonical_offload("gradients")


# -- must show ----------------------------------------------------------------------------
def test_llama31_405b_meta_layout_fits_with_selective_recompute() -> None:
    """Llama 3 (Dubey et al. 2024, §3.3): TP 8, PP 16, DP 128 on 16,384 H100, 8,192-token
    sequences, 2,048 per step; Meta reports 38–43% BF16 MFU."""
    e = chipmix.estimate(
        "llama3.1-405b", "h100-sxm", 16384, seq_len=8192, global_batch=2048,
        tp=8, pp=16, dp=128, recompute="selective",
    )  # fmt: skip
    assert e.fits
    assert e.memory_gib_per_chip * GIB <= 80 * GIB
    assert 0.36 <= e.mfu <= 0.45


def test_context_parallel_runs_the_variants_its_stack_offers() -> None:
    """Ring (NeuronX here), all-gather (MaxText) or the faster of both (Megatron-Core's
    --cp-comm-type p2p | all_gather): at 8,192 tokens the attention core hides only part
    of the ring, and the all-gather of 8 KV heads is the cheaper."""
    system = load_catalog().system("h100-sxm")
    layout = LayoutBatch.of([Layout(tp=8, cp=8, dp=1, recompute="full")])

    def cp_time(stack: str) -> float:
        job = Job(model=load_model("llama3-70b"), seq_len=8192, global_batch=1, stack=stack)
        # Default calibration: every stack the same kernels, only the variants differ.
        return float(evaluate(job, system, Calibration(), layout).breakdown.cp_comm[0])

    ring, gather, both = cp_time("neuronx-distributed"), cp_time("maxtext"), cp_time("megatron")
    assert ring > gather > 0.0
    assert both == pytest.approx(gather)
