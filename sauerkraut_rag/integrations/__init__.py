"""Framework adapters: ``langchain`` and ``llamaindex`` subpackages (optional extras)."""
