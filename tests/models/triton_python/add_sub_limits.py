"""A module beside add_sub's model.py: Triton models import their own helpers this way."""


def too_large(values):
    return bool((values > 1e6).any())
