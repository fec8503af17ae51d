"""medattn: attention-based scan classification with explanations, for research and demonstration."""

RESEARCH_NOTICE = "Research and demonstration use only — not a medical device, not for diagnosis."
