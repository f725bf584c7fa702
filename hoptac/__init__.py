"""hoptac: Vietnamese cooperation news, from seed articles to a packaged spaCy model.

The stages live in their own packages: ``corpus`` (articles → paragraphs),
``annotate`` (Label Studio), ``train`` (dataset, models, evaluation, packaging).
This package holds what they share: the label schema, errors and the CLI.
"""

__version__ = "0.1.0"
