"""The sentence-transformers/PyLate ``Dense`` projection that follows the backbone."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sauerkraut_rag.encoders._checkpoint import (
    load_safetensors,
    load_state_dict_strict,
    read_json,
    require_files,
)
from sauerkraut_rag.errors import CheckpointError

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        nn.Identity,
        nn.Tanh,
        nn.ReLU,
        nn.GELU,
        nn.Sigmoid,
        nn.SiLU,
        nn.LeakyReLU,
        nn.ELU,
        nn.Softplus,
        nn.Mish,
        nn.Hardtanh,
    )
}


def activation_from_name(name: str, *, source: Path) -> nn.Module:
    """Map a saved ``activation_function`` such as ``torch.nn.modules.linear.Identity``.

    Only parameter-free ``torch.nn`` activations are accepted: the name is never
    imported as arbitrary code.
    """
    short = name.rsplit(".", 1)[-1]
    if not name.startswith("torch.nn.") or short not in _ACTIVATIONS:
        raise CheckpointError(
            f"{source} names activation_function {name!r}; expected one of the torch.nn "
            f"activations {sorted(_ACTIVATIONS)} (e.g. 'torch.nn.modules.linear.Identity')."
        )
    return _ACTIVATIONS[short]()


class DenseProjection(nn.Module):
    """``activation(linear(x))`` (+ optional residual), as in PyLate's ``Dense``.

    Maps ``(n_tokens, in_features)`` to ``(n_tokens, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool,
        activation: nn.Module,
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.linear = nn.Linear(in_features, out_features, bias=bias, device="meta")
        self.activation_function = activation
        self.use_residual = use_residual
        self.residual: nn.Linear | None = None
        if use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_features) -> (..., out_features)``."""
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if self.residual is not None else x)
        return out

    @classmethod
    def from_folder(cls, folder: Path) -> DenseProjection:
        """Build from ``<folder>/config.json`` and load ``<folder>/model.safetensors`` strictly."""
        require_files(folder, ["config.json", "model.safetensors"])
        config = read_json(folder / "config.json")
        try:
            in_features = int(config["in_features"])
            out_features = int(config["out_features"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{folder / 'config.json'} must give integer in_features and out_features, "
                f"got {config!r}. Re-download the checkpoint."
            ) from exc
        module = cls(
            in_features,
            out_features,
            bias=bool(config.get("bias", True)),
            activation=activation_from_name(
                str(config.get("activation_function", "torch.nn.modules.linear.Identity")),
                source=folder / "config.json",
            ),
            use_residual=bool(config.get("use_residual", False)),
        )
        weights = load_safetensors(folder / "model.safetensors")
        module.to_empty(device="cpu")
        load_state_dict_strict(module, weights, source=str(folder / "model.safetensors"))
        return module
