"""memeval's own adapters: memory backends, readers and embedders (import name `memeval.adapters`)."""


def quiet_transformers() -> None:
    """Silence transformers' loading bars: they tear the runner's progress display."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
