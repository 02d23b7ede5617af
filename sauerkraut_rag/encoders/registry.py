"""The known hub ids, their specs, and model-family detection from checkpoint files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sauerkraut_rag.encoders._checkpoint import read_json
from sauerkraut_rag.errors import CheckpointError

Family = Literal["colbert", "collfm2", "colqwen3"]


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`list_models` reports about one published model."""

    id: str
    family: Family
    modality: Literal["text", "image"]
    dim: int
    languages: tuple[str, ...]
    license: str
    parameters: str
    size: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        data = asdict(self)
        data["languages"] = list(self.languages)
        return data


KNOWN_MODELS: dict[str, ModelInfo] = {
    info.id: info
    for info in (
        ModelInfo(
            id="VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m",
            family="colbert",
            modality="text",
            dim=128,
            languages=("de", "en", "es", "fr", "it", "nl", "pt"),
            license="apache-2.0",
            parameters="15.3M",
            size="~60 MB (float32)",
            description=(
                "Multilingual ColBERT text model (PyLate); documents 2048, queries 256 tokens."
            ),
        ),
        ModelInfo(
            id="VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1",
            family="collfm2",
            modality="image",
            dim=128,
            languages=("de", "en", "es", "fr", "it", "pt"),
            license="lfm1.0",
            parameters="450M",
            size="~0.9 GB (bfloat16)",
            description="ColPali-style page retrieval on LFM2-VL-450M; 64-256 image tokens.",
        ),
        ModelInfo(
            id="VAGOsolutions/SauerkrautLM-ColQwen3-1.7b-Turbo-v0.1",
            family="colqwen3",
            modality="image",
            dim=128,
            languages=("de", "en", "es", "fr", "it", "pt"),
            license="apache-2.0",
            parameters="1.7B",
            size="~3.4 GB (bfloat16)",
            description="ColPali-style page retrieval on a pruned Qwen3-VL-2B.",
        ),
    )
}

_LFM2_TYPES = {"collfm2", "lfm2_vl", "lfm2-vl"}
_QWEN3_TYPES = {"colqwen3", "qwen3_vl"}


def list_models() -> list[ModelInfo]:
    """The published models this package knows, with dim, modality, languages, licence, size."""
    return list(KNOWN_MODELS.values())


def detect_family(folder: Path) -> Family:
    """Tell the model family from the files in a checkpoint folder.

    - ``modules.json`` or ``config_sentence_transformers.json``: PyLate ColBERT;
    - ``config.json`` with ``model_type`` ``collfm2``/``lfm2_vl``: ColLFM2;
    - ``config.json`` with ``model_type`` ``colqwen3``/``qwen3_vl``: ColQwen3.
    """
    if (folder / "modules.json").is_file() or (
        folder / "config_sentence_transformers.json"
    ).is_file():
        return "colbert"
    config = read_json(folder / "config.json", required=False)
    if not config:
        raise CheckpointError(
            f"{folder} holds neither modules.json (PyLate ColBERT) nor config.json (page "
            "models), so its model family cannot be told. Pass the folder of a complete "
            "checkpoint."
        )
    model_type = str(config.get("model_type", "")).lower()
    architectures = " ".join(config.get("architectures") or []).lower()
    if model_type in _LFM2_TYPES or "lfm2vl" in architectures or "collfm2" in architectures:
        return "collfm2"
    if model_type in _QWEN3_TYPES or "qwen3vl" in architectures or "colqwen3" in architectures:
        return "colqwen3"
    raise CheckpointError(
        f"config.json in {folder} has model_type {model_type or None!r}, which is not a "
        "supported family. Supported: a PyLate ColBERT folder (modules.json), "
        "'collfm2'/'lfm2_vl' or 'colqwen3'/'qwen3_vl'."
    )
