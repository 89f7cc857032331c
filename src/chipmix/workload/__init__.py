"""Workloads: model architectures (presets, files, Hugging Face configs) and training jobs."""

from chipmix.workload.job import MODES, Job, Mode
from chipmix.workload.model import MLA, ModelSpec, MoE
from chipmix.workload.registry import load_model, preset_names

__all__ = ["MLA", "MODES", "Job", "MoE", "Mode", "ModelSpec", "load_model", "preset_names"]
