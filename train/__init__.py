"""Stage 3: dataset, NER and sector models, evaluation, packaging and prediction."""
