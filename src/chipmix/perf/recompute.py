"""Activation recomputation policies, as the stacks name them, and what each keeps.

A policy says, for every tensor a transformer layer saves for its backward pass, whether it
stays in device memory, goes to host memory, or is dropped and recomputed, and which forward
ops the backward pass runs again. The tensors are Korthikanti et al. 2022 (arXiv 2205.05198,
§4.1, Table 2) with flash attention (no ``a·s²`` score terms), plus the names JAX policies
save (``out_proj``), the MoE dispatch and the MLA latents.

Policies, each from its stack's documentation:

- ``none``: every activation kept.
- ``selective``: Megatron-LM's ``--recompute-granularity selective`` (default
  ``--recompute-modules core_attn``): the attention core is recomputed (Korthikanti §5).
  With flash attention the core stores only its log-sum-exp, so the saving is small.
- ``full``: Megatron-LM ``--recompute-granularity full --recompute-method uniform
  --recompute-num-layers 1`` and MaxText ``remat_policy: full``: only each layer's input is
  kept; the whole layer runs forward again.
- Megatron-Core ``--recompute-modules`` (``megatron/core/transformer/transformer_config.py``,
  ``recompute_modules``), any comma-joined subset of ``core_attn`` (attention core),
  ``layernorm`` (input and pre-MLP norms), ``mlp`` (dense MLP), ``moe_act`` (expert
  activation function), ``moe`` (whole MoE layer), ``shared_experts``, ``mla_up_proj``
  (MLA up-projections and rotary).
- MaxText ``remat_policy`` (``MaxText/layers/decoders.py``, ``get_remat_policy``):
  ``minimal`` (every projection output but the attention context), ``minimal_with_context``,
  ``save_dot_with_context_except_mlp``, ``save_dot_except_mlpwi``, ``save_dot_except_mlp``,
  ``save_qkv_proj``, ``qkv_proj_offloaded``, ``minimal_offloaded``, and ``custom:`` with
  each named tensor ``=device``, ``=offload`` or ``=remat`` (the rest are rematerialized),
  e.g. ``custom:decoder_layer_input=offload,query_proj=device``.

Layouts carry a policy as an integer code (so thousands of layouts stay numpy arrays):
named policies first, Megatron module sets from 64, MaxText custom policies from 1024.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from chipmix.errors import InputError

__all__ = [
    "GENERIC",
    "MAXTEXT_NAMES",
    "MEGATRON_MODULES",
    "POLICIES",
    "TENSORS",
    "Policy",
    "State",
    "canonical_recompute",
    "policy_by_code",
    "policy_code",
    "policy_from_text",
    "recompute_choices",
]

State = Literal["device", "offload", "remat", "unused"]

TENSORS: tuple[str, ...] = (
    "x", "n1", "q", "k", "v", "ctx", "lse", "attn_out", "x2", "n2", "a", "g", "masks",
    "router", "e_in", "e_a", "e_g", "s_a", "s_g", "q_lat", "kv_lat",
)  # fmt: skip
"""Per-layer saved tensors: layer input, first norm output, Q, K, V, attention context and
its log-sum-exp, attention output projection, residual, second norm output, MLP input and
activation output, dropout masks, router probabilities, routed tokens, experts' MLP input
and activation output, shared experts' ditto, MLA query and key-value latents."""

OPS: tuple[str, ...] = (
    "norm", "qkv", "mla_up", "attn", "out_proj", "fc1", "act", "fc2", "router", "experts",
    "moe_act", "shared", "a2a",
)  # fmt: skip
"""Forward ops a policy can run again: norms, QKV (down-)projection, MLA up-projections,
attention core, output projection, dense MLP in / activation / out, router, routed experts'
GEMMs, experts' activation, shared experts, the expert dispatch and combine."""

