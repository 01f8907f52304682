"""One router per resource; ``serving.api.main`` includes them."""
