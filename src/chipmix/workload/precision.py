"""Precision recipes: which GEMMs a training job runs in a low-precision format, and what
quantizing their inputs costs in memory traffic.

A job's ``precision`` (bf16, fp8, int8, fp4) names the format of its matrix units; the
recipe says how the stack uses it. Recipes differ in the GEMM passes they quantize
(forward ``fprop``, input gradient ``dgrad``, weight gradient ``wgrad``), in the scale
granularity (one scale per tensor, per 32- or 16-element block) and in the extra passes
over a bf16 tensor they need to find a scale or to lay out a transposed copy. The
attention core, the output (logits) projection, the MoE router and every elementwise op
stay in bf16 in all of them (Transformer Engine keeps ``DotProductAttention`` and the
output layer in higher precision unless told otherwise; so does MaxText's quantization).

What a recipe does not say, the chip does: how fast its low-precision units run (the
catalog's peak and the calibration's ``low_precision_efficiency``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chipmix.common.units import Precision
from chipmix.errors import InputError, UnknownNameError

__all__ = [
    "DEFAULT_RECIPES",
    "RECIPES",
    "PrecisionRecipe",
    "default_recipe",
    "recipe_for",
]

GemmPass = str
"""``fprop``, ``dgrad`` or ``wgrad``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PrecisionRecipe:
    """How one low-precision training recipe runs a linear layer."""

    name: str
    precision: Precision
    """The matrix-unit format it computes in (its dense peak is the catalog's)."""
    passes: tuple[GemmPass, ...]
    """GEMM passes run in ``precision``; the others run in bf16."""
    element_bytes: float
    """Bytes per quantized operand element (fp8/int8 1, fp4 0.5)."""
    scale_bytes_per_element: float = 0.0
    """Scale storage per element: 1 byte per 32 (MXFP8/MXFP4 E8M0), 1 per 16 (NVFP4 E4M3)."""
    amax_reads: float = 0.0
    """Extra reads of a bf16 tensor to find its scale before casting (current/tensorwise
    scaling computes the amax first; delayed scaling reuses the history's; block scales are
    computed inside the cast kernel)."""
    both_orientations: bool = True
    """Whether each quantized tensor is written twice, row- and column-wise: the backward
    GEMMs consume the transposes (Hopper's FP8 GEMM takes only the TN layout; block scales
    run along the reduction axis, so a transposed use needs its own quantization)."""
    hadamard_on_wgrad: bool = False
    """Random Hadamard transform of the weight-gradient GEMM inputs (one extra bf16 read
    and write of each)."""
    bf16_layer_share: float = 0.0
    """Share of the transformer layers whose linear layers stay in bf16."""
    source: str
    """Where the recipe's behaviour is documented."""

    def __post_init__(self) -> None:
        if not set(self.passes) <= {"fprop", "dgrad", "wgrad"}:
            raise ValueError(f"recipe {self.name}: unknown GEMM pass in {self.passes}")
        if not 0.0 <= self.bf16_layer_share < 1.0:
            raise ValueError(f"recipe {self.name}: bf16_layer_share must be in [0, 1)")

    @property
    def quantized_bytes(self) -> float:
        """Bytes written per element for one quantized copy, scales included."""
        return self.element_bytes + self.scale_bytes_per_element


_ALL: tuple[GemmPass, ...] = ("fprop", "dgrad", "wgrad")
_TE = (
    "NVIDIA Transformer Engine user guide, 'Using FP8 with Transformer Engine' and the "
    "recipe API (transformer_engine.common.recipe), 2025"
)

