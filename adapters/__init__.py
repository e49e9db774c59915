"""memeval's own adapters: memory backends and readers (import name `memeval.adapters`)."""
