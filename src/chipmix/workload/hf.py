"""Read a Hugging Face ``config.json`` into a `ModelSpec`.

Families are told apart by ``model_type``; each states what its config leaves implicit (the
MLP kind, the norm, whether embeddings are tied, whether projections carry biases), taken from
the defaults of its ``transformers`` configuration class. A ``model_type`` not listed is read as
a Llama-style decoder (RMSNorm, gated MLP for ``silu``, no biases), and a key it lacks is an
error that says so.

What a config may describe but `ModelSpec` cannot hold is approximated, never silently dropped
from the count of weights without a note here:

- sliding-window or alternating local/global attention (Mistral v0.1, gpt-oss) is read as full
  attention;
- only the *number* of dense (non-MoE) layers is kept, not where they sit in the stack;
- Qwen2-MoE's shared expert of ``shared_expert_intermediate_size`` becomes that many shared
  experts of ``moe_intermediate_size`` (same weights and FLOPs) when it divides evenly;
- biases on only some projections (Qwen2's q/k/v biases) are left out; ``linear_bias`` is set
  only where attention *and* MLP projections carry them;
- learned position embeddings (GPT-2) and DeepSeek's multi-token-prediction module are not
  counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chipmix.common.files import format_validation_error
from chipmix.errors import FileFormatError
from chipmix.workload.model import MLA, MLPKind, ModelSpec, MoE

__all__ = ["KNOWN_MODEL_TYPES", "model_from_hf_config"]


@dataclass(frozen=True, slots=True)
class _Family:
    """What a family's config leaves to its ``transformers`` class defaults."""

    gated: bool
    """MLP is gate x up -> down (SwiGLU-style, 3 matrices) rather than up -> down."""
    norm: str = "rmsnorm"
    act: str = "silu"
    """``hidden_act`` when the config omits it."""
    tied: bool = False
    """``tie_word_embeddings`` when the config omits it."""
    bias: bool = False
    """Whether attention and MLP projections carry biases when the config does not say."""


_LLAMA = _Family(gated=True)
_FAMILIES: dict[str, _Family] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "mixtral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen2_moe": _LLAMA,
    "qwen3": _LLAMA,
    "qwen3_moe": _LLAMA,
    "deepseek_v2": _LLAMA,
    "deepseek_v3": _LLAMA,
    # gpt-oss: q/k/v/o and expert projections all carry biases (attention_bias defaults True).
    "gpt_oss": _Family(gated=True, bias=True),
    # Nemotron(-4): squared-ReLU MLP, LayerNorm ("1p" variant, with bias), no biases.
    "nemotron": _Family(gated=False, norm="layernorm", act="relu2"),
    "gpt2": _Family(gated=False, norm="layernorm", act="gelu_new", tied=True, bias=True),
    "gpt_neox": _Family(gated=False, norm="layernorm", act="gelu", bias=True),
}
KNOWN_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_FAMILIES))
"""``model_type`` values read with their family's defaults; others are read as Llama-style."""

_GATED_ACTS = {"silu", "swish", "swiglu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"}
_GELU_ACTS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu"}
_RELU2_ACTS = {"relu2", "relu_squared", "squared_relu"}

# Keys by meaning: the first is the name used in messages, the rest are other families' names.
_LAYERS = ("num_hidden_layers", "n_layer", "num_layers")
_HIDDEN = ("hidden_size", "n_embd", "d_model")
_HEADS = ("num_attention_heads", "n_head")
_FFN = ("intermediate_size", "n_inner", "ffn_dim")
_VOCAB = ("vocab_size",)
_SEQ = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")
_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts")
_TOP_K = ("num_experts_per_tok", "experts_per_token", "num_experts_per_token")

_NEEDED_FOR = {
    _LAYERS: "the number of transformer layers",
    _HIDDEN: "the model width, which sizes every weight matrix",
    _HEADS: "the attention heads, which size the attention projections",
    _FFN: "the MLP's intermediate size",
    _VOCAB: "the embedding table and output projection",
    _TOP_K: "the experts each token visits (MoE)",
}

_NAME_CHARS = re.compile(r"[^a-z0-9.\-_]+")


