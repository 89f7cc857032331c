"""Model presets, model files and Hugging Face configs: parameter counts, loading, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chipmix.errors import FileFormatError, UnknownNameError
from chipmix.workload import ModelSpec, MoE, load_model, preset_names
from chipmix.workload.hf import model_from_hf_config
from chipmix.workload.registry import PRESET_DIR

HF_DIR = Path(__file__).parent / "data" / "hf"
PRESETS = preset_names()
MOE_PRESETS = [name for name in PRESETS if load_model(name).moe is not None]
DENSE_PRESETS = [name for name in PRESETS if load_model(name).moe is None]

# Publishers differ on whether the input-embedding lookup (a gather, no FLOPs) is "active":
# Mistral (Mixtral, 12.9B) and Qwen (22B) count it; DeepSeek (README_WEIGHTS.md: 36.6B
# "including 0.9B for the output Head") and OpenAI (gpt-oss model card, 5.13B) do not.
ACTIVE_WITHOUT_INPUT_EMBEDDING = {"deepseek-v3", "gpt-oss-120b"}

# Fields that describe the architecture (not its name, provenance or published figures).
_META = {"name", "display_name", "source", "params_published", "active_params_published"}


def _arch(spec: ModelSpec) -> dict[str, Any]:
    return spec.model_dump(exclude=_META)


# -- the preset files -----------------------------------------------------------------------
def test_the_promised_presets_ship() -> None:
    promised = {
        "gpt3-175b", "llama2-7b", "llama2-13b", "llama2-70b", "llama3-8b", "llama3-70b",
        "llama3.1-405b", "mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-235b-a22b",
        "gpt-oss-120b", "nemotron-4-340b",
    }  # fmt: skip
    assert promised <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_file_states_every_field(name: str) -> None:
    raw = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert raw["name"] == name, "file stem and `name` must agree"
    assert set(raw) == set(ModelSpec.model_fields), "every field explicit, no defaults"
    if raw["moe"] is not None:
        assert set(raw["moe"]) == set(MoE.model_fields)
    assert raw["source"].startswith("https://")
    assert raw["display_name"]
    assert raw["params_published"]
    assert (raw["active_params_published"] is None) == (raw["moe"] is None)


# -- parameter counts against the published figures ---------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_param_count_within_1pct_of_published(name: str) -> None:
    spec = load_model(name)
    assert spec.params_published is not None
    counted = spec.num_params()
    error = counted / spec.params_published - 1
    assert abs(error) < 0.01, (
        f"{name}: counted {counted / 1e9:.2f}B, published {spec.params_published / 1e9:.2f}B "
        f"({error:+.2%})"
    )


@pytest.mark.parametrize("name", MOE_PRESETS)
def test_active_count_within_1pct_of_published(name: str) -> None:
    spec = load_model(name)
    assert spec.active_params_published is not None
    counted = spec.num_active_params()
    if name in ACTIVE_WITHOUT_INPUT_EMBEDDING:
        counted -= spec.vocab_size * spec.hidden_size
    error = counted / spec.active_params_published - 1
    assert abs(error) < 0.01, (
        f"{name}: counted {counted / 1e9:.2f}B active, published "
        f"{spec.active_params_published / 1e9:.2f}B ({error:+.2%})"
    )
    assert counted < spec.num_params() / 2, "an MoE touches a small share of its weights"


@pytest.mark.parametrize("name", DENSE_PRESETS)
def test_dense_model_touches_every_weight(name: str) -> None:
    spec = load_model(name)
    assert spec.num_active_params() == spec.num_params()


@pytest.mark.parametrize("name", PRESETS)
def test_matmul_params_are_active_params_less_lookup_and_norms(name: str) -> None:
    """N of MFU's 6N (PaLM appendix B): weights in matmuls per token, below active params."""
    spec = load_model(name)
    n = spec.matmul_params_per_token()
    lookup = 0 if spec.tied_embeddings else spec.vocab_size * spec.hidden_size
    norms = spec.num_layers * spec.norm_params() + spec.hidden_size
    assert 0 < n < spec.num_active_params()
    assert spec.num_active_params() - n == lookup + norms


def test_six_n_for_llama3_8b() -> None:
    # 8.03B weights less the 0.525B input table: 7.5B in matmuls, 45 GFLOP per trained token.
    spec = load_model("llama3-8b")
    assert 6 * spec.matmul_params_per_token() == pytest.approx(45.03e9, rel=1e-3)


@pytest.mark.parametrize("name", sorted(ACTIVE_WITHOUT_INPUT_EMBEDDING))
def test_matmul_params_match_active_figures_that_leave_out_the_lookup(name: str) -> None:
    spec = load_model(name)
    assert spec.active_params_published is not None
    assert spec.matmul_params_per_token() == pytest.approx(spec.active_params_published, rel=0.01)


