"""The published fund pages (onestop publish): figures rendered as a static site."""