# How each tensor is produced: (op, inputs). JAX rematerializes a dropped tensor by
# re-running its producer, and the producer's dropped inputs in turn (XLA drops the rest).
_PRODUCER: dict[str, tuple[str, tuple[str, ...]]] = {
    "n1": ("norm", ("x",)),
    "q_lat": ("qkv", ("n1",)),
    "kv_lat": ("qkv", ("n1",)),
    "q": ("qkv", ("n1",)),
    "k": ("qkv", ("n1",)),
    "v": ("qkv", ("n1",)),
    "ctx": ("attn", ("q", "k", "v")),
    "lse": ("attn", ("q", "k", "v")),
    "attn_out": ("out_proj", ("ctx",)),
    "x2": ("norm", ("x", "attn_out")),
    "n2": ("norm", ("x2",)),
    "a": ("fc1", ("n2",)),
    "g": ("act", ("a",)),
    "router": ("router", ("n2",)),
    "e_in": ("a2a", ("n2", "router")),
    "e_a": ("experts", ("e_in",)),
    "e_g": ("moe_act", ("e_a",)),
    "s_a": ("shared", ("n2",)),
    "s_g": ("act", ("s_a",)),
}

_TORCH_SAVES = frozenset(TENSORS) - {"attn_out"}
"""What PyTorch autograd keeps with no recomputation: every op's saved inputs
(Korthikanti Table 2); the projection output itself is not needed once added."""

MEGATRON_MODULES: tuple[str, ...] = (
    "core_attn", "layernorm", "mlp", "moe_act", "moe", "shared_experts", "mla_up_proj",
)  # fmt: skip
_MODULE_DROPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # module: (tensors it drops, ops it re-runs) — Megatron-Core checkpoints the module's
    # forward, so the whole module runs again (torch.utils.checkpoint semantics).
    "core_attn": (frozenset({"lse"}), frozenset({"attn"})),
    "layernorm": (frozenset({"n1", "n2"}), frozenset({"norm"})),
    "mlp": (frozenset({"a", "g"}), frozenset({"fc1", "act", "fc2"})),
    "moe_act": (frozenset({"e_g"}), frozenset({"moe_act"})),
    "moe": (
        frozenset({"router", "e_in", "e_a", "e_g"}),
        frozenset({"router", "a2a", "experts", "moe_act"}),
    ),
    "shared_experts": (frozenset({"s_a", "s_g"}), frozenset({"shared"})),
    # For a model given without its latent sizes the up-projection is its whole QKV.
    "mla_up_proj": (frozenset({"q", "k", "v"}), frozenset({"mla_up"})),
}

MAXTEXT_NAMES: dict[str, tuple[str, ...]] = {
    # MaxText checkpoint_name → our tensors (MaxText/layers/attentions.py, linears.py).
    "decoder_layer_input": ("x",),
    "query_proj": ("q", "q_lat"),
    "key_proj": ("k", "kv_lat"),
    "value_proj": ("v",),
    "qkv_proj": ("q", "k", "v", "q_lat", "kv_lat"),
    "context": ("ctx", "lse"),
    "out_proj": ("attn_out",),
    "mlpwi": ("a", "e_a", "s_a"),
    "mlpwi_0": ("a", "e_a", "s_a"),
    "mlpwi_1": ("a", "e_a", "s_a"),
    "mlpwo": (),  # not a residual of the backward pass: XLA never stores it
}
_MT_ORDER = tuple(MAXTEXT_NAMES)

_MINIMAL = ("query_proj", "key_proj", "value_proj", "qkv_proj", "out_proj", "mlpwi_0", "mlpwi_1")
_MAXTEXT_POLICIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (saved on device, offloaded to host); decoders.py get_remat_policy.
    "minimal": ((*_MINIMAL, "mlpwi", "mlpwo"), ()),
    "minimal_with_context": ((*_MINIMAL, "mlpwi", "mlpwo", "context"), ()),
    "save_dot_with_context_except_mlp": (
        ("query_proj", "value_proj", "key_proj", "qkv_proj", "context", "out_proj"),
        (),
    ),
    "save_dot_except_mlpwi": (
        ("query_proj", "value_proj", "key_proj", "qkv_proj", "out_proj", "mlpwo"),
        (),
    ),
    "save_dot_except_mlp": (("query_proj", "value_proj", "key_proj", "qkv_proj", "out_proj"), ()),
    "save_qkv_proj": (("query_proj", "value_proj", "key_proj", "qkv_proj"), ()),
    "qkv_proj_offloaded": ((), ("query_proj", "value_proj", "key_proj")),
    "minimal_offloaded": ((), (*_MINIMAL, "mlpwi", "mlpwo")),
}