RECIPES: dict[str, PrecisionRecipe] = {
    r.name: r
    for r in (
        PrecisionRecipe(
            name="bf16", precision="bf16", passes=(), element_bytes=2.0,
            both_orientations=False, source="mixed precision (Micikevicius et al. 2018)",
        ),
        PrecisionRecipe(
            name="fp8-delayed", precision="fp8", passes=_ALL, element_bytes=1.0,
            source=f"{_TE}: DelayedScaling (HYBRID: E4M3 forward, E5M2 gradients), scale "
            "from the amax history, fp8 transposes for the backward GEMMs",
        ),
        PrecisionRecipe(
            name="fp8-tensorwise", precision="fp8", passes=_ALL, element_bytes=1.0,
            amax_reads=1.0,
            source=f"{_TE}: Float8CurrentScaling (Megatron-Bridge fp8_cs, MLPerf "
            "'tensorwise'): the amax of each tensor is computed before its cast",
        ),
        PrecisionRecipe(
            name="mxfp8", precision="fp8", passes=_ALL, element_bytes=1.0,
            scale_bytes_per_element=1.0 / 32.0,
            source=f"{_TE}: MXFP8BlockScaling (OCP Microscaling spec v1.0: E8M0 scale per "
            "32 elements), row- and column-wise copies (Megatron-Bridge fp8_mx)",
        ),
        PrecisionRecipe(
            name="nvfp4", precision="fp4", passes=_ALL, element_bytes=0.5,
            scale_bytes_per_element=1.0 / 16.0, amax_reads=1.0, hadamard_on_wgrad=True,
            bf16_layer_share=0.15,
            source="NVIDIA, 'Pretraining Large Language Models with NVFP4' (arXiv "
            "2509.25149): E4M3 scale per 16 elements plus a per-tensor scale, random "
            "Hadamard transforms on the wgrad inputs, about 15% of the layers (the last "
            "blocks) kept in BF16; TE NVFP4BlockScaling",
        ),
        PrecisionRecipe(
            name="mxfp4", precision="fp4", passes=_ALL, element_bytes=0.5,
            scale_bytes_per_element=1.0 / 32.0,
            source="OCP Microscaling spec v1.0 (MXFP4: E2M1 with an E8M0 scale per 32)",
        ),
        PrecisionRecipe(
            name="maxtext-fp8", precision="fp8", passes=_ALL, element_bytes=1.0,
            amax_reads=1.0, both_orientations=False,
            source="MaxText quantization=fp8_full (dynamic per-tensor scaling in every "
            "dot, forward and backward; XLA fuses the transposes)",
        ),
        PrecisionRecipe(
            name="aqt-int8", precision="int8", passes=_ALL, element_bytes=1.0,
            amax_reads=1.0, both_orientations=False,
            source="MaxText quantization=int8 (AQT: int8 forward and backward dots with "
            "dynamic per-channel scales; MLPerf Training GPT-3 on TPU v5e/v5p)",
        ),
    )
}  # fmt: skip
"""Every recipe chipmix models, by name."""

DEFAULT_RECIPES: dict[str, str] = {
    "bf16": "bf16",
    "fp8": "fp8-delayed",
    "int8": "aqt-int8",
    "fp4": "nvfp4",
}
"""The recipe a job without one runs: Transformer Engine's default DelayedScaling for fp8,
NVFP4 for fp4, AQT for int8 (the stacks' documented defaults)."""


def default_recipe(precision: str) -> PrecisionRecipe:
    """The recipe a job in ``precision`` runs when it names none."""
    return RECIPES[DEFAULT_RECIPES.get(precision, "bf16")]


def recipe_for(precision: str, name: str | None) -> PrecisionRecipe:
    """The named recipe, checked against the job's precision; the default without a name.

    Raises `UnknownNameError` for a name that is no recipe and `InputError` for one in
    another precision than the job's.
    """
    if name is None:
        return default_recipe(precision)
    recipe = RECIPES.get(name) or RECIPES.get(name.lower())
    if recipe is None:
        raise UnknownNameError("precision recipe", name, RECIPES)
    if recipe.precision != precision:
        raise InputError(
            f"precision recipe {recipe.name!r} computes in {recipe.precision}, but the "
            f"job's precision is {precision}; give --precision {recipe.precision} or a "
            f"{precision} recipe ({', '.join(_names(precision)) or 'none'})"
        )
    return recipe


def _names(precision: str) -> list[str]:
    return [k for k, r in RECIPES.items() if r.precision == precision]
