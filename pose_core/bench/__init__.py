"""`pose-bench`: model-only and end-to-end latency per backend (`runner`), statistics
(`stats`), reports (`report`), seeded weights for timing (`weights`), CLI (`cli`)."""

from __future__ import annotations

__all__: list[str] = []