class _Reader:
    """Typed access to one config's keys, with errors that name the file and the key."""

    def __init__(self, raw: dict[str, Any], origin: str, model_type: str | None) -> None:
        self.raw = raw
        self.origin = origin
        self.model_type = model_type

    def where(self) -> str:
        if self.model_type is None:
            return f"{self.origin}: config has no model_type (read as a Llama-style decoder)"
        if self.model_type not in _FAMILIES:
            return (
                f"{self.origin}: model_type {self.model_type!r} is not one chipmix knows "
                f"({', '.join(KNOWN_MODEL_TYPES)}), so it is read as a Llama-style decoder"
            )
        return f"{self.origin} (model_type {self.model_type!r})"

    def missing(self, keys: tuple[str, ...], need: str) -> FileFormatError:
        also = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return FileFormatError(
            f"{self.where()}: missing key {keys[0]!r}{also}, needed for {need}. "
            f"To fix: add it to the config, or describe the model in chipmix's preset schema."
        )

    def find(self, keys: tuple[str, ...]) -> tuple[str, Any] | None:
        for key in keys:
            if self.raw.get(key) is not None:
                return key, self.raw[key]
        return None

    def int_or_none(self, keys: tuple[str, ...]) -> int | None:
        found = self.find(keys)
        if found is None:
            return None
        key, value = found
        if isinstance(value, bool) or not isinstance(value, int):
            raise FileFormatError(
                f"{self.where()}: key {key!r} should be a whole number (got {value!r})"
            )
        return value

    def require(self, keys: tuple[str, ...], need: str | None = None) -> int:
        value = self.int_or_none(keys)
        if value is None:
            raise self.missing(keys, need or _NEEDED_FOR[keys])
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise FileFormatError(f"{self.where()}: key {key!r} should be true or false")
        return value

    def any_positive(self, *keys: str) -> bool:
        """Whether any of ``keys`` holds a number above zero (dropout probabilities)."""
        values = [self.raw.get(k) for k in keys]
        return any(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values)


def _model_name(raw: dict[str, Any], origin: str) -> tuple[str, str]:
    """Registry id and display name from ``_name_or_path``, else the file (or its folder)."""
    path = Path(origin)
    label = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    given = raw.get("_name_or_path")
    if isinstance(given, str) and given.strip():
        label = given.strip().rstrip("/").rsplit("/", 1)[-1]
    name = _NAME_CHARS.sub("-", label.lower()).strip(".-_") or "hf-model"
    return name, label or name


def _mlp_kind(reader: _Reader, family: _Family) -> MLPKind:
    act_key = "activation_function" if "activation_function" in reader.raw else "hidden_act"
    act = reader.raw.get(act_key, family.act)
    if not isinstance(act, str):
        raise FileFormatError(f"{reader.where()}: key {act_key!r} should be a string")
    act = act.lower()
    if act in _RELU2_ACTS:
        return "relu2"
    if family.gated and act in _GATED_ACTS:
        return "swiglu"  # gated MLP: three matrices whatever the gate's nonlinearity
    if not family.gated and act in _GELU_ACTS:
        return "gelu"  # two matrices; relu costs the same as gelu here
    valid = sorted(_RELU2_ACTS | (_GATED_ACTS if family.gated else _GELU_ACTS))
    raise FileFormatError(
        f"{reader.where()}: {act_key} {act!r} is not an MLP chipmix can model; "
        f"valid for this family: {', '.join(valid)}"
    )


def _moe_layers(reader: _Reader, num_layers: int) -> int:
    """How many layers use experts (the rest have a dense MLP)."""
    raw = reader.raw
    first_dense = reader.int_or_none(("first_k_dense_replace",)) or 0
    freq = reader.int_or_none(("moe_layer_freq",)) or 1  # DeepSeek: i % freq == 0 is MoE
    step = reader.int_or_none(("decoder_sparse_step",)) or 1  # Qwen: (i + 1) % step == 0
    only_dense = raw.get("mlp_only_layers") or []
    if not isinstance(only_dense, list):
        raise FileFormatError(f"{reader.where()}: key 'mlp_only_layers' should be a list")
    return sum(
        1
        for i in range(num_layers)
        if i >= first_dense and i % freq == 0 and (i + 1) % step == 0 and i not in only_dense
    )