# -- loading: by name, by file, by Hugging Face config --------------------------------------
def test_load_by_preset_name() -> None:
    spec = load_model("llama3-70b")
    assert (spec.name, spec.num_layers, spec.num_kv_heads) == ("llama3-70b", 80, 8)


def test_load_by_yaml_path(tmp_path: Path) -> None:
    raw = yaml.safe_load((PRESET_DIR / "mixtral-8x7b.yaml").read_text(encoding="utf-8"))
    raw["name"] = "my-mixtral"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    spec = load_model(str(path))
    assert spec.name == "my-mixtral"
    assert spec.num_params() == load_model("mixtral-8x7b").num_params()


def test_load_shipped_preset_by_its_path() -> None:
    assert load_model(str(PRESET_DIR / "llama2-7b.yaml")) == load_model("llama2-7b")


@pytest.mark.parametrize(
    "stem",
    ["llama3-8b", "mixtral-8x7b", "deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b"],
)
def test_hf_config_reproduces_the_preset(stem: str) -> None:
    spec = load_model(str(HF_DIR / f"{stem}.json"))
    preset = load_model(stem)
    assert spec.name == stem, "named after the file when the config has no _name_or_path"
    assert _arch(spec) == _arch(preset)
    assert spec.num_params() == preset.num_params()
    assert spec.num_active_params() == preset.num_active_params()


def test_hf_gpt2_reads_its_own_key_names() -> None:
    spec = load_model(str(HF_DIR / "gpt2.json"))
    assert (spec.num_layers, spec.hidden_size, spec.ffn_hidden_size) == (12, 768, 3072)
    assert (spec.mlp, spec.norm, spec.tied_embeddings) == ("gelu", "layernorm", True)
    assert spec.linear_bias
    assert spec.dropout
    assert spec.max_seq_len == 1024
    # 124.4M published includes 0.8M learned position embeddings, which are not counted.
    assert spec.num_params() == pytest.approx(124.44e6, rel=0.01)