GENERIC: tuple[str, ...] = ("none", "selective", "full")
POLICIES: tuple[str, ...] = GENERIC + tuple(_MAXTEXT_POLICIES)
"""Named policies, in code order (the generic three keep codes 0, 1, 2)."""
_MODULE_BASE = 64
_CUSTOM_BASE = 1024


@dataclass(frozen=True)
class Policy:
    """What one recomputation policy keeps and re-runs, per layer."""

    name: str
    """Canonical name (what ``--recompute`` accepts and layouts print)."""
    states: dict[str, State]
    """Each tensor's fate: kept on device, offloaded to host, dropped and recomputed, or
    never saved (PyTorch does not keep a projection's output once it is added)."""
    rerun: frozenset[str]
    """Forward ops the backward pass runs again (see ``OPS``)."""
    stack: str
    """The stack whose documentation defines it (``any`` for the generic three)."""

    def kept(self, state: State) -> frozenset[str]:
        return frozenset(t for t, s in self.states.items() if s == state)


def _jax_policy(name: str, saved: set[str], offloaded: set[str]) -> Policy:
    """A JAX policy: named tensors saved or offloaded, the rest rematerialized from them;
    the layer input is the scan carry and is kept unless offloaded."""
    states: dict[str, State] = dict.fromkeys(TENSORS, "remat")
    for t in saved:
        states[t] = "device"
    for t in offloaded:
        states[t] = "offload"
    if states["x"] == "remat":
        states["x"] = "device"
    states["masks"] = "device"
    rerun: set[str] = set()

    def need(t: str) -> None:
        if states.get(t) != "remat" or t not in _PRODUCER:
            return
        op, inputs = _PRODUCER[t]
        rerun.add(op)
        for i in inputs:
            need(i)

    for t in TENSORS:
        need(t)
    if "experts" in rerun:
        rerun.add("a2a")
    return Policy(name, states, frozenset(rerun), "maxtext")


def _module_policy(modules: frozenset[str]) -> Policy:
    states: dict[str, State] = {t: ("device" if t in _TORCH_SAVES else "unused") for t in TENSORS}
    rerun: set[str] = set()
    for m in modules:
        drops, ops = _MODULE_DROPS[m]
        for t in drops:
            states[t] = "remat"
        rerun |= ops
    if modules == {"core_attn"}:  # Megatron's default, and the generic "selective"
        return Policy("selective", states, frozenset(rerun), "any")
    name = ",".join(m for m in MEGATRON_MODULES if m in modules)
    return Policy(name, states, frozenset(rerun), "megatron")


def _full() -> Policy:
    states: dict[str, State] = dict.fromkeys(TENSORS, "remat")
    states["x"] = "device"
    states["attn_out"] = "unused"
    return Policy("full", states, frozenset(OPS), "any")


def _names(mapping: tuple[str, ...]) -> set[str]:
    return {t for name in mapping for t in MAXTEXT_NAMES[name]}


