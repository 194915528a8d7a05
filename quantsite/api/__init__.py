"""Cross-cutting REST plumbing: throttles, the schema generator, the error shapes."""
