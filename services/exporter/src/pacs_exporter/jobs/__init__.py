"""Export jobs: durable rows in the exporter's own database (:mod:`.tables`), claimed by
workers under a lease (:mod:`.queue`)."""
