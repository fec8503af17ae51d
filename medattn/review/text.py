"""Rendering file-derived strings safely in places that interpret Markdown."""

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every Markdown control character, so ``text`` renders literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
