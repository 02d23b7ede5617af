"""retrievers: scoring and storage of multi-vectors. The exact MaxSim scorer, MUVERA
encodings, token pooling, the ``MultiVectorIndex`` protocol, ``MultiVectorRetriever``, and
one subpackage per backend (``voyager/``). Imports documents and encoders' types only,
never integrations or the CLI."""
