"""Text as a clinician reads it: file-derived strings rendered literally where Markdown is interpreted, and
probabilities that never round to a certainty the model does not have."""

import math
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every Markdown control character, so ``text`` renders literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def figure(value: float | None, decimals: int = 2, missing: str = "—") -> str:
    """A measured figure to a fixed number of decimals, so that one column never reads "1" beside "0.9892";
    ``missing`` where there is none (never "None" or "nan")."""
    if value is None or math.isnan(value):
        return missing
    return f"{value:.{decimals}f}"


def probability(value: float) -> str:
    """A probability in whole percent, but never "100%" or "0%": a calibrated model is never certain, and a
    heading that says 100% beside a table that says 99.95% reads as two different answers."""
    if value >= 0.995:
        return "> 99%"
    if value < 0.005:
        return "< 1%"
    return f"{value:.0%}"
