"""Batch settlement of many bills from Parquet/CSV, locally or on Dask."""
