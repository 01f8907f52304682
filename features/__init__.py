"""Plain-Python data building blocks every side shares: interactions, the lake and warehouse,
query understanding, the data layout; imports nothing of ours."""
