"""onestop simulate: base against candidate over the batch inputs (issue 12)."""
