"""Everything that talks to the outside: gRPC, SQL, files, Dask, the CLI."""
