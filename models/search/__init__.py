"""Product search: analysis, retrieval on tantivy or Elasticsearch, facets, spelling, and
learning to rank with its evaluation."""
