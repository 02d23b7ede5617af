"""Test-wide settings: no network, quiet and deterministic torch.

The tests run tiny models, for which one intra-op thread is fastest and immune to
oversubscription when the machine is busy (set before torch is imported; child
processes such as CLI runs inherit it).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
