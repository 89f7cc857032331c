"""Model presets: one YAML file per model in ``workload/presets``; the folder is the registry."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chipmix.common.files import format_validation_error, read_json, read_yaml
from chipmix.errors import FileFormatError, UnknownNameError
from chipmix.workload.model import ModelSpec

__all__ = ["PRESET_DIR", "load_model", "model_from_mapping", "preset_names"]

PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    """Ids of the shipped presets (file stems of the presets folder)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def model_from_mapping(raw: Any, origin: str) -> ModelSpec:
    """Validate a mapping in the preset schema; errors name the file and the key."""
    if not isinstance(raw, dict):
        raise FileFormatError(f"{origin}: expected a mapping of model fields")
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(origin, exc)) from None


@cache
def _load_preset(name: str) -> ModelSpec:
    path = PRESET_DIR / f"{name}.yaml"
    return model_from_mapping(read_yaml(path), str(path))


def load_model(name_or_path: str) -> ModelSpec:
    """A preset by id, or a model file: YAML/JSON in the preset schema or a Hugging Face
    ``config.json`` (recognised by its ``model_type`` or ``architectures`` key)."""
    if name_or_path in preset_names():
        return _load_preset(name_or_path)
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        if not path.is_file():
            raise FileFormatError(f"model file {name_or_path!r} does not exist")
        raw = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
        if isinstance(raw, dict) and ("model_type" in raw or "architectures" in raw):
            from chipmix.workload.hf import model_from_hf_config

            return model_from_hf_config(raw, origin=str(path))
        return model_from_mapping(raw, str(path))
    raise UnknownNameError("model", name_or_path, preset_names())
