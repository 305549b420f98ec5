"""Serving a trained model: recommendations over the catalogue (recommend, catalogue), what-if users (whatif), cold start (coldstart) and language-model text features (text)."""
