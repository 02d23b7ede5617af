"""integrations: LangChain (``langchain/``) and LlamaIndex (``llamaindex/``) adapters over
the core (optional extras). They may import documents, encoders and retrievers, never the
CLI; the two frameworks' adapters never import each other."""
