"""A quick check that the Hugging Face hub can be reached, so offline users get one sentence at once."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub's host resolves and accepts a TCP connection (or offline mode uses the cache)."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE") or os.environ.get("HF_DATASETS_OFFLINE") in ("1", "true"):
        return True  # the libraries will use their local cache and say what is missing
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
