"""Reviewing: what a session holds (``workspace``), where verdicts are kept (``store``), and what is shared
(``report``, and ``text`` for rendering file-derived strings literally)."""
