"""Price tables for token cost in money. memeval never guesses a price: users give them.

```yaml
currency: USD
per: 1000000            # prices are per this many tokens
models:
  "openai:model=gpt-4o-mini": {input: 0.15, output: 0.60}
  summary: {input: 0.15, output: 0.60}   # a backend's own model calls, by backend label
```

A reader is priced by its label; a backend's own tokens by the backend's
label, or else at the reader's price (backends write with the run's reader
by default).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memeval.errors import MemevalError
from memeval.records import PRICES
from memeval.scenario.yamlpos import YamlError, load_with_positions


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class PriceTable(BaseModel):
    """Prices by reader or backend label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = "USD"
    per: int = Field(1_000_000, ge=1, description="Prices are per this many tokens.")
    models: dict[str, Price]

    def cost(self, label: str, input_tokens: int, output_tokens: int,
             fallback: str | None = None) -> float | None:
        """Money for these tokens at `label`'s price (or `fallback`'s); None if neither is priced."""
        price = self.models.get(label) or (self.models.get(fallback) if fallback else None)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / self.per


def load_prices(path: str | Path) -> PriceTable:
    """Read a price table (YAML or JSON); a mistake is one line naming the file and line."""
    path = Path(path)
    try:
        data, pos = load_with_positions(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MemevalError(f"{path}: cannot read the price table ({exc.strerror})") from None
    except YamlError as exc:
        raise MemevalError(f"{path}:{exc.line}:{exc.column}: {exc.message} ({exc.fix})") from None
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        # an unknown key (a typo) explains the missing one it was meant to be: report it first
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(error["loc"])
        line, col = pos.of_key(loc)
        where = ".".join(str(part) for part in loc) or "the table"
        raise MemevalError(f"{path}:{line}:{col}: {where}: {error['msg']} (write e.g. "
                           "`models: {\"embedded\": {input: 0.0, output: 0.0}}`)") from None


def read_prices(run_dir: Path) -> PriceTable | None:
    """The price table a run was given (kept as prices.json), if any."""
    path = Path(run_dir) / PRICES
    if not path.exists():
        return None
    return PriceTable.model_validate_json(path.read_text(encoding="utf-8"))