def _llama_like(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "model_type": "llama",
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_attention_heads": 8,
        "num_hidden_layers": 4,
        "vocab_size": 1000,
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def test_hf_defaults_follow_transformers() -> None:
    spec = model_from_hf_config(_llama_like(), "tiny.json")
    assert spec.num_kv_heads == 8, "num_key_value_heads defaults to the head count (MHA)"
    assert spec.head_dim == 32, "head_dim defaults to hidden / heads"
    assert (spec.mlp, spec.norm, spec.tied_embeddings, spec.linear_bias) == (
        "swiglu",
        "rmsnorm",
        False,
        False,
    )
    assert spec.max_seq_len == ModelSpec.model_fields["max_seq_len"].default


def test_hf_name_from_name_or_path() -> None:
    raw = _llama_like(_name_or_path="meta-llama/Meta-Llama-3-8B")
    spec = model_from_hf_config(raw, "/models/whatever/config.json")
    assert (spec.name, spec.display_name) == ("meta-llama-3-8b", "Meta-Llama-3-8B")


def test_hf_name_from_folder_of_config_json(tmp_path: Path) -> None:
    folder = tmp_path / "My Model (v2)"
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(json.dumps(_llama_like()), encoding="utf-8")
    assert load_model(str(path)).name == "my-model-v2"


def test_hf_nemotron_is_squared_relu_layernorm() -> None:
    # Nemotron-4 340B as the transformers `nemotron` family would describe it.
    raw = {
        "model_type": "nemotron",
        "hidden_size": 18432,
        "intermediate_size": 73728,
        "num_attention_heads": 96,
        "num_key_value_heads": 8,
        "head_dim": 192,
        "num_hidden_layers": 96,
        "vocab_size": 256000,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    }
    spec = model_from_hf_config(raw, "nemotron-4-340b.json")
    assert _arch(spec) == _arch(load_model("nemotron-4-340b"))


def test_hf_gpt_neox_has_biases_and_layernorm() -> None:
    raw = {  # EleutherAI/pythia-160m
        "model_type": "gpt_neox",
        "hidden_act": "gelu",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "vocab_size": 50304,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
    }
    spec = model_from_hf_config(raw, "pythia-160m.json")
    assert (spec.mlp, spec.norm, spec.linear_bias) == ("gelu", "layernorm", True)
    assert spec.num_params() == pytest.approx(162.3e6, rel=0.01)


def test_hf_qwen2_moe_shared_expert_becomes_whole_experts() -> None:
    raw = {  # Qwen/Qwen1.5-MoE-A2.7B: 14.3B total, 2.7B active (model card)
        "model_type": "qwen2_moe",
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
    }
    spec = model_from_hf_config(raw, "qwen1.5-moe-a2.7b.json")
    assert spec.moe is not None
    assert spec.moe.num_shared_experts == 4
    assert spec.num_params() == pytest.approx(14.3e9, rel=0.01)
    assert spec.num_active_params() == pytest.approx(2.7e9, rel=0.01)


def test_hf_dense_layers_counted_wherever_they_sit() -> None:
    raw = _llama_like(
        model_type="qwen3_moe",
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=128,
        mlp_only_layers=[1, 3],
    )
    spec = model_from_hf_config(raw, "sparse.json")
    assert spec.moe is not None
    assert (spec.moe.num_dense_layers, spec.ffn_hidden_size) == (2, 688)


def test_hf_unknown_model_type_with_every_key_reads_as_llama() -> None:
    spec = model_from_hf_config(_llama_like(model_type="my_new_arch"), "new.json")
    assert _arch(spec) == _arch(model_from_hf_config(_llama_like(), "new.json"))


# -- bad inputs: each message names the file and the key ------------------------------------
_GOOD_YAML = (PRESET_DIR / "llama2-7b.yaml").read_text(encoding="utf-8")


def _yaml_with(**changes: Any) -> str:
    raw = yaml.safe_load(_GOOD_YAML)
    for key, value in changes.items():
        if value is None:
            del raw[key]
        else:
            raw[key] = value
    return yaml.safe_dump(raw)


def _hf_with(**changes: Any) -> str:
    raw = json.loads((HF_DIR / "llama3-8b.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            del raw[key]
        else:
            raw[key] = value
    return json.dumps(raw)


BAD_FILES = [
    pytest.param("m.yaml", _yaml_with(hidden_dim=4096), ["hidden_dim"], id="yaml-unknown-key"),
    pytest.param("m.yaml", _yaml_with(hidden_size=None), ["hidden_size"], id="yaml-missing-field"),
    pytest.param(
        "m.yaml",
        _yaml_with(num_heads=12, num_kv_heads=5),
        ["num_kv_heads", "12", "5"],
        id="yaml-heads-not-multiple-of-kv-heads",
    ),
    pytest.param("m.yaml", _yaml_with(num_layers=-2), ["num_layers"], id="yaml-negative-layers"),
    pytest.param(
        "m.yaml",
        _yaml_with(moe={"num_experts": 4, "top_k": 8, "expert_ffn_hidden_size": 64}),
        ["top_k", "num_experts"],
        id="yaml-top-k-above-experts",
    ),
    pytest.param("m.yaml", "name: x\nnum_layers: [1, 2\n", ["line"], id="yaml-malformed"),
    pytest.param("m.yaml", "- just\n- a list\n", ["mapping"], id="yaml-not-a-mapping"),
    pytest.param("m.json", '{"model_type": "llama",', ["not valid JSON"], id="json-malformed"),
    pytest.param(
        "config.json", _hf_with(hidden_size=None), ["hidden_size", "llama"], id="hf-no-hidden-size"
    ),
    pytest.param(
        "config.json",
        _hf_with(model_type="brand_new", num_hidden_layers=None),
        ["num_hidden_layers", "brand_new", "Llama-style"],
        id="hf-unknown-model-type-missing-key",
    ),
    pytest.param(
        "config.json", _hf_with(hidden_size="4096"), ["hidden_size", "'4096'"], id="hf-string-size"
    ),
    pytest.param(
        "config.json", _hf_with(hidden_act="tanh"), ["hidden_act", "tanh"], id="hf-unknown-act"
    ),
    pytest.param(
        "config.json",
        _hf_with(num_local_experts=8),
        ["num_experts_per_tok"],
        id="hf-moe-without-top-k",
    ),
    pytest.param(
        "config.json",
        _hf_with(kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64),
        ["v_head_dim", "latent"],
        id="hf-mla-incomplete",
    ),
    pytest.param(
        "config.json",
        _hf_with(num_key_value_heads=5),
        ["num_key_value_heads", "(5)", "(32)"],
        id="hf-heads-not-multiple-of-kv-heads",
    ),
]


@pytest.mark.parametrize(("filename", "text", "fragments"), BAD_FILES)
def test_bad_model_file_is_named_with_its_key(
    tmp_path: Path, filename: str, text: str, fragments: list[str]
) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        load_model(str(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_model_file() -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        load_model("no/such/model.yaml")


@pytest.mark.parametrize(
    ("name", "close"),
    [
        pytest.param("llama3-7b", "llama3-8b", id="wrong-size"),
        pytest.param("mixtral-8x7", "mixtral-8x7b", id="truncated"),
        pytest.param("deepseek-v2", "deepseek-v3", id="wrong-version"),
    ],
)
def test_unknown_preset_suggests_close_names(name: str, close: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        load_model(name)
    assert "Did you mean" in str(info.value)
    assert close in info.value.close_matches


def test_misspelt_choice_in_a_model_file_names_the_closest(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "name: tiny\nlayers: 2\nhidden: 256\nheads: 4\nffn_hidden: 1024\nvocab: 1000\n"
        "norm: rmsnrom\n"
    )
    with pytest.raises(
        FileFormatError, match=r"norm: .*\(got 'rmsnrom'\)\. Did you mean 'rmsnorm'"
    ):
        load_model(str(spec))