def _moe(reader: _Reader, num_layers: int, dense_ffn: int | None) -> MoE | None:
    num_experts = reader.int_or_none(_EXPERTS)
    if num_experts is None or num_experts <= 1:
        return None
    top_k = reader.require(_TOP_K)
    expert_ffn = reader.int_or_none(("moe_intermediate_size",)) or dense_ffn
    if expert_ffn is None:
        raise reader.missing(("moe_intermediate_size", "intermediate_size"), "the expert size")
    shared = reader.int_or_none(("n_shared_experts", "num_shared_experts")) or 0
    shared_size = reader.int_or_none(("shared_expert_intermediate_size",))
    if shared_size:  # Qwen2-MoE: one shared expert of its own size
        if shared_size % expert_ffn:
            raise FileFormatError(
                f"{reader.where()}: shared_expert_intermediate_size ({shared_size}) is not a "
                f"multiple of moe_intermediate_size ({expert_ffn}); chipmix models shared "
                f"experts as whole experts of the routed size"
            )
        shared = shared_size // expert_ffn
    dense_layers = num_layers - _moe_layers(reader, num_layers)
    try:
        return MoE(
            num_experts=num_experts,
            top_k=top_k,
            expert_ffn_hidden_size=expert_ffn,
            num_shared_experts=shared,
            num_dense_layers=dense_layers,
        )
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(reader.origin, exc)) from None


def _mla(reader: _Reader) -> MLA | None:
    if reader.raw.get("kv_lora_rank") is None:
        return None
    need = "multi-head latent attention (the config sets kv_lora_rank)"
    try:
        return MLA(
            q_lora_rank=reader.int_or_none(("q_lora_rank",)),
            kv_lora_rank=reader.require(("kv_lora_rank",), need),
            qk_nope_head_dim=reader.require(("qk_nope_head_dim",), need),
            qk_rope_head_dim=reader.require(("qk_rope_head_dim",), need),
            v_head_dim=reader.require(("v_head_dim",), need),
        )
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(reader.origin, exc)) from None


def model_from_hf_config(raw: dict[str, Any], origin: str) -> ModelSpec:
    """A `ModelSpec` from the mapping of a Hugging Face ``config.json``.

    ``origin`` names the file in messages and gives the model its name when the config has
    no ``_name_or_path``. Raises `FileFormatError` naming the file and the key at fault.
    """
    if isinstance(raw.get("text_config"), dict) and "hidden_size" not in raw:
        raw = {**raw, **raw["text_config"]}  # multimodal wrapper: the language model inside
    model_type = raw.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise FileFormatError(f"{origin}: key 'model_type' should be a string")
    family = _FAMILIES.get(model_type or "", _LLAMA)
    reader = _Reader(raw, origin, model_type)

    num_layers = reader.require(_LAYERS)
    hidden = reader.require(_HIDDEN)
    heads = reader.require(_HEADS)
    kv_heads = reader.int_or_none(("num_key_value_heads", "num_kv_heads")) or heads
    if kv_heads <= 0 or heads % kv_heads:
        raise FileFormatError(
            f"{reader.where()}: num_attention_heads ({heads}) is not a multiple of "
            f"num_key_value_heads ({kv_heads}); grouped-query attention needs whole groups"
        )
    head_dim = reader.int_or_none(("head_dim",))
    vocab = reader.require(_VOCAB)
    ffn = reader.int_or_none(_FFN)
    if ffn is None and model_type == "gpt2":
        ffn = 4 * hidden  # GPT2Config: n_inner None means 4 x n_embd
    moe = _moe(reader, num_layers, ffn)
    if ffn is None:
        if moe is None or moe.num_dense_layers:
            raise reader.missing(_FFN, _NEEDED_FOR[_FFN])
        ffn = moe.expert_ffn_hidden_size  # every layer is MoE: the dense size is unused
    mla = _mla(reader)
    if mla is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim  # the q.k dot-product width
    elif head_dim is None:
        if hidden % heads:
            raise reader.missing(
                ("head_dim",),
                f"the head width, since hidden_size ({hidden}) is not a multiple of "
                f"num_attention_heads ({heads})",
            )
        head_dim = hidden // heads

    attention_bias = reader.flag("attention_bias", family.bias)
    mlp_bias = reader.flag("mlp_bias", family.bias)
    name, display = _model_name(raw, origin)
    fields: dict[str, Any] = {
        "name": name,
        "display_name": display,
        "source": origin,
        "num_layers": num_layers,
        "hidden_size": hidden,
        "ffn_hidden_size": ffn,
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "mlp": _mlp_kind(reader, family),
        "tied_embeddings": reader.flag("tie_word_embeddings", family.tied),
        "norm": family.norm,
        "linear_bias": attention_bias and mlp_bias,
        "dropout": reader.any_positive(
            "attention_dropout", "hidden_dropout", "resid_pdrop", "attn_pdrop"
        ),
        "moe": moe,
        "mla": mla,
    }
    seq = reader.int_or_none(_SEQ)
    if seq is not None:
        fields["max_seq_len"] = seq
    try:
        return ModelSpec.model_validate(fields)
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(origin, exc)) from None
