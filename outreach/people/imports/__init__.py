"""CSV imports: decoding a file, the run that feeds rows through ingest, and the job queue."""