@lru_cache(maxsize=4096)
def policy_by_code(code: int) -> Policy:
    """The policy a layout's integer code stands for."""
    if code == 0:
        return Policy("none", _module_policy(frozenset()).states, frozenset(), "any")
    if code == 1:
        return _module_policy(frozenset({"core_attn"}))
    if code == 2:
        return _full()
    if code < len(POLICIES):
        name = POLICIES[code]
        saved, offloaded = _MAXTEXT_POLICIES[name]
        return _jax_policy(name, _names(saved), _names(offloaded))
    if _MODULE_BASE <= code < _MODULE_BASE + 2 ** len(MEGATRON_MODULES):
        bits = code - _MODULE_BASE
        mods = frozenset(m for i, m in enumerate(MEGATRON_MODULES) if bits >> i & 1)
        return _module_policy(mods)
    if code >= _CUSTOM_BASE:
        digits, rest = [], code - _CUSTOM_BASE
        for _ in _MT_ORDER:
            digits.append(rest % 3)
            rest //= 3
        device = tuple(n for n, d in zip(_MT_ORDER, digits, strict=True) if d == 1)
        host = tuple(n for n, d in zip(_MT_ORDER, digits, strict=True) if d == 2)
        parts = [f"{n}=device" for n in device] + [f"{n}=offload" for n in host]
        return _jax_policy("custom:" + ",".join(parts), _names(device), _names(host))
    raise InputError(f"no recompute policy has code {code}")


def recompute_choices() -> list[str]:
    """Every name ``--recompute`` accepts (module lists and ``custom:`` besides)."""
    return list(POLICIES) + list(MEGATRON_MODULES) + ["custom:NAME=device|offload|remat,…"]


def _unknown(kind: str, name: str, valid: list[str]) -> InputError:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return InputError(f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid)}.")


def policy_code(name: str) -> int:
    """Parse a ``--recompute`` value into its code; errors name the valid choices."""
    text = name.strip()
    if text in POLICIES:
        return POLICIES.index(text)
    if text.startswith("custom"):
        body = text.partition(":")[2]
        code = 0
        for item in filter(None, (p.strip() for p in body.replace(";", ",").split(","))):
            tensor, _, state = (s.strip() for s in item.partition("="))
            if tensor not in MAXTEXT_NAMES:
                raise _unknown("MaxText tensor name", tensor, list(MAXTEXT_NAMES))
            states = ("remat", "device", "offload")
            if state not in states:
                raise _unknown(f"state for {tensor}", state, list(states))
            code += states.index(state) * 3 ** _MT_ORDER.index(tensor)
        return _CUSTOM_BASE + code
    mods = [m.strip() for m in text.replace("+", ",").split(",") if m.strip()]
    if mods and all(m in MEGATRON_MODULES for m in mods):
        if set(mods) == {"core_attn"}:
            return 1
        return _MODULE_BASE + sum(1 << MEGATRON_MODULES.index(m) for m in set(mods))
    bad = next((m for m in mods if m not in MEGATRON_MODULES), text)
    raise _unknown("recompute policy", bad, list(POLICIES) + list(MEGATRON_MODULES) + ["custom:…"])


def canonical_recompute(name: str) -> str:
    """The canonical spelling of a ``--recompute`` value (raises on an unknown one)."""
    return policy_by_code(policy_code(name)).name


def policy_from_text(detail: str | None) -> str | None:
    """A published recompute description as a policy name, or None when it names none:
    ``selective: recompute_modules=[mla_up_proj, mlp]`` → ``mla_up_proj,mlp``;
    ``custom: decoder_layer_input, out_proj = offload; all other named tensors remat`` →
    ``custom:decoder_layer_input=offload,out_proj=offload``; ``minimal`` → ``minimal``."""
    if not detail or not detail.strip():
        return None
    text = detail.strip()
    modules = re.search(r"recompute_modules\s*=\s*\[([^\]]*)\]", text)
    if modules:
        return ",".join(m.strip(" '\"") for m in modules.group(1).split(",") if m.strip())
    if text.lower().startswith("custom"):
        parts = []
        for clause in text.partition(":")[2].split(";"):
            names, _, state = clause.partition("=")
            if not state or "all other" in clause:
                continue
            parts += [f"{n.strip()}={state.strip()}" for n in names.split(",") if n.strip()]
        return "custom:" + ",".join(parts)
    first = re.split(r"[^A-Za-z0-9_]", text, maxsplit=1)[0].lower()
    return first if first in POLICIES else None
